"""Zero-shot inference strategies of `stvg eval` (Yang et al., NeurIPS 2025: DSTH and TAS), on the
rollout pool. No training; the model is asked several questions per sample and the answers are
combined into one prediction in the `stvg score` format, scored like the plain eval.

--decompose (DSTH's decomposition, without its logit-guided re-attention):
    none   one question with the whole query, in the task's format;
    rules  the query split by rollout.zero_shot.decompose_by_rules into an attribute sub-query (the
           target and its appearance) and an action sub-query (what it does);
    model  the same split asked of the model (DECOMPOSE_PROMPT, greedy), falling back to the rules
           when its answer does not parse.
  With sub-queries, the ACTION grounds the target in TIME and the ATTRIBUTE grounds it in SPACE:
    vtg      the span of a VTG question with the action sub-query;
    stvg-r1  the span of a VTG question with the action sub-query, the instance id of an STVG-R1
             question with the attribute sub-query (ids drawn as usual); the tube is that
             instance's track on the evaluation frames of the action's span;
    stvg-o1  the span of a VTG question with the action sub-query, the boxes of an STVG-o1
             question with the attribute sub-query, resampled on the evaluation frames of the
             action's span (interpolated; the nearest held where the answer has none).
  When the action question gives no parseable span, the attribute question's span is used.

--assemble (TAS, temporal-augmented assembling): every question is also asked on augmented frame
samplings of the video (rollout.zero_shot: `reversed` = the frames in reverse order with mirrored
times, `shifted` = frames sampled half an interval later; `both` = the two). Each answer's span and
boxes are mapped back to forward time; the spans of one question are assembled with
rollout.zero_shot.assemble_spans (the original view first, so it wins ties), STVG-R1 ids are voted
(vote_ids, reported as the prediction's "instance_id"), and the target question's boxes are
assembled per evaluation frame with rollout.zero_shot.assemble_boxes: the views' STVG-o1 boxes, or
for STVG-R1 the track of the id each view named.

Boxes are given only inside the final span: on the sample's evaluation frames
(rewards.metrics.evaluation_frames) from round(t_start * fps) to round(t_end * fps), exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from infra.data.sample import GroundingSample
from rewards.frames import seconds_to_frame
from rewards.metrics import evaluate, evaluation_frames
from rewards.parsing import parse_stvg_r1, parse_vtg
from rewards.predictions import completion_to_prediction
from rollout.engines import SamplingConfig
from rollout.prompting import PromptOptions
from rollout.types import SkippedPrompt
from rollout.zero_shot import (DECOMPOSE_PROMPT, SubQueries, assemble_boxes, assemble_spans, decompose_by_rules,
                               decompose_query, normalise_query, unreverse_boxes, unreverse_span, vote_ids)
from trainer.evaluation import EvalResult, dataset_kind

DECOMPOSE = ("none", "rules", "model")
ASSEMBLE = {"none": ("original",), "reversed": ("original", "reversed"), "shifted": ("original", "shifted"),
            "both": ("original", "reversed", "shifted")}

Span = tuple[float, float]


@dataclass(frozen=True)
class Ask:
    """One question asked about a sample: its role, the output format asked for, the query text."""

    role: str
    """query (the whole query), action (grounds the span) or attribute (grounds the target)."""
    task: str
    query: str


def asks_for(task: str, query: str, sub: Optional[SubQueries]) -> list[Ask]:
    """The questions for one sample (see the module docstring): the same roles for every sample of
    a task, so each role is one batch through the pool."""
    if sub is None:
        return [Ask("query", task, query)]
    if task == "vtg":
        return [Ask("action", "vtg", sub.action)]
    return [Ask("action", "vtg", sub.action), Ask("attribute", task, sub.attribute)]


@dataclass(frozen=True)
class Reading:
    """One answer, parsed and in the original video's time."""

    span: Optional[Span]
    instance_id: Optional[int] = None
    boxes: list = field(default_factory=list)
    """stvg-o1: [[t, x1, y1, x2, y2], ...] in forward time and original-video pixels, sorted by t."""


def read_answer(task: str, text: str, sample_id: str, view: str, duration: float,
                scale_to_original: tuple[float, float] = (1.0, 1.0)) -> Reading:
    """Parse an answer given on `view` (original, reversed, shifted) of a video of `duration` seconds."""
    instance_id, boxes = None, []
    if task == "stvg-r1":
        parsed = parse_stvg_r1(text)
        span = None if parsed is None else (parsed.t_start, parsed.t_end)
        instance_id = None if parsed is None else parsed.instance_id
    elif task == "vtg":
        parsed = parse_vtg(text)
        span = None if parsed is None else (parsed.t_start, parsed.t_end)
    else:
        prediction = completion_to_prediction("stvg-o1", text, sample_id, scale_to_original)
        span = None if prediction is None else (prediction["t_start"], prediction["t_end"])
        boxes = [] if prediction is None else prediction["boxes"]
        if view == "reversed":
            boxes = unreverse_boxes(boxes, duration)
    if span is not None and view == "reversed":
        span = unreverse_span(span, duration)
    return Reading(span, instance_id, boxes)


def combine(task: str, sample: GroundingSample, readings: dict[str, list[Reading]], *,
            min_tiou: float = 0.3, min_iou: float = 0.5) -> Optional[dict[str, Any]]:
    """One `stvg score` prediction from the readings of each role (in view order, original first),
    or None when no question gave a span. See the module docstring for which role gives what."""
    spans = {role: assemble_spans([r.span for r in rs], min_tiou=min_tiou) for role, rs in readings.items()}
    span = next((spans[role] for role in ("action", "query", "attribute") if spans.get(role) is not None), None)
    if span is None:
        return None
    span = (max(span[0], 0.0), span[1])
    prediction: dict[str, Any] = {"id": sample.id, "t_start": span[0], "t_end": span[1], "boxes": []}
    target = readings.get("attribute") or readings.get("query") or []
    if task == "stvg-r1":
        instance_id = vote_ids([r.instance_id for r in target])
        if instance_id is None:
            return prediction
        prediction["instance_id"] = instance_id
        tubes = [track_tube(sample, r.instance_id) for r in target]
    elif task == "stvg-o1":
        tubes = [r.boxes for r in target]
    else:
        return prediction
    prediction["boxes"] = assemble_boxes(tubes, span_times(sample, span), min_iou=min_iou)
    return prediction


def track_tube(sample: GroundingSample, instance_id: Optional[int]) -> list[list[float]]:
    """The sample's track of `instance_id` as [[f / fps, x1, y1, x2, y2], ...] (original pixels);
    [] for no id or an id without a track."""
    tracks = sample.tracks or {}
    if instance_id is None or not sample.fps > 0:
        return []
    track = tracks.get(instance_id, tracks.get(str(instance_id), {}))
    return [[int(f) / sample.fps, *(float(v) for v in box)] for f, box in sorted((int(f), b) for f, b in track.items())]


def span_times(sample: GroundingSample, span: Span) -> list[float]:
    """Seconds of the sample's evaluation frames inside the span: the frames f of
    rewards.metrics.evaluation_frames with round(start * fps) <= f < round(end * fps)."""
    if not sample.fps > 0:
        return []
    low, high = seconds_to_frame(span[0], sample.fps), seconds_to_frame(span[1], sample.fps)
    return [f / sample.fps for f in evaluation_frames(*sample.segment, sample.fps).tolist() if low <= f < high]


class _Questions:
    """Asks the pool one question per sample; with `skip`, a sample whose video cannot be used is
    recorded in `skipped` (once) and has no answer, else its VideoError raises."""

    def __init__(self, pool, samples: list[GroundingSample], sampling: SamplingConfig, skip: bool):
        self.pool, self.samples, self.sampling, self.skip = pool, samples, sampling, skip
        self.skipped: dict[str, SkippedPrompt] = {}

    def ask(self, task: str, options: list[PromptOptions]) -> list[tuple[int, Any, str]]:
        """(sample index, its prompt, the answer's text) for every sample answered."""
        batch = self.pool.generate(self.samples, 1, self.sampling, task=task, options=options,
                                   skip_bad_videos=self.skip)
        for left_out in batch.skipped:
            self.skipped.setdefault(left_out.sample_id, left_out)
        answers = batch.answers_by_sample()  # one completion per question
        return [(i, answers[s.id][0], answers[s.id][1][0]) for i, s in enumerate(self.samples) if s.id in answers]


def run_zero_shot_evaluation(pool, samples: Sequence[GroundingSample], *, task: str, source: str,
                             max_new_tokens: int, decompose: str = "none", assemble: str = "none",
                             temperature: float = 0.0, seed: int = 0, min_tiou: float = 0.3,
                             min_iou: float = 0.5, skip_bad_videos: bool = False) -> EvalResult:
    """Answers from the rollout pool with the strategies chosen, combined and scored (stvg score's
    metrics). With `skip_bad_videos` a sample whose video cannot be used in any of its questions is
    left out of the scores (EvalResult.skipped, eval/bad_video_skips), as the plain evaluation does."""
    if decompose not in DECOMPOSE or assemble not in ASSEMBLE:
        raise ValueError(f"decompose must be one of {DECOMPOSE} and assemble one of {tuple(ASSEMBLE)}")
    samples = list(samples)
    questions = _Questions(pool, samples, SamplingConfig(temperature=temperature, max_new_tokens=max_new_tokens,
                                                         seed=seed), skip_bad_videos)
    rows: list[dict[str, Any]] = []
    subs = _decompositions(questions, decompose, task, rows)
    asks = [asks_for(task, s.query, sub) for s, sub in zip(samples, subs)]
    readings: list[dict[str, list[Reading]]] = [{} for _ in samples]
    for j, first in enumerate(asks[0]):
        for view in ASSEMBLE[assemble]:
            options = [PromptOptions(query=a[j].query, view=view) for a in asks]
            for i, prompt, text in questions.ask(first.task, options):
                sample = samples[i]
                reading = read_answer(first.task, text, sample.id, view, sample.duration, prompt.scale_to_original)
                readings[i].setdefault(first.role, []).append(reading)
                rows.append({"id": sample.id, "role": first.role, "view": view, "task": first.task,
                             "query": asks[i][j].query, "completion": text,
                             "span": list(reading.span) if reading.span else None,
                             "instance_id": reading.instance_id})
    left_out = questions.skipped
    scored = [(s, r) for s, r in zip(samples, readings) if s.id not in left_out]
    predictions = [p for s, r in scored if (p := combine(task, s, r, min_tiou=min_tiou, min_iou=min_iou)) is not None]
    report = evaluate([s for s, _ in scored], predictions, dataset_kind(source))
    metrics = {f"eval/{name}": value for name, value in report.aggregates["all"].items()}
    metrics["eval/parsed_frac"] = len(predictions) / max(len(scored), 1)
    metrics["eval/bad_video_skips"] = float(len(left_out))
    rows = [row for row in rows if row["id"] not in left_out]
    return EvalResult(metrics, predictions, rows, report, list(left_out.values()))


def _decompositions(questions: _Questions, decompose: str, task: str,
                    rows: list[dict[str, Any]]) -> list[Optional[SubQueries]]:
    samples = questions.samples
    if decompose == "none":
        return [None] * len(samples)
    if decompose == "rules":
        return [decompose_by_rules(s.query) for s in samples]
    options = [PromptOptions(instruction=DECOMPOSE_PROMPT.format(query=normalise_query(s.query))) for s in samples]
    answers = {i: text for i, _prompt, text in questions.ask(task, options)}
    out = []
    for i, sample in enumerate(samples):
        if i not in answers:  # its video cannot be used (skipped): it is left out in the end; the rules
            out.append(decompose_by_rules(sample.query))  # keep its questions the same as the others'
            continue
        sub = decompose_query(sample.query, lambda _prompt, text=answers[i]: text)
        rows.append({"id": sample.id, "role": "decompose", "view": "original", "task": task, "query": sample.query,
                     "completion": answers[i], "attribute": sub.attribute, "action": sub.action,
                     "source": sub.source})
        out.append(sub)
    return out
