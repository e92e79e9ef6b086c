"""Damaged and truncated video files are VideoErrors naming the file and the problem, never a
crash: reproduced on real encoded files (synthetic H.264 videos, a libx264 gradient), damaged the
ways files are damaged in practice (bytes overwritten, a header field lost, a download cut short)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from _data_helpers import decode_all, write_gradient_video

from infra.data.video import MISSING_FRAMES_TOLERATED, check_video, sample_frames
from infra.errors import DataError, VideoError


@pytest.fixture
def video(synth_dir, tmp_path) -> Path:
    """A copy of an intact synthetic video (5 fps, 100 frames; MP4 index at the end), to damage."""
    copy = tmp_path / "video.mp4"
    shutil.copy(synth_dir / "videos" / "synth-s7-00001.mp4", copy)
    return copy


def _overwrite(path: Path, start: int, end: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    end = len(data) if end is None else end
    data[start:end] = bytes((i * 7919) % 251 for i in range(end - start))  # deterministic garbage
    path.write_bytes(bytes(data))


def _both_fail(path: Path, *words: str) -> str:
    """sample_frames (what a run does) and check_video (what `stvg data inspect` does) both raise a
    VideoError that names the file and says what is wrong; returns sample_frames' message."""
    messages = []
    for read in (lambda: sample_frames(path, fps=0.5, max_frames=10), lambda: check_video(path)):
        with pytest.raises(VideoError) as caught:
            read()
        assert caught.value.video == str(path)
        assert str(caught.value).startswith(f"video {str(path)!r} ")
        for word in words:
            assert word in caught.value.problem
        messages.append(str(caught.value))
    return messages[0]


def test_an_intact_video_passes_the_check(video):
    check_video(video)
    assert len(sample_frames(video, fps=0.5, max_frames=10).frames) == 10


def test_bytes_overwritten_from_byte_2000_to_the_end_make_the_file_unopenable(video):
    _overwrite(video, 2000)
    _both_fail(video, "cannot be opened as a video")


def test_bytes_overwritten_from_byte_2000_up_to_the_index_make_the_frames_undecodable(video):
    data = video.read_bytes()
    index = data.rindex(b"moov") - 4  # the box starts 4 bytes before its name
    assert index > 4000
    _overwrite(video, 2000, index)
    _both_fail(video, "cannot be decoded")


def test_a_lost_codec_tag_is_a_video_error_not_an_attribute_error(video):
    """The case of the issue: PyAV opens the stream but has no decoder for it (codec_context None)."""
    data = bytearray(video.read_bytes())
    tag = data.rindex(b"avc1")  # the sample description's codec, inside the index
    data[tag:tag + 4] = b"\0\0\0\0"
    video.write_bytes(bytes(data))
    _both_fail(video, "no decoder")


def test_a_file_cut_in_half_before_its_index_is_a_video_error(video):
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    _both_fail(video, "cannot be opened")


def _decodable_frames(path: Path) -> int:
    """Frames a plain packet-by-packet decode gets before the first error (independent of sample_frames)."""
    import av

    count = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError:
                break
    return count


def test_a_stream_cut_short_behind_its_index_is_truncated_at_the_first_frame_it_cannot_reach(tmp_path):
    path = write_gradient_video(tmp_path / "cut.mp4", faststart=True)  # 25 fps, 250 frames declared
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    last = _decodable_frames(path) - 1
    assert 0 < last < 200

    def first_missing(wanted):
        return next(f for f in wanted if f - last > MISSING_FRAMES_TOLERATED)

    message = _both_fail(path, "is truncated")
    run_wants = first_missing(range(0, 250, 50))  # fps=0.5 over 10 s: frames 0, 50, ..., 200
    assert f"stops before frame {run_wants} ({run_wants / 25:.1f} s) of the 250 frames (10.0 s)" in message
    with pytest.raises(VideoError, match=r"stops before frame 249 \(10.0 s\)"):  # the last frame
        check_video(path)
    frames = sample_frames(path, fps=25.0, segment=(0.0, last / 25))  # the frames before the cut are intact
    assert len(frames.frames) == last


def test_a_stream_one_frame_short_of_its_declared_count_still_samples_its_last_frame(tmp_path):
    """Containers may count a frame they do not hold: within MISSING_FRAMES_TOLERATED frames of the
    end, a wanted frame that is not there gets the last one (no error)."""
    import av

    path = write_gradient_video(tmp_path / "short.mp4", faststart=True, bframes=False)
    with av.open(str(path)) as container:
        end = max(p.pos for p in container.demux(video=0) if p.size)  # the last frame's packet: cut it away
    path.write_bytes(path.read_bytes()[:end])
    full = decode_all(path)
    assert len(full) == 249  # one short of the 250 the container declares
    check_video(path)
    sampled = sample_frames(path, fps=25.0, segment=(9.8, 10.0), max_long_side=None)  # frames 245..249
    assert sampled.frame_ids.tolist() == [245, 246, 247, 248, 248]
    for frame, fid in zip(sampled.frames, sampled.frame_ids.tolist()):
        assert (frame == full[fid]).all()


def test_a_missing_file_is_a_video_error_and_a_uri_is_not(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        check_video(tmp_path / "nope.mp4")
    with pytest.raises(DataError) as caught:
        sample_frames("s3://bucket/v.mp4")
    assert not isinstance(caught.value, VideoError)  # a caller's mistake, not a damaged file


def test_a_video_error_keeps_its_file_and_problem_across_processes():
    error = pickle.loads(pickle.dumps(VideoError("/data/v.mp4", "is truncated")))
    assert (type(error), error.video, error.problem, str(error)) == \
        (VideoError, "/data/v.mp4", "is truncated", "video '/data/v.mp4' is truncated")
    hinted = error.with_hint("set data.on_bad_video=skip")
    assert str(hinted) == "video '/data/v.mp4' is truncated; set data.on_bad_video=skip"
