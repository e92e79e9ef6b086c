"""Benchmark: sampling frames by seeking (infra.data.video.sample_frames) vs decoding every frame.

Makes a synthetic H.264 video (default 60 s, 1280x720, 25 fps, a keyframe every 2 s: typical of
web video), then times sampling 32 frames both ways, side by side in this run, and prints the ratio.

    .venv/bin/python bench/video_decode.py [--seconds 60] [--width 1280] [--height 720] [--fps 25]
                                           [--gop-seconds 2] [--frames 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.data.shapes import background  # noqa: E402
from infra.data.synth import render, sample_scene  # noqa: E402
from infra.data.video import fit_size, sample_frames  # noqa: E402

TARGET_RATIO = 2.0
"""Sampling 32 frames of a 60 s 720p video should be at least this many times faster than a full decode."""


def decode_everything(path: Path, ids: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    """The baseline: decode every frame in order, convert the ones wanted."""
    import av

    wanted, out = set(ids.tolist()), []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                out.append(frame.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="AREA"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--gop-seconds", type=float, default=2.0, help="keyframe interval of the test video")
    parser.add_argument("--frames", type=int, default=32, help="frames to sample (spread over the video)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each method; the best counts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        rng = np.random.default_rng(0)
        num_frames = int(round(args.seconds * args.fps))
        t0 = time.perf_counter()
        scene = sample_scene(rng, args.width, args.height, num_frames)
        render(path, scene, args.width, args.height, args.fps, background(rng, args.width, args.height),
               gop_seconds=args.gop_seconds)
        print(f"made a {args.seconds:g} s {args.width}x{args.height} {args.fps:g} fps video "
              f"(keyframe every {args.gop_seconds:g} s) in {time.perf_counter() - t0:.1f} s")

        sample_kwargs = dict(fps=args.frames / args.seconds * 4, max_frames=args.frames)
        seek_times, full_times = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            sampled = sample_frames(path, **sample_kwargs)
            seek_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            baseline = decode_everything(path, sampled.frame_ids, fit_size(args.width, args.height))
            full_times.append(time.perf_counter() - t0)
        same = all(np.array_equal(a, b) for a, b in zip(sampled.frames, baseline))

    seek, full = min(seek_times), min(full_times)
    print(f"sample_frames, {len(sampled.frame_ids)} frames: {seek:.3f} s ({sampled.decoded_frames} frames decoded)")
    print(f"decode all {num_frames} frames:        {full:.3f} s")
    print(f"ratio (full / sampled): {full / seek:.1f}x   target: >= {TARGET_RATIO:g}x   "
          f"frames identical: {same}")
    print("RESULT " + json.dumps({"bench": "video_decode", "value": round(full / seek, 2), "unit": "x",
                                  "figure": f"{full / seek:.1f}x faster than decoding every frame "
                                            f"({seek:.3f} s for {len(sampled.frame_ids)} frames)",
                                  "target": f">= {TARGET_RATIO:g}x", "met": full / seek >= TARGET_RATIO and same}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
