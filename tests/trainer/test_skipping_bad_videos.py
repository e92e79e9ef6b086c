"""What a run does with samples whose video cannot be used: one warning per file, counts per step,
and, unless skipping, the VideoError itself with what to do about it."""

from __future__ import annotations

import pytest

from infra.data.sample import GroundingSample
from infra.errors import VideoError
from rollout.types import SkippedPrompt
from trainer.bad_videos import BadVideoLog, build_usable, hint


def _sample(sample_id: str, video: str) -> GroundingSample:
    return GroundingSample(id=sample_id, video=video, fps=5.0, frame_count=100, width=160, height=120,
                           query="the red square", span_frames=(0, 50), span_seconds=(0.0, 10.0))


def test_each_bad_file_is_warned_about_once_and_every_skip_is_counted():
    warnings = []
    log = BadVideoLog(warnings.append)
    a1, a2, b = (SkippedPrompt("a#1", "/v/a.mp4", "is truncated: x"), SkippedPrompt("a#2", "/v/a.mp4", "is truncated: x"),
                 SkippedPrompt("b", "/v/b.mp4", "cannot be decoded: y"))
    assert log.step_metrics([a1]) == {"data/bad_video_skips": 1.0, "data/bad_videos": 1.0}
    assert log.step_metrics([a2, b, a1]) == {"data/bad_video_skips": 3.0, "data/bad_videos": 2.0}
    assert log.step_metrics([]) == {"data/bad_video_skips": 0.0, "data/bad_videos": 2.0}
    assert warnings == [
        "warning: video '/v/a.mp4' is truncated: x; leaving its samples out (data.on_bad_video=skip; first: a#1)",
        "warning: video '/v/b.mp4' cannot be decoded: y; leaving its samples out (data.on_bad_video=skip; first: b)"]


def test_samples_whose_video_fails_are_left_out_only_when_skipping():
    samples = [_sample("ok", "/v/ok.mp4"), _sample("bad", "/v/bad.mp4"), _sample("ok2", "/v/ok2.mp4")]

    def build(sample: GroundingSample) -> str:
        if sample.id == "bad":
            raise VideoError(sample.video, "has no video stream")
        return sample.id.upper()

    assert build_usable(samples, build, skip=True) == (["OK", "OK2"], [SkippedPrompt("bad", "/v/bad.mp4",
                                                                                     "has no video stream")])
    with pytest.raises(VideoError, match="bad.mp4"):
        build_usable(samples, build, skip=False)


def test_the_hint_offers_skipping_only_where_it_is_not_already_on():
    assert "data.on_bad_video=skip" in hint("fail") and "stvg data inspect" in hint("fail")
    assert "data.on_bad_video" not in hint("skip") and "stvg data inspect" in hint("skip")
