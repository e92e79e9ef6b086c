"""Synthetic STVG data: real H.264 videos of moving shapes with known ground-truth tubes.

Each video is 20 s long (the HC-STVG convention, so the HC-STVG reader's fps = img_num / 20 holds).
It shows 2-4 shapes of distinct colours; one is the target, visible on a known span of frames (it
appears, moves in a straight line, disappears), the others are distractors with spans of their own.
The query names the target: "the red square moving right". `SceneOptions` changes what a scene
holds (how many shapes, how big, how long the target is visible, a background that states each
pixel's place and time): one large shape alone makes a task a tiny model learns in minutes. Output,
in `out_dir`:

    videos/<id>.mp4     libx264, yuv420p
    annotations.json    HC-STVG v2 format (bbox xywh from st_frame, st_time, ed_time, img_num,
                        img_size [h, w], English), keyed by video file name
    tracks.json         every object's per-frame box, with the target's instance id (tracks format)

Deterministic: the same seed gives the same annotation bytes; video i depends only on (seed, i),
so a larger `num_videos` extends a smaller set.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from infra.data.readers.hcstvg import HCSTVG_SECONDS
from infra.data.sample import GroundingSample
from infra.data.shapes import DIRECTIONS, PALETTE, SHAPES, MovingObject, background, coded_background, draw
from infra.data.tracks import dump_by_key, tracks_to_json, write_tracks
from infra.errors import UserError

VIDEO_SECONDS = HCSTVG_SECONDS  # the HC-STVG reader's fps = img_num / 20 relies on it
ANNOTATIONS = "annotations.json"
TRACKS = "tracks.json"
VIDEOS = "videos"


BACKGROUNDS = ("grey", "coded")


@dataclass(frozen=True)
class SceneOptions:
    """What a scene holds; the defaults are the standard scenes (2-4 shapes, one of them the target)."""

    objects: tuple[int, int] = (2, 4)
    """Fewest and most shapes per video, the target included; (1, 1): the target alone."""
    object_size: tuple[float, float] = (0.12, 0.2)
    """Side of every shape as a fraction of the frame's short side, drawn uniformly (at least 12 px)."""
    target_span: tuple[float, float] = (0.2, 0.6)
    """Share of the video on which the target is visible, drawn uniformly (distractors: 20-90 %)."""
    background: str = "grey"
    """grey: a random grey level with a faint texture, the same on every frame; coded: a tint that
    states each pixel's place and time (infra.data.shapes.coded_background), for tiny models."""

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise UserError(f"background={self.background!r} must be one of: {', '.join(BACKGROUNDS)}")
        low, high = self.objects
        if not 1 <= low <= high <= len(PALETTE):
            raise UserError(f"objects={list(self.objects)} must be [fewest, most] with 1 <= fewest <= most <= "
                            f"{len(PALETTE)} (every shape has its own colour)")
        for name, (low, high), top in (("object_size", self.object_size, 0.9), ("target_span", self.target_span, 1.0)):
            if not 0 < low <= high <= top:
                raise UserError(f"{name}={[low, high]} must be [low, high] fractions with 0 < low <= high <= {top:g}")


@dataclass(frozen=True)
class Scene:
    objects: tuple[MovingObject, ...]
    """Drawn in this order; the target is last, so it is never occluded and its box stays tight."""
    num_frames: int

    @property
    def target(self) -> MovingObject:
        return self.objects[-1]


def sample_scene(rng: np.random.Generator, width: int, height: int, num_frames: int,
                 options: SceneOptions = SceneOptions()) -> Scene:
    """Random objects for one video: distinct colours, the target last."""
    count = int(rng.integers(options.objects[0], options.objects[1] + 1))
    colours = rng.choice(list(PALETTE), size=count, replace=False)
    ids = rng.permutation(count) + 1  # the target's id must not give it away
    objects = []
    for k in range(count):
        is_target = k == count - 1
        low, high = options.target_span if is_target else (0.2, 0.9)
        length = max(2, int(round(rng.uniform(low, high) * num_frames)))
        first = int(rng.integers(0, num_frames - length + 1))
        size = max(12.0, rng.uniform(*options.object_size) * min(width, height))
        direction = str(rng.choice(list(DIRECTIONS)))
        start, end = _path(rng, direction, size, width, height)
        objects.append(MovingObject(int(ids[k]), str(colours[k]), str(rng.choice(SHAPES)), direction, size,
                                    (first, first + length), start, end))
    return Scene(tuple(objects), num_frames)


def _path(rng: np.random.Generator, direction: str, size: float, width: int, height: int):
    """Start and end centres of a straight move in `direction` that keeps the shape inside the frame."""
    dx, dy = DIRECTIONS[direction]
    margin = size / 2 + 2
    along_extent = (width if dx else height) - 2 * margin
    travel = rng.uniform(0.3, 0.7) * along_extent
    a0 = margin + rng.uniform(0, along_extent - travel)
    a1 = a0 + travel
    if dx < 0 or dy < 0:
        a0, a1 = a1, a0
    across = rng.uniform(margin, (height if dx else width) - margin)
    return ((a0, across), (a1, across)) if dx else ((across, a0), (across, a1))


def render(path: str | Path, scene: Scene, width: int, height: int, fps: float,
           bg: np.ndarray | Callable[[int], np.ndarray], *,
           gop_seconds: float = 2.0, crf: int = 18, preset: str = "veryfast") -> dict[int, dict[int, tuple]]:
    """Encode the scene to an H.264 MP4 at `path`; return instance id -> frame id -> xyxy box."""
    import av

    tracks: dict[int, dict[int, tuple]] = {obj.instance_id: {} for obj in scene.objects}
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # One encoder thread: x264's frame threads made the bytes depend on scheduling under load
        # (3 different files in 30 encodes on a busy 2-core machine), and every node must
        # regenerate the driver's bytes exactly from the synthetic:// URI alone.
        stream.options = {"crf": str(crf), "preset": preset, "g": str(max(1, round(gop_seconds * fps))),
                          "threads": "1"}
        for f in range(scene.num_frames):
            canvas = bg(f) if callable(bg) else bg.copy()  # coded backgrounds change per frame
            for obj in scene.objects:
                box = draw(canvas, obj, f)
                if box is not None:
                    tracks[obj.instance_id][f] = box
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return tracks


def check_settings(width: int, height: int, fps: float, num_videos: int) -> int:
    """Validate the knobs; return the number of frames per video."""
    if num_videos < 1:
        raise UserError(f"--videos must be >= 1, got {num_videos}")
    if width % 2 or height % 2 or min(width, height) < 48:
        raise UserError(f"--width/--height must be even and >= 48 (yuv420p), got {width}x{height}")
    frames = fps * VIDEO_SECONDS
    if not (0 < fps <= 60) or abs(frames - round(frames)) > 1e-6:
        raise UserError(f"--fps must be in (0, 60] and make {VIDEO_SECONDS:g} s a whole number of frames, got {fps}")
    return int(round(frames))


def generate(out_dir: str | Path, num_videos: int, seed: int, *, width: int = 160, height: int = 120,
             fps: float = 5.0, options: SceneOptions = SceneOptions(), progress: bool = False) -> Path:
    """Write `num_videos` synthetic videos with annotations and tracks into `out_dir`; return the
    path of the annotation file. Video i of seed s is named `synth-s<s>-<i:05d>.mp4`."""
    from tqdm import tqdm

    num_frames = check_settings(width, height, fps, num_videos)
    out = Path(out_dir)
    (out / VIDEOS).mkdir(parents=True, exist_ok=True)
    annotations, tracks = {}, {}
    for i in tqdm(range(num_videos), desc="synthetic videos", unit="video", disable=not progress):
        rng = np.random.default_rng([seed, i])
        scene = sample_scene(rng, width, height, num_frames, options)
        name = f"synth-s{seed}-{i:05d}.mp4"
        bg = (background(rng, width, height) if options.background == "grey"
              else lambda f: coded_background(width, height, f, num_frames))
        boxes = render(out / VIDEOS / name, scene, width, height, fps, bg)
        target = scene.target
        first, end = target.span
        target_boxes = boxes[target.instance_id]
        if sorted(target_boxes) != list(range(first, end)):  # shapes stay inside the frame by construction
            raise RuntimeError(f"synthetic target of {name} is not drawn on every frame of its span")
        annotations[name] = {
            "bbox": [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in (target_boxes[f] for f in range(first, end))],
            "st_time": round(first / fps, 6),
            "ed_time": round(end / fps, 6),
            "img_num": num_frames,
            "img_size": [height, width],
            "st_frame": first,
            "English": target.describe(),
        }
        tracks[name] = tracks_to_json(boxes, target.instance_id)
    path = out / ANNOTATIONS
    path.write_text(dump_by_key(annotations), encoding="utf-8")
    write_tracks(out / TRACKS, tracks)
    return path


def load_synthetic(out_dir: str | Path) -> list[GroundingSample]:
    """The samples of a generated set: HC-STVG v2 reader plus tracks and target ids, dataset='synthetic'."""
    import dataclasses

    from infra.data.readers import read_annotations

    out = Path(out_dir)
    samples = read_annotations("hcstvg-v2", out / ANNOTATIONS, video_root=out / VIDEOS, tracks=out / TRACKS)
    return [dataclasses.replace(s, dataset="synthetic") for s in samples]



# ---- synthetic datasets named by URI ------------------------------------------------------------
# A run's synthetic split is identified by its generator settings, not by a folder: its samples name
# their videos `synthetic://<key>/videos/<name>`, and every node that decodes one generates the set
# once into its own cache (rollout.video_cache), byte-identical to the driver's. Nothing is copied
# between nodes, and no storage needs configuring for the demo on a multi-node cluster.

SCHEME = "synthetic://"


@dataclass(frozen=True)
class SyntheticSettings:
    """Generator settings of a synthetic split; `key` names it in URIs and cache folders."""

    videos: int
    seed: int
    width: int = 160
    height: int = 120
    fps: float = 5.0
    scene: SceneOptions = SceneOptions()
    """What the scenes hold; standard scenes keep the short key, others add their options to it, so
    a node that only has the URI regenerates the same set."""

    @property
    def key(self) -> str:
        key = f"videos{self.videos}-seed{self.seed}-w{self.width}-h{self.height}-fps{self.fps:g}"
        if self.scene != SceneOptions():
            (o1, o2), (s1, s2), (t1, t2) = self.scene.objects, self.scene.object_size, self.scene.target_span
            key += f"-objects{o1}_{o2}-size{s1:g}_{s2:g}-span{t1:g}_{t2:g}"
            if self.scene.background != "grey":
                key += f"-bg{self.scene.background}"
        return key

    @classmethod
    def from_key(cls, key: str) -> "SyntheticSettings":
        import re

        number = r"([0-9.]+(?:e-?\d+)?)"
        match = re.fullmatch(r"videos(\d+)-seed(-?\d+)-w(\d+)-h(\d+)-fps([0-9.]+)"
                             rf"(?:-objects(\d+)_(\d+)-size{number}_{number}-span{number}_{number}"
                             rf"(?:-bg({'|'.join(BACKGROUNDS)}))?)?", key)
        if match is None:
            raise UserError(f"{SCHEME}{key}: not a synthetic dataset key "
                            "(videosN-seedS-wW-hH-fpsF, then optionally -objectsA_B-sizeA_B-spanA_B and -bgcoded)")
        videos, seed, width, height, fps, *scene = match.groups()
        options = SceneOptions()
        if scene[0] is not None:
            options = SceneOptions((int(scene[0]), int(scene[1])), (float(scene[2]), float(scene[3])),
                                   (float(scene[4]), float(scene[5])), scene[6] or "grey")
        return cls(int(videos), int(seed), int(width), int(height), float(fps), options)


def synthetic_dataset(settings: SyntheticSettings, root: str | Path, progress: bool = False) -> Path:
    """The folder of the synthetic split `settings` under `root`, generated once on this node."""
    from infra.cache import build_once

    return build_once(Path(root) / settings.key, ANNOTATIONS,
                      lambda staging: generate(staging, settings.videos, settings.seed, width=settings.width,
                                               height=settings.height, fps=settings.fps, options=settings.scene,
                                               progress=progress))


def load_synthetic_split(settings: SyntheticSettings, root: str | Path,
                         progress: bool = False) -> list[GroundingSample]:
    """The samples of a synthetic split (generated under `root` if needed), their videos named by
    `synthetic://` URIs that any node can resolve."""
    import dataclasses

    folder = synthetic_dataset(settings, root, progress)
    return [dataclasses.replace(s, video=f"{SCHEME}{settings.key}/{VIDEOS}/{Path(s.video).name}")
            for s in load_synthetic(folder)]


def synthetic_video(uri: str, root: str | Path) -> Path:
    """The local file of `synthetic://<key>/videos/<name>`, its dataset generated under `root` first."""
    key, _, relative = uri[len(SCHEME):].partition("/")
    folder, _, name = relative.partition("/")
    if folder != VIDEOS or not name or "/" in name:
        raise UserError(f"{uri}: a synthetic video URI looks like {SCHEME}<key>/{VIDEOS}/<name>")
    path = synthetic_dataset(SyntheticSettings.from_key(key), root) / VIDEOS / name
    if not path.is_file():
        raise UserError(f"{uri}: the synthetic dataset has no video {name!r}")
    return path
