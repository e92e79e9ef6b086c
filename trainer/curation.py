"""VideoTG-R1's data curation: a boundary-reflection pass and a difficulty pass, run before training.

VideoTG-R1 describes two MLLM "agents" but publishes no prompt, formula or threshold, so these are
ours (docs/seed-methods.md):

- Difficulty (`estimate_difficulty`): K zero-shot rollouts per sample from the model about to be
  trained; difficulty = 1 - mean tIoU of their spans with the GT span (continuous seconds, the
  rewards' tIoU; an unparseable completion counts as tIoU 0). Completions are parsed with the task's
  own parser through rewards.predictions.completion_to_prediction (so an stvg-o1 span is the
  inclusive-seconds span widened by half a second each side, as the metrics read it). Scores are
  stored in a JSON file next to the annotations (`difficulty_path`), keyed by sample id, with the
  model identity, K and task, so the pass runs once (`load_or_estimate`).
- Boundary reflection (`reflect_boundaries`): the model is asked whether the queried event also
  happens outside the annotated span (`reflection_prompt`); `ask_fn` turns its answers into one
  score per sample (e.g. the yes-fraction of a few samples, `reflection_score`), and samples scoring
  at or above the threshold are dropped as partially annotated.
- `CurationCounts.as_metrics()` gives the figures to log to MLflow.
The rollout and question-asking functions are passed in (the rollout pool in `stvg train`), so this
module has no model code of its own.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from infra.config import check_choice, check_range
from infra.data.sample import GroundingSample
from infra.errors import DataError
from infra.tracking.names import DATA
from rewards.parsing import last_answer
from rewards.predictions import completion_to_prediction

RolloutFn = Callable[[Sequence[GroundingSample], int], Sequence[Sequence[str]]]
"""(samples, n) -> n completion texts per sample, sampled zero-shot from the model; none for a
sample that could not be asked (its video was left out: data.on_bad_video=skip), which gets no score."""
AskFn = Callable[[Sequence[GroundingSample]], Sequence[Optional[float]]]
"""samples -> one score in [0, 1] per sample: how sure the model is that the event also happens
outside the annotated span; None for a sample that could not be asked (it gets no score)."""

TASKS = ("vtg", "stvg-r1", "stvg-o1")
FILE_VERSION = 1


@dataclass
class CurationConfig:
    enabled: bool = False
    """Run the curation passes before training (VideoTG-R1)."""
    task: str = "vtg"
    """Output format the zero-shot rollouts are asked for and parsed with: vtg, stvg-r1, stvg-o1."""
    rollouts: int = 8
    """K: zero-shot rollouts per sample for the difficulty score."""
    batch_size: int = 8
    """Samples per call of the rollout / question function."""
    reflection: bool = True
    """Run the boundary-reflection pass (drop partially annotated samples)."""
    reflection_rollouts: int = 4
    """Answers sampled per sample for the reflection question (the score is their yes-fraction)."""
    reflection_threshold: float = 0.5
    """Samples whose reflection score is at or above this are dropped."""
    difficulty_file: str = ""
    """Where difficulty scores are stored; "" = `<annotations stem>.difficulty.json` beside them."""

    def __post_init__(self):
        check_choice("curation.task", self.task, TASKS)
        check_range("curation.rollouts", self.rollouts, 1)
        check_range("curation.batch_size", self.batch_size, 1)
        check_range("curation.reflection_rollouts", self.reflection_rollouts, 1)
        check_range("curation.reflection_threshold", self.reflection_threshold, 0.0, 1.0)


# ---- difficulty --------------------------------------------------------------------------------

def span_tiou(pred: tuple[float, float], gt: tuple[float, float]) -> float:
    """Continuous tIoU (the rewards' rule): 0 when pred starts after it ends or the union is empty."""
    (s, e), (gs, ge) = pred, gt
    if s > e:
        return 0.0
    union = max(e, ge) - min(s, gs)
    return max(0.0, min(e, ge) - max(s, gs)) / union if union > 0 else 0.0


def completion_tiou(task: str, completion: str, sample: GroundingSample) -> float:
    """tIoU of one completion's span with the sample's GT span (seconds); 0 when it does not parse."""
    pred = completion_to_prediction(task, completion, sample.id)
    return 0.0 if pred is None else span_tiou((pred["t_start"], pred["t_end"]), sample.span_seconds)


def estimate_difficulty(samples: Sequence[GroundingSample], rollout_fn: RolloutFn, k: int, *, task: str = "vtg",
                        batch_size: int = 8, progress: bool = False) -> dict[str, float]:
    """Sample id -> 1 - mean tIoU of `k` zero-shot completions (see the module docstring)."""
    return dict(_iter_difficulty(samples, rollout_fn, k, task, batch_size, progress))


def _iter_difficulty(samples: Sequence[GroundingSample], rollout_fn: RolloutFn, k: int, task: str, batch_size: int,
                     progress: bool) -> Iterator[tuple[str, float]]:
    """(sample id, difficulty) as each batch is scored."""
    from tqdm import tqdm

    check_choice("curation.task", task, TASKS)
    if k < 1 or batch_size < 1:
        raise ValueError(f"k and batch_size must be >= 1, got {k} and {batch_size}")
    with tqdm(total=len(samples), desc="difficulty", unit="sample", disable=not progress) as bar:
        for first in range(0, len(samples), batch_size):
            batch = list(samples[first:first + batch_size])
            completions = rollout_fn(batch, k)
            if len(completions) != len(batch):
                raise RuntimeError(f"rollout_fn returned completions for {len(completions)} of {len(batch)} samples")
            for sample, texts in zip(batch, completions):
                if not texts:  # could not be asked: no score (its video was left out)
                    continue
                if len(texts) != k:
                    raise RuntimeError(f"rollout_fn returned {len(texts)} completions for sample {sample.id!r}, "
                                       f"expected {k}")
                yield sample.id, 1.0 - sum(completion_tiou(task, t, sample) for t in texts) / k
            bar.update(len(batch))


def difficulty_path(annotations: str | Path) -> Path:
    """`<dir>/<stem>.difficulty.json` for the annotation file `<dir>/<stem>.<ext>`."""
    path = Path(annotations)
    return path.with_name(f"{path.stem}.difficulty.json")


def read_difficulty(path: str | Path, field: str = "difficulty") -> tuple[dict, dict[str, float]]:
    """(header {model, k, task}, sample id -> score) of a difficulty file (or, with field="reflection",
    a reflection-score file of the same layout); DataError when malformed."""
    what = f"{field} file {str(path)!r}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{what} cannot be read as JSON: {err}") from None
    if not isinstance(data, dict):
        raise DataError(f"{what} must hold an object")
    for key in ("model", "k", "task", field):
        if key not in data:
            raise DataError(f"{what}: field {key!r} is missing")
    scores = data[field]
    if not isinstance(scores, dict):
        raise DataError(f"{what}: field {field!r} must map sample ids to numbers")
    for sid, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise DataError(f"{what}: field '{field}.{sid}' must be a number in [0, 1], got {value!r}")
    header = {"model": data["model"], "k": data["k"], "task": data["task"]}
    return header, {str(k): float(v) for k, v in scores.items()}


def write_difficulty(path: str | Path, scores: dict[str, float], *, model: str, k: int, task: str,
                     field: str = "difficulty") -> None:
    """Write a difficulty file atomically (a half-written file never replaces a good one)."""
    path = Path(path)
    body = {"version": FILE_VERSION, "model": model, "k": k, "task": task,
            field: {sid: round(v, 6) for sid, v in sorted(scores.items())}}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _load_or_score(samples: Sequence[GroundingSample],
                   score_fn: Callable[[list[GroundingSample]], Iterable[tuple[str, float]]],
                   path: Path, header: dict, field: str) -> dict[str, float]:
    """Scores of `samples` from the file at `path` (same header, else DataError), computing and
    merging in only the missing ones. Scores computed before a failure (a video that cannot be
    used, a lost worker) are written too, so the rerun scores only the rest."""
    scores: dict[str, float] = {}
    if path.exists():
        found, scores = read_difficulty(path, field)
        if found != header:
            raise DataError(f"{field} file {str(path)!r} was made with {found}, not {header}; "
                            "delete it to score again, or set curation.difficulty_file to another path")
    missing = [s for s in samples if s.id not in scores]
    new: dict[str, float] = {}
    try:
        for sample_id, value in score_fn(missing):
            new[sample_id] = value
    finally:
        if new:
            write_difficulty(path, {**scores, **new}, field=field, **header)
    scores.update(new)
    return {s.id: scores[s.id] for s in samples if s.id in scores}  # all but those that could not be asked


def load_or_estimate(samples: Sequence[GroundingSample], rollout_fn: RolloutFn, k: int, path: str | Path, *,
                     model: str, task: str = "vtg", batch_size: int = 8, progress: bool = False) -> dict[str, float]:
    """Difficulty of every sample (but those `rollout_fn` could not ask), estimated only for samples
    the file at `path` lacks.

    The file must have been made by the same `model` (any identity string: checkpoint path plus
    revision, say), `k` and `task`, else DataError (delete it or point elsewhere to re-estimate).
    New scores are merged in and the file rewritten; scores of other samples in it are kept."""

    def score(missing: list[GroundingSample]) -> Iterator[tuple[str, float]]:
        return _iter_difficulty(missing, rollout_fn, k, task, batch_size, progress)

    return _load_or_score(samples, score, Path(path), {"model": model, "k": k, "task": task}, "difficulty")


# ---- boundary reflection -----------------------------------------------------------------------

REFLECTION_PROMPT = (
    'In this video, the event "{query}" is annotated from {start} to {end} seconds.{duration} '
    "Watch the whole video. Does the same event also happen at any time OUTSIDE {start} to {end} "
    "seconds? Think it over inside <think> </think>. Then answer inside <answer> </answer> with "
    '"yes: s to e", giving the other time range in seconds, or with "no". '
    "For example: <answer>yes: 3.50 to 6.00</answer> or <answer>no</answer>."
)


def reflection_prompt(sample: GroundingSample) -> str:
    """The boundary-reflection question for one sample (the frames go with it as usual)."""
    start, end = sample.span_seconds
    duration = f" The video is {sample.duration:.2f} seconds long." if sample.duration > 0 else ""
    return REFLECTION_PROMPT.format(query=" ".join(sample.query.split()).rstrip("."), start=f"{start:.2f}",
                                    end=f"{end:.2f}", duration=duration)


_YES = re.compile(r"\s*yes\b", re.IGNORECASE)
_RANGE = re.compile(r"([0-9]{1,9}(?:\.[0-9]{0,9})?)\s*(?:to|and|-)\s*([0-9]{1,9}(?:\.[0-9]{0,9})?)")


def says_outside(completion: str, span: tuple[float, float]) -> bool:
    """True when the answer is "yes" and any range it gives lies at least half outside `span`.
    A "yes" with no range counts; "no", anything else and an unparseable answer do not."""
    answer = last_answer(completion)
    if answer is None or not _YES.match(answer):
        return False
    found = _RANGE.search(answer)
    if found is None:
        return True
    s, e = sorted((float(found.group(1)), float(found.group(2))))
    if e <= s:
        return not (span[0] <= s <= span[1])
    inside = max(0.0, min(e, span[1]) - max(s, span[0]))
    return inside / (e - s) < 0.5


def reflection_score(completions: Sequence[str], span: tuple[float, float]) -> float:
    """Share of the answers that place the event outside the annotated span (`says_outside`)."""
    if not completions:
        raise ValueError("reflection_score needs at least one completion")
    return sum(says_outside(c, span) for c in completions) / len(completions)


def reflection_path(difficulty_file: str | Path) -> Path:
    """Where the reflection scores are stored: `<stem>.reflection.json` beside the difficulty file
    (`x.difficulty.json` -> `x.reflection.json`)."""
    path = Path(difficulty_file)
    stem = path.name[: -len(".difficulty.json")] if path.name.endswith(".difficulty.json") else path.stem
    return path.with_name(f"{stem}.reflection.json")


def load_or_ask(samples: Sequence[GroundingSample], ask_fn: AskFn, path: str | Path, *, model: str, k: int,
                task: str, batch_size: int = 8) -> dict[str, float]:
    """The reflection score of every sample, asked only for samples the file at `path` lacks (the
    same rules as load_or_estimate; `k` = answers per sample). Stored, so a resumed run drops
    exactly the samples the first run dropped."""
    def score(missing: list[GroundingSample]) -> Iterator[tuple[str, float]]:
        for first in range(0, len(missing), batch_size):
            batch = missing[first:first + batch_size]
            values = list(ask_fn(batch))
            if len(values) != len(batch):
                raise RuntimeError(f"ask_fn returned {len(values)} scores for {len(batch)} samples")
            yield from ((s.id, float(v)) for s, v in zip(batch, values) if v is not None)

    return _load_or_score(samples, score, Path(path), {"model": model, "k": k, "task": task}, "reflection")


def reflect_boundaries(samples: Iterable[GroundingSample], ask_fn: AskFn, threshold: float, *,
                       batch_size: int = 8) -> tuple[list[GroundingSample], list[tuple[str, float]]]:
    """(kept samples, [(sample id, score)] of those dropped): samples whose score from `ask_fn` is
    >= threshold are dropped as partially annotated. Order is preserved."""
    samples = list(samples)
    kept: list[GroundingSample] = []
    dropped: list[tuple[str, float]] = []
    for first in range(0, len(samples), batch_size):
        batch = samples[first:first + batch_size]
        scores = list(ask_fn(batch))
        if len(scores) != len(batch):
            raise RuntimeError(f"ask_fn returned {len(scores)} scores for {len(batch)} samples")
        for sample, score in zip(batch, scores):
            if not (isinstance(score, (int, float)) and math.isfinite(score) and 0.0 <= score <= 1.0):
                raise RuntimeError(f"ask_fn returned {score!r} for sample {sample.id!r}; scores are in [0, 1]")
            if score >= threshold:
                dropped.append((sample.id, float(score)))
            else:
                kept.append(sample)
    return kept, dropped


# ---- what to log -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CurationCounts:
    samples_in: int
    """Samples before curation."""
    reflection_kept: int
    """Samples left after boundary reflection (= samples_in when the pass is off)."""
    scored: int
    """Samples with a difficulty score."""
    hard: int
    """Scored samples at or above the curriculum's difficulty threshold."""
    mean_difficulty: float
    """Mean difficulty of the scored samples (nan when none)."""

    def as_metrics(self) -> dict[str, float]:
        """MLflow metrics under data/curation/... (infra.tracking.names.DATA)."""
        values = {"in": self.samples_in, "reflection_kept": self.reflection_kept,
                  "reflection_dropped": self.samples_in - self.reflection_kept, "scored": self.scored,
                  "hard": self.hard, "mean_difficulty": self.mean_difficulty}
        return {DATA.format(name=f"curation/{name}"): float(v) for name, v in values.items()}


def curation_counts(samples_in: int, kept: Sequence[GroundingSample], difficulty: Optional[dict[str, float]],
                    hard_threshold: float) -> CurationCounts:
    """Counts after the passes: `kept` are the samples reflection kept, `difficulty` their scores."""
    values = [difficulty[s.id] for s in kept if difficulty and s.id in difficulty]
    return CurationCounts(samples_in=samples_in, reflection_kept=len(kept), scored=len(values),
                          hard=sum(v >= hard_threshold for v in values),
                          mean_difficulty=sum(values) / len(values) if values else float("nan"))
