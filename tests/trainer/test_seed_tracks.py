"""Candidate tracks for task stvg-r1 in data preparation: from a tracks file, or from data.tracker run
once and cached beside the annotations; a sample left without tracks or without a target is a
UserError naming the fix."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from infra.errors import UserError
from trainer.config import load_run_config
from infra.data.dataset_cache import AnnotationFile
from trainer.preparation import prepare_data, tracks_cache


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two synthetic videos as an HC-STVG v2 dataset (annotations + videos, no tracks attached)."""
    from infra.data.synth import generate

    out = tmp_path_factory.mktemp("r1-data")
    generate(out, num_videos=2, seed=3, width=160, height=120, fps=5.0)
    return out


def _cfg(dataset, tmp_path, *overrides):
    return load_run_config(None, ["task=stvg-r1", "data.source=hcstvg-v2", "quiet=true",
                                  f"data.train_annotations={dataset / 'annotations.json'}",
                                  f"data.video_root={dataset / 'videos'}", f"model.cache_dir={tmp_path}",
                                  *overrides])


def test_a_dataset_without_tracks_is_a_user_error_naming_both_fixes(dataset, tmp_path):
    with pytest.raises(UserError) as err:
        prepare_data(_cfg(dataset, tmp_path))
    assert "2 of 2 train samples" in str(err.value)
    assert "data.tracks=" in str(err.value) and "data.tracker=colour-blobs" in str(err.value)
    # the other tasks need no tracks
    train, _ = prepare_data(_cfg(dataset, tmp_path, "task=vtg"))
    assert [s.tracks for s in train] == [None, None]


def test_a_tracks_file_gives_tracks_and_target_ids(dataset, tmp_path):
    written = json.loads((dataset / "tracks.json").read_text())
    train, _ = prepare_data(_cfg(dataset, tmp_path, f"data.tracks={dataset / 'tracks.json'}"))
    for sample in train:
        assert sample.target_id == written[sample.id]["target_id"]
        assert sorted(sample.tracks) == sorted(int(k) for k in written[sample.id] if k != "target_id")


def test_target_ids_missing_from_a_tracks_file_come_from_the_gt_vote(dataset, tmp_path):
    written = json.loads((dataset / "tracks.json").read_text())
    no_targets = {name: {k: v for k, v in entry.items() if k != "target_id"} for name, entry in written.items()}
    (tmp_path / "bare.json").write_text(json.dumps(no_targets))
    train, _ = prepare_data(_cfg(dataset, tmp_path, f"data.tracks={tmp_path / 'bare.json'}"))
    # the generator's target is the object the GT boxes were drawn from: it wins every frame's vote
    assert [s.target_id for s in train] == [written[s.id]["target_id"] for s in train]


def test_tracks_far_from_the_target_are_an_error_unless_skipped(dataset, tmp_path):
    written = json.loads((dataset / "tracks.json").read_text())
    first = sorted(written)[0]
    # the first video's only candidate is a 1-pixel box in a corner no target reaches
    corner = {name: ({"1": {str(f): [0, 0, 1, 1] for f in range(100)}} if name == first else entry)
              for name, entry in written.items()}
    (tmp_path / "corner.json").write_text(json.dumps(corner))
    with pytest.raises(UserError, match="data.skip_invalid=true"):
        prepare_data(_cfg(dataset, tmp_path, f"data.tracks={tmp_path / 'corner.json'}"))
    train, _ = prepare_data(_cfg(dataset, tmp_path, f"data.tracks={tmp_path / 'corner.json'}",
                                 "data.skip_invalid=true"))
    assert [s.id for s in train] == sorted(written)[1:]


def test_the_tracker_runs_once_and_its_tracks_are_cached_beside_the_annotations(dataset, tmp_path, capsys):
    cfg = _cfg(dataset, tmp_path, "data.tracker=colour-blobs", "data.tracker_fps=2.5")
    annotations = dataset / "annotations.json"
    cache = tracks_cache(cfg, AnnotationFile(str(annotations), annotations)).path
    assert cache == dataset / "annotations.tracks-colour-blobs-2.5fps.json"
    first, _ = prepare_data(cfg)
    assert "tracking 2 samples with colour-blobs" in capsys.readouterr().out
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    time.sleep(0.01)
    again, _ = prepare_data(cfg)
    assert "tracking" not in capsys.readouterr().out and cache.stat().st_mtime_ns == stamp
    assert [(s.tracks, s.target_id) for s in again] == [(s.tracks, s.target_id) for s in first]
    for sample in first:
        # tracked at 2.5 fps: boxes on every other frame of the 5-fps video only
        assert all(f % 2 == 0 for track in sample.tracks.values() for f in track)
        assert sample.target_id in sample.tracks


def test_a_video_that_fails_mid_tracking_keeps_what_was_tracked_before_it(tmp_path, capsys):
    """Tracking a large dataset takes long: a damaged video ends the run (data.on_bad_video=fail),
    and the rerun after fixing it tracks only what was left."""
    from infra.data.readers import read_annotations
    from infra.data.synth import generate
    from infra.errors import VideoError

    data = tmp_path / "data"
    generate(data, num_videos=3, seed=4, width=160, height=120, fps=5.0)
    order = read_annotations("hcstvg-v2", data / "annotations.json")
    last = Path(order[-1].video)  # tracked last: damage it
    intact = last.read_bytes()
    last.write_bytes(intact[:600])
    cfg = _cfg(data, tmp_path / "cache", "data.tracker=colour-blobs")
    cache = tracks_cache(cfg, AnnotationFile(str(data / "annotations.json"), data / "annotations.json")).path
    with pytest.raises(VideoError, match=last.name):
        prepare_data(cfg)
    assert sorted(json.loads(cache.read_text())) == sorted(s.id for s in order[:-1])
    capsys.readouterr()
    last.write_bytes(intact)  # fixed
    train, _ = prepare_data(cfg)
    assert "tracking 1 samples" in capsys.readouterr().out
    assert sorted(json.loads(cache.read_text())) == sorted(s.id for s in order)
    assert all(s.target_id in s.tracks for s in train)


def test_with_skip_a_video_the_tracker_cannot_read_is_left_out_and_retried_next_run(tmp_path, caplog):
    """data.on_bad_video=skip: the damaged video's sample is left out with a warning, the others are
    tracked and cached; the damaged one is not cached, so once fixed the next run tracks it."""
    import logging

    from infra.data.readers import read_annotations
    from infra.data.synth import generate

    data = tmp_path / "data"
    generate(data, num_videos=3, seed=4, width=160, height=120, fps=5.0)
    order = read_annotations("hcstvg-v2", data / "annotations.json")
    bad = Path(order[1].video)  # in the middle: tracking goes on after it
    intact = bad.read_bytes()
    bad.write_bytes(intact[:600])
    cfg = _cfg(data, tmp_path / "cache", "data.tracker=colour-blobs", "data.on_bad_video=skip")
    cache = tracks_cache(cfg, AnnotationFile(str(data / "annotations.json"), data / "annotations.json")).path
    with caplog.at_level(logging.WARNING, logger="stvg.data"):
        train, _ = prepare_data(cfg)
    kept = sorted([order[0].id, order[2].id])
    assert sorted(s.id for s in train) == kept
    assert all(s.target_id in s.tracks for s in train)
    assert sorted(json.loads(cache.read_text())) == kept
    assert any("left out 1 of 3 samples" in r.getMessage() and order[1].id in r.getMessage() for r in caplog.records)
    bad.write_bytes(intact)  # re-encoded
    train, _ = prepare_data(cfg)
    assert sorted(s.id for s in train) == sorted(s.id for s in order)
    assert sorted(json.loads(cache.read_text())) == sorted(s.id for s in order)
