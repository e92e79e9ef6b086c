"""Annotation readers: every dataset format becomes a list of GroundingSample (infra/data/sample.py).

    from infra.data.readers import read_annotations
    samples = read_annotations("hcstvg-v2", "data/hcstvg/valv2.json", video_root="s3://bucket/hcstvg/videos")

Conventions per format are in each module's docstring and in docs/data.md.
"""

from __future__ import annotations

from pathlib import Path

from infra.data.sample import GroundingSample
from infra.errors import DataError

FORMATS = ("hcstvg-v1", "hcstvg-v2", "vidstg", "charades")


def read_annotations(fmt: str, path: str | Path, *, video_root: str | Path | None = None,
                     trajectories_dir: str | Path | None = None, tracks: str | Path | None = None,
                     skip_invalid: bool = False) -> list[GroundingSample]:
    """Read an annotation file of format `fmt` (one of FORMATS).

    video_root: folder or `s3://` prefix the video names are joined to; default `videos/` beside
        the annotation file.
    trajectories_dir: VidSTG only, the folder of VidOR per-video annotation files (boxes).
    tracks: a tracks file (infra/data/tracks.py) whose instance tracks are attached to the samples.
    skip_invalid: skip malformed records (one warning counts them) instead of raising DataError.
    An empty string for video_root, trajectories_dir or tracks means "not given" (as configs write it).
    """
    video_root, trajectories_dir, tracks = (v if v not in ("", None) else None
                                            for v in (video_root, trajectories_dir, tracks))
    if fmt not in FORMATS:
        raise DataError(f"unknown annotation format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if trajectories_dir is not None and fmt != "vidstg":
        raise DataError(f"trajectories_dir is for the vidstg format only, not {fmt!r}")
    if fmt in ("hcstvg-v1", "hcstvg-v2"):
        from infra.data.readers.hcstvg import read_hcstvg

        samples = read_hcstvg(path, version=int(fmt[-1]), video_root=video_root, skip_invalid=skip_invalid)
    elif fmt == "vidstg":
        from infra.data.readers.vidstg import read_vidstg

        samples = read_vidstg(path, trajectories_dir=trajectories_dir, video_root=video_root,
                              skip_invalid=skip_invalid)
    else:
        from infra.data.readers.charades import read_charades

        samples = read_charades(path, video_root=video_root, skip_invalid=skip_invalid)
    if tracks is not None:
        from infra.data.tracks import attach_tracks

        samples = attach_tracks(samples, tracks)
    return samples


__all__ = ["FORMATS", "read_annotations"]
