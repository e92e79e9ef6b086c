"""Frame sampling: the frames a model sees, decoded without decoding the whole file.

Timestamps are t_k = start + k / rate for k = 0, 1, ... while t_k < end (start/end: the segment, or
0 and the video's duration), rate = min(fps, the video's fps) so no frame repeats. When that gives
more than `max_frames`, the rate drops to max_frames / (end - start): frames stay evenly spaced from
`start` and cover the whole segment. The frame at t is the one on screen at t, id floor(t * video_fps),
so the video is assumed constant-frame-rate (true of the datasets and of the synthetic videos; a
variable-rate file gets approximate ids).

Decoding seeks to the keyframe before each wanted frame and decodes forward to it, but keeps
decoding forward instead when the next wanted frame is nearer than what a seek has been costing; on
the way, frames that no other frame references are skipped by the decoder. Local files only.
Verified on CPU with H.264 (B-frames, closed GOPs); see docs/data.md for what is not verified.

A file that cannot serve the frames asked of it (missing, not a video, damaged headers or packets,
a decoder that cannot be found, a stream that ends well before the frame count its container
declares) raises VideoError naming the file and the problem. `check_video` opens a file the same
way and decodes its first and last frame, for `stvg data inspect`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from infra.errors import DataError, VideoError

MIN_SEEK_GAP = 8
"""Never seek for a frame fewer than this many frames ahead: decoding forward is cheaper."""

MISSING_FRAMES_TOLERATED = 2
"""A stream may end this many frames short of the count its container declares (rounding of a
duration, a last frame the muxer counted but did not write): the missing ids get the last frame.
A stream that ends earlier than that is a truncated file (VideoError)."""


@dataclass(frozen=True)
class SampledFrames:
    frames: np.ndarray
    """[T, H, W, 3] uint8 RGB, at `frame_size`."""
    timestamps: np.ndarray
    """[T] float64: seconds of each frame in the original video."""
    frame_ids: np.ndarray
    """[T] int64: 0-based index of each frame in the decoded video."""
    frame_size: tuple[int, int]
    """(width, height) of the returned frames."""
    original_size: tuple[int, int]
    """(width, height) of the video."""
    scale_to_original: tuple[float, float]
    """(sx, sy) = original / returned: multiply returned-frame pixels by these for video pixels."""
    video_fps: float = 0.0
    """Frame rate of the video."""
    sample_fps: float = 0.0
    """Rate the timestamps are spaced at (lower than asked when max_frames capped it)."""
    decoded_frames: int = 0
    """Frames the decoder produced to get these (a full decode produces all of them)."""


def fit_size(width: int, height: int, max_long_side: int | None = 336, size_multiple: int = 1) -> tuple[int, int]:
    """Size keeping the aspect ratio with the long side <= max_long_side (never enlarged to reach it),
    then each side rounded to the nearest multiple of size_multiple (at least one multiple); a side
    that rounding pushes above max_long_side is rounded down instead."""
    scale = 1.0 if max_long_side is None else min(1.0, max_long_side / max(width, height))
    out = []
    for side in (width * scale, height * scale):
        n = max(size_multiple, int(round(side / size_multiple)) * size_multiple)
        if max_long_side is not None and n > max_long_side:
            n = max(size_multiple, (max_long_side // size_multiple) * size_multiple)
        out.append(n)
    return out[0], out[1]


def sample_frames(video: str | Path, *, fps: float = 2.0, max_frames: int | None = None,
                  max_long_side: int | None = 336, size_multiple: int = 1,
                  segment: tuple[float, float] | None = None) -> SampledFrames:
    """Frames of the local video file at `fps` from 0 (or from segment[0], seconds, up to segment[1]
    exclusive), at most `max_frames`, resized as `fit_size` says. Raises VideoError for a file that
    is missing or cannot give those frames (module docstring), DataError for a URI (fetch s3://
    objects to a local cache first) or a segment outside the video."""
    if fps <= 0 or (max_frames is not None and max_frames < 1) or size_multiple < 1 or \
            (max_long_side is not None and max_long_side < 1):
        raise ValueError(f"bad sampling arguments: fps={fps}, max_frames={max_frames}, "
                         f"max_long_side={max_long_side}, size_multiple={size_multiple}")
    path = _local_path(video)
    with _open_video(path) as (container, stream, info):
        timestamps, rate = _timestamps(info, fps, max_frames, segment, path)
        ids = np.minimum(np.floor(timestamps * info.fps + 1e-6).astype(np.int64), info.frame_count - 1)
        size = fit_size(info.width, info.height, max_long_side, size_multiple)

        def convert(frame) -> np.ndarray:
            return frame.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="AREA")

        decoded, decoded_count = _decode(container, stream, info, sorted(set(ids.tolist())), convert, path)
    frames = [decoded[i][1] for i in ids.tolist()]
    ids = np.array([decoded[i][0] for i in ids.tolist()], dtype=np.int64)
    return SampledFrames(
        frames=np.stack(frames),
        timestamps=timestamps,
        frame_ids=ids,
        frame_size=size,
        original_size=(info.width, info.height),
        scale_to_original=(info.width / size[0], info.height / size[1]),
        video_fps=info.fps,
        sample_fps=rate,
        decoded_frames=decoded_count,
    )


def check_video(video: str | Path) -> None:
    """Open the local video as sample_frames does (container, video stream, decoder, frame rate and
    count) and decode its first and its last frame; raise VideoError naming what fails. This finds
    unreadable and truncated files in a fraction of a full decode (one seek to the last keyframe);
    damage in the middle of a stream shows only when those frames are decoded."""
    path = _local_path(video)
    with _open_video(path) as (container, stream, info):
        _decode(container, stream, info, sorted({0, info.frame_count - 1}), lambda frame: None, path)


@contextmanager
def _open_video(path: Path):
    """(container, its first video stream, _StreamInfo), with every FFmpeg error while the caller
    uses them (opening, demuxing, decoding) raised as a VideoError naming the file."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise VideoError(str(path), f"cannot be opened as a video: {_reason(err)}") from None
    try:
        with container:
            if not container.streams.video:
                raise VideoError(str(path), "has no video stream (not a video, or a damaged or truncated file)")
            # PyAV's default slice threading: frame threading would refill its pipeline at every seek
            stream = container.streams.video[0]
            yield container, stream, _StreamInfo.of(container, stream, path)
    except av.error.FFmpegError as err:
        raise VideoError(str(path), f"cannot be decoded: {_reason(err)}") from None


def _reason(err) -> str:
    """FFmpeg's own words without the file name PyAV appends (the message names the file once)."""
    return getattr(err, "strerror", None) or str(err)


def _local_path(video: str | Path) -> Path:
    if "://" in str(video):
        raise DataError(f"video {str(video)!r} is a URI: sample_frames reads local files; "
                        "fetch it first (the rollout's video cache does)")
    path = Path(video)
    if not path.is_file():
        raise VideoError(str(path), "does not exist")
    return path


@dataclass(frozen=True)
class _StreamInfo:
    fps: float
    frame_count: int
    width: int
    height: int
    start_pts: int
    time_base: float

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps

    def frame_id(self, pts: int | None, previous: int) -> int:
        if pts is None:
            return previous + 1
        return int(round((pts - self.start_pts) * self.time_base * self.fps))

    def pts(self, frame_id: int) -> int:
        return self.start_pts + int(round(frame_id / self.fps / self.time_base))

    @classmethod
    def of(cls, container, stream, path: Path) -> "_StreamInfo":
        ctx = stream.codec_context
        if ctx is None:  # PyAV found no decoder: a damaged sample description, or an unknown codec
            raise VideoError(str(path), "has a video stream no decoder can read (damaged header or "
                                        "unknown codec)")
        if not ctx.width or not ctx.height:
            raise VideoError(str(path), "has a video stream without a frame size (damaged header)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or stream.time_base is None:
            raise VideoError(str(path), "has no frame rate")
        fps, tb = float(rate), float(stream.time_base)
        count = stream.frames
        if not count:  # containers without a frame count (mkv, webm): derive it from the duration
            if stream.duration:
                seconds = stream.duration * tb
            elif container.duration:
                seconds = container.duration / 1_000_000
            else:
                raise VideoError(str(path), "gives neither a frame count nor a duration")
            count = int(round(seconds * fps))
        if count < 1:
            raise VideoError(str(path), "has no frames")
        return cls(fps, int(count), ctx.width, ctx.height, stream.start_time or 0, tb)


def _timestamps(info: _StreamInfo, fps: float, max_frames: int | None,
                segment: tuple[float, float] | None, path: Path) -> tuple[np.ndarray, float]:
    start, end = (0.0, info.duration) if segment is None else (max(0.0, segment[0]), min(segment[1], info.duration))
    if not end > start:
        raise DataError(f"segment {segment} is empty within video {str(path)!r} of {info.duration:.3f} s")
    return sample_times(start, end, float(min(fps, info.fps)), max_frames)


def sample_times(start: float, end: float, rate: float, max_frames: int | None) -> tuple[np.ndarray, float]:
    """The sampling rule of the module docstring for [start, end) at `rate` frames per second (the
    asked fps, at most the video's): (timestamps, the rate they are spaced at)."""
    count = max(1, math.ceil((end - start) * rate - 1e-9))
    if max_frames is not None and count > max_frames:
        rate, count = max_frames / (end - start), max_frames
    return start + np.arange(count, dtype=np.float64) / rate, rate


def _decode(container, stream, info: _StreamInfo, wanted: list[int], convert: Callable,
            path: Path) -> tuple[dict[int, tuple[int, np.ndarray]], int]:
    """For each of the sorted frame ids `wanted`: (id actually decoded, converted frame); and the
    number of frames decoded. Ids at most MISSING_FRAMES_TOLERATED past the real end of the stream
    (a container that overstates its frame count) get the last frame; further ones mean the file
    is truncated (VideoError).

    Packets that display before the wanted frame are decoded with skip_frame=NONREF: frames no other
    frame references are not decoded at all (about half of them in B-frame encodes)."""
    import av

    ctx = stream.codec_context
    half_frame = 0.5 / info.fps / info.time_base  # in pts units: absorbs rounding of frame times
    file_size = path.stat().st_size

    def restart(seek_to: int | None):
        if seek_to is not None:
            container.seek(seek_to, stream=stream, backward=True, any_frame=False)
        return container.demux(stream)

    def next_frame(packets, pending: list, skip_below: float):
        while not pending:
            packet = next(packets, None)
            if packet is None:
                return None
            skip = "NONREF" if packet.pts is not None and packet.pts < skip_below else "DEFAULT"
            if ctx.skip_frame != skip:
                ctx.skip_frame = skip
            try:
                pending.extend(packet.decode())  # the last (empty) packet flushes the decoder
            except av.error.InvalidDataError:
                if packet.pos is None or packet.pos < 0 or packet.pos + packet.size < file_size:
                    raise
                return None  # a packet cut off by the end of the file: the stream ends here (truncated)
        return pending.pop(0)

    out: dict[int, tuple[int, np.ndarray]] = {}
    count = 0
    packets, pending = None, []  # the current demux iterator and frames decoded but not yet seen
    pos, last = -1, None  # id and frame last seen
    seek_costs: list[int] = []  # frames output after each seek before reaching its target
    for k, target in enumerate(wanted):
        expected_seek_cost = sum(seek_costs) / len(seek_costs) if seek_costs else 0
        just_seeked = False
        if packets is None or target - pos > max(MIN_SEEK_GAP, expected_seek_cost):
            just_seeked = packets is not None or target >= MIN_SEEK_GAP
            packets, pending = restart(info.pts(target) if just_seeked else None), []
        skip_below = info.pts(target) - half_frame
        while pos < target:
            frame = next_frame(packets, pending, skip_below)
            if frame is None:  # end of stream: every remaining id gets the last frame, if it is near
                if last is None:
                    raise VideoError(str(path), "has no decodable frame")
                unreached = [t for t in wanted[k:] if t - pos > MISSING_FRAMES_TOLERATED]
                if unreached:
                    raise VideoError(str(path), f"is truncated: its stream stops before frame {unreached[0]} "
                                                f"({unreached[0] / info.fps:.1f} s) of the {info.frame_count} "
                                                f"frames ({info.duration:.1f} s) its container declares")
                converted = convert(last)
                out.update({t: (pos, converted) for t in wanted[k:]})
                return out, count
            count += 1
            pos, last = info.frame_id(frame.pts, pos), frame
            if just_seeked:
                just_seeked = False
                if pos > target:  # the seek overshot (odd index): decode from the beginning
                    packets, pending, pos = restart(info.start_pts), [], -1
                    continue
                seek_costs.append(target - pos)
        out[target] = (pos, convert(last))
    return out, count
