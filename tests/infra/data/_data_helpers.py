"""Helpers shared by the data tests (a module of its own: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_gradient_video(path: Path, *, seconds: int = 10, fps: int = 25, width: int = 96, height: int = 64,
                         gop: int = 25, faststart: bool = False, bframes: bool = True) -> Path:
    """A moving colour gradient (every frame differs) encoded with libx264 defaults (B-frames).
    `faststart` puts the MP4 index before the frames (as streaming sites serve them), so a file cut
    short still opens and loses only its last frames. Without `bframes` the file holds the frames in
    display order, so its last packet is its last frame."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "crf": "20", **({} if bframes else {"bf": "0"})}
        ys, xs = np.mgrid[0:height, 0:width]
        for i in range(seconds * fps):
            frame = np.stack([(xs * 2 + i * 3) % 256, (ys * 3 + i * 5) % 256, (xs + ys + i * 7) % 256], axis=-1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame, decoded in order: the reference sample_frames is checked against."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path

