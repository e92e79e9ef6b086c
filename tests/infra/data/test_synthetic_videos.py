"""The synthetic generator: real H.264 files whose pixels agree with the ground truth, decoded
independently with PyAV; determinism; the annotation file round-trips through the HC-STVG v2 reader."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from _data_helpers import decode_all

from infra.data.readers import read_annotations
from infra.data.shapes import PALETTE
from infra.data.synth import generate, load_synthetic

QUERY = re.compile(r"^the (red|green|blue|yellow|magenta|cyan) (circle|square|triangle) moving (left|right|up|down)$")
NAMES = list(PALETTE)
COLOURS = np.array([PALETTE[n] for n in NAMES], dtype=np.float64)


def palette_distances(pixels: np.ndarray) -> np.ndarray:
    """[..., len(PALETTE)] squared RGB distance of every pixel to every palette colour."""
    pixels = pixels.astype(np.int32)
    return np.stack([((pixels - c) ** 2).sum(axis=-1) for c in COLOURS.astype(np.int32)], axis=-1)


def _label_table() -> np.ndarray:
    """Palette label (-1: none) of every 5-bit-per-channel RGB cell, from the cell's centre: pixels
    within 60 (RGB distance) of a palette colour and nearer to it than to any other."""
    levels = np.arange(32) * 8 + 4
    cells = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    dist = palette_distances(cells)
    return np.where(dist.min(axis=-1) < 60 ** 2, dist.argmin(axis=-1), -1).astype(np.int8)


LABELS = _label_table()


def _cells(pixels: np.ndarray) -> np.ndarray:
    """The LABELS index of every RGB pixel (5 bits per channel)."""
    q = (pixels.astype(np.uint8) >> 3).astype(np.int32)
    return (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]


def colour_mask(frames: np.ndarray, colour: str) -> np.ndarray:
    return LABELS[_cells(frames)] == NAMES.index(colour)


def test_target_colour_fills_its_boxes_in_the_span_and_is_absent_outside(synth_dir):
    annotations = json.loads((synth_dir / "annotations.json").read_text())
    assert len(annotations) == 6
    for name, rec in annotations.items():
        colour = QUERY.match(rec["English"]).group(1)
        frames = np.stack(decode_all(synth_dir / "videos" / name))
        assert frames.shape == (rec["img_num"], rec["img_size"][0], rec["img_size"][1], 3) == (100, 120, 160, 3)
        first, end = rec["st_frame"], rec["st_frame"] + len(rec["bbox"])
        assert 0 <= first < end <= 100
        for f, mask in enumerate(colour_mask(frames, colour)):
            if first <= f < end:
                x, y, w, h = rec["bbox"][f - first]
                assert min(w, h) >= 12
                inside = mask[y:y + h, x:x + w].sum()
                assert inside >= 0.3 * w * h, (name, f)  # a triangle fills half its box
                grown = mask[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1].sum()
                assert grown >= 0.97 * mask.sum(), (name, f)  # and the colour is nowhere else
            else:
                assert mask.sum() < 3, (name, f)


def test_distractors_have_other_colours_and_their_own_tracks(synth_dir):
    tracks = json.loads((synth_dir / "tracks.json").read_text())
    for name, entry in tracks.items():
        target = entry.pop("target_id")
        assert str(target) in entry and len(entry) >= 2
        frames = decode_all(synth_dir / "videos" / name)
        colour = QUERY.match(json.loads((synth_dir / "annotations.json").read_text())[name]["English"]).group(1)
        for tid, boxes in entry.items():
            assert boxes  # every object is on screen for some frames
            if int(tid) == target:
                continue
            # a distractor's box is filled with a palette colour, and it is never the target's
            f, (x1, y1, x2, y2) = next(iter(boxes.items()))
            nearest = palette_distances(frames[int(f)][y1:y2, x1:x2])
            drawn = nearest.min(axis=-1) < 60 ** 2
            assert drawn.sum() > 0.3 * (x2 - x1) * (y2 - y1)
            labels = np.bincount(nearest.argmin(axis=-1)[drawn], minlength=len(NAMES))
            assert NAMES[int(labels.argmax())] != colour  # (the target may cover part of it)


def test_same_seed_gives_identical_annotations_and_another_seed_does_not(tmp_path):
    a = generate(tmp_path / "a", 3, seed=11)
    b = generate(tmp_path / "b", 3, seed=11)
    c = generate(tmp_path / "c", 3, seed=12)
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a" / "tracks.json").read_bytes() == (tmp_path / "b" / "tracks.json").read_bytes()
    assert list(json.loads(c.read_text())) == [f"synth-s12-{i:05d}.mp4" for i in range(3)]
    assert list(json.loads(a.read_text()).values()) != list(json.loads(c.read_text()).values())
    # video i depends on (seed, i) only: a bigger set extends a smaller one
    d = generate(tmp_path / "d", 1, seed=11)
    first = next(iter(json.loads(a.read_text()).items()))
    assert json.loads(d.read_text()) == dict([first])


def test_annotation_file_round_trips_through_the_hcstvg_v2_reader(synth_dir):
    raw = json.loads((synth_dir / "annotations.json").read_text())
    samples = load_synthetic(synth_dir)
    plain = read_annotations("hcstvg-v2", synth_dir / "annotations.json")
    assert [s.id for s in samples] == [s.id for s in plain] == list(raw)
    for s in samples:
        rec = raw[s.id]
        assert s.dataset == "synthetic" and QUERY.match(s.query)
        assert (s.fps, s.frame_count, s.width, s.height) == (5.0, 100, 160, 120)
        assert s.span_frames == (rec["st_frame"], rec["st_frame"] + len(rec["bbox"]))
        assert s.span_seconds == pytest.approx((s.span_frames[0] / 5.0, s.span_frames[1] / 5.0))
        assert s.boxes == {rec["st_frame"] + i: (x, y, x + w, y + h) for i, (x, y, w, h) in enumerate(rec["bbox"])}
        assert s.video == str(synth_dir / "videos" / s.id)
        assert s.target_id in s.tracks and s.tracks[s.target_id] == s.boxes


@pytest.mark.parametrize("kwargs", [dict(width=161), dict(height=30), dict(fps=0.33), dict(fps=0)])
def test_bad_settings_are_user_errors(tmp_path, kwargs):
    from infra.errors import UserError

    with pytest.raises(UserError):
        generate(tmp_path, 1, seed=0, **kwargs)


def test_scene_options_make_one_large_shape_on_a_short_span(tmp_path):
    from infra.data.synth import SceneOptions

    options = SceneOptions(objects=(1, 1), object_size=(0.25, 0.35), target_span=(0.1, 0.25))
    path = generate(tmp_path, 8, seed=3, width=112, height=112, fps=1.0, options=options)
    annotations = json.loads(path.read_text())
    tracks = json.loads((tmp_path / "tracks.json").read_text())
    for name, rec in annotations.items():
        assert rec["img_num"] == 20
        assert 2 <= len(rec["bbox"]) <= 5  # 10-25 % of 20 frames (at least 2)
        sides = [max(w, h) for _, _, w, h in rec["bbox"]]
        assert all(0.25 * 112 - 2 <= side <= 0.35 * 112 + 2 for side in sides), sides
        assert set(tracks[name]) == {"target_id", str(tracks[name]["target_id"])}  # no distractor
        frames = np.stack(decode_all(tmp_path / "videos" / name))
        colour = QUERY.match(rec["English"]).group(1)
        x, y, w, h = rec["bbox"][0]
        assert colour_mask(frames[rec["st_frame"]], colour)[y:y + h, x:x + w].sum() >= 0.3 * w * h


def test_default_scene_options_keep_the_standard_scenes(tmp_path):
    from infra.data.synth import SceneOptions

    plain = generate(tmp_path / "a", 2, seed=11)
    explicit = generate(tmp_path / "b", 2, seed=11, options=SceneOptions(objects=(2, 4), object_size=(0.12, 0.2),
                                                                        target_span=(0.2, 0.6)))
    assert plain.read_bytes() == explicit.read_bytes()


def test_the_coded_background_states_each_pixels_place_and_time(tmp_path):
    """Away from the shapes, every decoded pixel is the hand formula's tint: red = 128 + 48 (2x/W - 1)
    at pixel centre x, blue the same over y, green = 128 + 48 (2f/(N - 1) - 1) on frame f of N (up to
    H.264's loss); no background pixel passes for a shape's colour; the shapes are still drawn."""
    from infra.data.synth import SceneOptions

    path = generate(tmp_path, 3, seed=5, width=64, height=48, fps=1.0, options=SceneOptions(background="coded"))
    annotations, tracks = json.loads(path.read_text()), json.loads((tmp_path / "tracks.json").read_text())
    for name, rec in annotations.items():
        frames = np.stack(decode_all(tmp_path / "videos" / name)).astype(np.float64)
        count, height, width, _ = frames.shape
        ys, xs = np.mgrid[0:height, 0:width] + 0.5
        errors = []
        for f in range(count):
            away = np.ones((height, width), bool)  # 4 px beyond every shape's box
            for track in (t for key, t in tracks[name].items() if key != "target_id"):
                if str(f) in track:
                    x1, y1, x2, y2 = track[str(f)]
                    away[max(0, y1 - 4):y2 + 4, max(0, x1 - 4):x2 + 4] = False
            expected = np.stack([128 + 48 * (2 * xs / width - 1), np.full_like(xs, 128 + 48 * (2 * f / (count - 1) - 1)),
                                 128 + 48 * (2 * ys / height - 1)], axis=-1)
            errors.append(np.abs(frames[f] - expected)[away])
            assert not (LABELS[_cells(frames[f][away])] >= 0).any(), f"{name} frame {f}: background as a shape colour"
        errors = np.concatenate(errors)
        assert np.median(errors) <= 2.5 and np.percentile(errors, 99) <= 8, (np.median(errors), errors.max())
        x, y, w, h = rec["bbox"][0]
        colour = QUERY.match(rec["English"]).group(1)
        assert colour_mask(frames[rec["st_frame"]], colour)[y:y + h, x:x + w].sum() >= 0.3 * w * h


@pytest.mark.parametrize("field, value", [("objects", (0, 1)), ("objects", (3, 2)), ("objects", (1, 7)),
                                          ("object_size", (0.0, 0.2)), ("target_span", (0.5, 1.2)),
                                          ("background", "noise")])
def test_bad_scene_options_are_user_errors_naming_the_option(field, value):
    from infra.data.synth import SceneOptions
    from infra.errors import UserError

    with pytest.raises(UserError, match=field):
        SceneOptions(**{field: value})
