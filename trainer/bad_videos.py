"""Samples whose video cannot be used (missing, damaged, truncated: infra.errors.VideoError).

`data.on_bad_video=fail` (the default): the first such video ends the run with one line naming the
file and its problem, plus what to do (`hint`). `data.on_bad_video=skip`: the rollout pool (and SFT's
prompt building) leaves the sample out; learner rank 0 warns once per file on the console and logs
how many samples each step left out. A damaged file stays damaged, so its samples are left out
again each time they come up (a cheap failed open), and the warning is not repeated.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from infra.data.sample import GroundingSample
from infra.errors import VideoError
from rollout.types import SkippedPrompt

T = TypeVar("T")


def hint(policy: str) -> str:
    """What to do about a VideoError that ended a run under data.on_bad_video=`policy`."""
    fix = "re-encode or remove that file (`stvg data inspect` lists every video that fails)"
    return f"{fix}, or set data.on_bad_video=skip to leave such samples out" if policy == "fail" else fix


def build_usable(samples: Sequence[GroundingSample], build: Callable[[GroundingSample], T],
                 skip: bool) -> tuple[list[T], list[SkippedPrompt]]:
    """`build(sample)` for each sample; with `skip`, samples whose video fails are left out and listed."""
    built, skipped = [], []
    for sample in samples:
        try:
            built.append(build(sample))
        except VideoError as err:
            if not skip:
                raise
            skipped.append(SkippedPrompt(sample.id, err.video, err.problem))
    return built, skipped


class BadVideoLog:
    """Rank 0's record of the files skipped so far: one warning per file, counts for MLflow."""

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn
        self.files: set[str] = set()

    def note(self, skipped: Sequence[SkippedPrompt]) -> None:
        for prompt in skipped:
            if prompt.video not in self.files:
                self.files.add(prompt.video)
                self.warn(f"warning: video {prompt.video!r} {prompt.problem}; leaving its samples out "
                          f"(data.on_bad_video=skip; first: {prompt.sample_id})")

    def step_metrics(self, skipped: Sequence[SkippedPrompt]) -> dict[str, float]:
        """Note this step's skipped prompts; data/bad_video_skips (this step) and data/bad_videos
        (distinct files skipped since this process started the loop)."""
        self.note(skipped)
        return {"data/bad_video_skips": float(len(skipped)), "data/bad_videos": float(len(self.files))}
