"""sample_frames: timestamps and frame ids worked by hand, sizes, and pixels equal to a full decode."""

from __future__ import annotations

import numpy as np
import pytest
from _data_helpers import decode_all
from PIL import Image

from infra.data.video import fit_size, sample_frames
from infra.errors import DataError


@pytest.fixture(scope="module")
def synth_video(synth_dir):
    return synth_dir / "videos" / "synth-s7-00000.mp4"  # 5 fps, 100 frames, 160x120


@pytest.fixture(scope="module")
def gradient_frames(gradient_video):
    return decode_all(gradient_video)  # 25 fps, 250 frames, 96x64, keyframe every 25, B-frames


def _assert_same_as_full_decode(sampled, full):
    for fid, frame in zip(sampled.frame_ids.tolist(), sampled.frames):
        assert np.array_equal(frame, full[fid]), fid


def test_timestamps_at_the_requested_fps_show_the_frame_on_screen(synth_video):
    s = sample_frames(synth_video, fps=2.0)
    assert s.timestamps.dtype == np.float64 and s.frame_ids.dtype == np.int64
    assert np.allclose(s.timestamps, np.arange(40) * 0.5)  # 0, 0.5, ..., 19.5 s of a 20 s video
    assert s.frame_ids[:6].tolist() == [0, 2, 5, 7, 10, 12]  # floor(t * 5 fps)
    assert s.frame_ids[-1] == 97
    assert s.frames.shape == (40, 120, 160, 3) and s.frames.dtype == np.uint8
    assert (s.video_fps, s.sample_fps) == (5.0, 2.0)
    _assert_same_as_full_decode(s, decode_all(synth_video))


def test_max_frames_spreads_frames_over_the_whole_video(synth_video):
    s = sample_frames(synth_video, fps=2.0, max_frames=8)
    assert np.allclose(s.timestamps, [0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5])
    assert s.frame_ids.tolist() == [0, 12, 25, 37, 50, 62, 75, 87]
    assert s.sample_fps == pytest.approx(0.4)


def test_segment_starts_the_timestamps_at_its_start(synth_video):
    s = sample_frames(synth_video, fps=2.0, segment=(3.1, 9.0))
    assert np.allclose(s.timestamps, 3.1 + 0.5 * np.arange(12))
    assert s.frame_ids.tolist() == [15, 18, 20, 23, 25, 28, 30, 33, 35, 38, 40, 43]


def test_sparse_sampling_seeks_and_still_returns_the_exact_frames(gradient_video, gradient_frames):
    s = sample_frames(gradient_video, fps=0.7, max_long_side=None)
    assert s.frame_ids.tolist() == [0, 35, 71, 107, 142, 178, 214]  # floor(k / 0.7 * 25)
    _assert_same_as_full_decode(s, gradient_frames)
    # from the keyframe before each id (every 25th frame): 1 + 11 + 22 + 8 + 18 + 4 + 15 = 79 frames
    # at most, fewer as frames no other frame references are skipped; decoding up to 214 takes 215
    assert 7 <= s.decoded_frames <= 79
    s = sample_frames(gradient_video, fps=3.0, segment=(2.0, 4.0), max_long_side=None)
    assert s.frame_ids.tolist() == [50, 58, 66, 75, 83, 91]
    _assert_same_as_full_decode(s, gradient_frames)
    every = sample_frames(gradient_video, fps=30.0, max_long_side=None)  # capped at the video's 25 fps
    assert every.frame_ids.tolist() == list(range(250))
    _assert_same_as_full_decode(every, gradient_frames)


def test_irregular_ids_match_a_full_decode(gradient_video, gradient_frames):
    s = sample_frames(gradient_video, fps=1.0, max_frames=5, max_long_side=None, segment=(0.96, 9.9))
    # 5 frames over 8.94 s: t = 0.96 + k * 1.788 -> frames floor(25 t)
    assert s.frame_ids.tolist() == [24, 68, 113, 158, 202]
    _assert_same_as_full_decode(s, gradient_frames)


@pytest.mark.parametrize("size, cap, multiple, expected", [
    ((1280, 720), 336, 28, (336, 196)),  # 336 x 189, then 189 -> 196
    ((640, 360), 336, 1, (336, 189)),
    ((160, 120), 336, 28, (168, 112)),  # never shrunk to reach the cap; 160 -> 168
    ((100, 30), 336, 28, (112, 28)),
    ((1000, 10), 336, 28, (336, 28)),  # a side never rounds to 0
    ((600, 300), 300, 28, (280, 140)),  # 300 -> 308 would pass the cap: rounded down
    ((160, 120), None, 1, (160, 120)),
])
def test_fit_size_keeps_aspect_caps_the_long_side_and_rounds_to_multiples(size, cap, multiple, expected):
    assert fit_size(*size, max_long_side=cap, size_multiple=multiple) == expected


def test_frames_are_resized_to_multiples_with_the_scale_back_to_the_original(gradient_video):
    s = sample_frames(gradient_video, fps=1.0, size_multiple=28)
    assert s.frame_size == (84, 56) and s.frames.shape[1:] == (56, 84, 3)
    assert s.original_size == (96, 64)
    assert s.scale_to_original == pytest.approx((96 / 84, 64 / 56))


def test_downscaled_frames_look_like_the_full_frames_downscaled(gradient_video, gradient_frames):
    s = sample_frames(gradient_video, fps=1.0, max_long_side=48)
    assert s.frame_size == (48, 32) and s.scale_to_original == (2.0, 2.0)
    for fid, frame in zip(s.frame_ids.tolist(), s.frames):
        reference = np.asarray(Image.fromarray(gradient_frames[fid]).resize((48, 32), Image.BOX))
        assert np.abs(frame.astype(int) - reference.astype(int)).mean() < 8


def test_missing_unreadable_and_remote_videos_are_data_errors(tmp_path, synth_video):
    with pytest.raises(DataError, match="nope.mp4.*does not exist"):
        sample_frames(tmp_path / "nope.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(DataError, match="garbage.mp4"):
        sample_frames(garbage)
    with pytest.raises(DataError, match="s3://bucket/v.mp4"):
        sample_frames("s3://bucket/v.mp4")
    with pytest.raises(DataError, match="segment"):
        sample_frames(synth_video, segment=(25.0, 30.0))
