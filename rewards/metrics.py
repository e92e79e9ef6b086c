"""Evaluation metrics: TubeDETR's protocol for STVG, R1@m / mIoU for VTG (docs/metrics.md explains
each step and why; tests/rewards/test_tubedetr_protocol.py checks it against a port of TubeDETR's
evaluator).

STVG, per query (sample s, prediction p in seconds and original-video pixels):
- evaluation frames: walk the frame ids of s.segment = [begin, end) from [begin], keeping an id when
  int(id * 5 / fps) exceeds int(last_kept * 5 / fps); if more than 200 remain keep ids[(j * n) // 200]
  for j < 200. fps is s.fps (the HC-STVG reader sets img_num / 20).
- spans: GT [gs, ge) = s.span_frames (end exclusive); predicted [ps, pe) = (round(t_start * fps),
  round(t_end * fps)) with round-half-up, the end exclusive.
- tIoU = |P ∩ G| / |P ∪ G| on frame ids: 0 if min(ge, pe) <= max(gs, ps), else
  inter / ((ge - gs) + (pe - ps) - inter).
- vIoU = sum of IoU(pred box, GT box) over evaluation frames in [max(gs, ps), min(ge, pe)) that have
  a GT box, divided by max(1, number of evaluation frames in [min(gs, ps), max(ge, pe))).
  The predicted box at a frame is the prediction's boxes linearly interpolated in time at f / fps
  (first box of a repeated t), held at the first/last box outside their time range. Boxes are used
  exactly as given, predicted and GT alike: no clamping to the frame, no reordering of corners (box
  hygiene belongs to the rewards, not to the benchmark). IoU is TubeDETR's: the overlap is clipped
  at 0, so a box with x1 > x2 or y1 > y2 overlaps nothing and scores 0; an empty union scores 0.
  No predicted boxes: IoU 0.
- vIoU@R: vIoU > R (strict), R in {0.3, 0.5}.
VTG (charades), per query: tIoU in seconds (rewards.scoring.span_tiou); R1@m: tIoU >= m for m in
{0.3, 0.5, 0.7}; mIoU the mean tIoU. A query without a prediction scores 0 everywhere.
Aggregates are means over queries in %; VidSTG also per sentence type (declarative/interrogative).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from infra.data.sample import GroundingSample
from infra.errors import DataError, UserError
from rewards.boxes import iou
from rewards.frames import seconds_to_frame
from rewards.prediction_io import Prediction, check_prediction
from rewards.report import MetricsReport, QueryResult
from rewards.scoring import span_tiou

STVG_KINDS = ("hcstvg-v1", "hcstvg-v2", "vidstg", "synthetic")
VTG_KINDS = ("charades",)
DATASET_KINDS = STVG_KINDS + VTG_KINDS
EVAL_FPS = 5.0
MAX_EVAL_FRAMES = 200
VIOU_THRESHOLDS = (0.3, 0.5)
VTG_THRESHOLDS = (0.3, 0.5, 0.7)


def evaluation_frames(begin: int, end: int, fps: float, eval_fps: float = EVAL_FPS,
                      max_frames: int = MAX_EVAL_FRAMES) -> np.ndarray:
    """TubeDETR's evaluation frame ids of the segment [begin, end) (always starts with begin)."""
    rate = eval_fps / fps
    ids = np.arange(begin, max(end, begin), dtype=np.int64)
    bucket = np.floor(ids * rate)  # int() of a non-negative float, as TubeDETR computes it
    kept = np.concatenate([[begin], ids[1:][bucket[1:] > bucket[:-1]]]).astype(np.int64)
    if len(kept) > max_frames:
        kept = kept[(np.arange(max_frames) * len(kept)) // max_frames]
    return kept


def interpolate_boxes(boxes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Boxes [k, 5] (t, x1, y1, x2, y2) linearly interpolated at `times`, held outside their range;
    the first box of a repeated t wins. Returns [len(times), 4]."""
    t_unique, first = np.unique(boxes[:, 0], return_index=True)
    rows = boxes[first, 1:]
    return np.stack([np.interp(times, t_unique, rows[:, c]) for c in range(4)], axis=-1)


def stvg_query(sample: GroundingSample, pred: Optional[Prediction], eval_fps: float = EVAL_FPS,
               max_frames: int = MAX_EVAL_FRAMES) -> tuple[float, float]:
    """(tIoU, vIoU) of one STVG query as fractions; (0, 0) without a prediction."""
    if pred is None:
        return 0.0, 0.0
    fps = sample.fps
    frames = evaluation_frames(*sample.segment, fps, eval_fps, max_frames)
    gs, ge = sample.span_frames
    ps, pe = seconds_to_frame(pred.t_start, fps), seconds_to_frame(pred.t_end, fps)
    inter = min(ge, pe) - max(gs, ps)
    tiou = 0.0 if inter <= 0 else inter / ((ge - gs) + (pe - ps) - inter)
    union = int(((frames >= min(gs, ps)) & (frames < max(ge, pe))).sum())
    scored = [f for f in frames.tolist() if max(gs, ps) <= f < min(ge, pe) and f in sample.boxes]
    if not scored or len(pred.boxes) == 0:
        return tiou, 0.0
    gt = np.array([sample.boxes[f] for f in scored], dtype=np.float64)
    predicted = interpolate_boxes(pred.boxes, np.array(scored) / fps)  # as given: no clamping, no reordering
    return tiou, float(iou(predicted, gt).sum()) / max(union, 1)


def evaluate(samples: Sequence[GroundingSample], predictions: Sequence[Mapping[str, Any]], dataset_kind: str,
             *, eval_fps: float = EVAL_FPS, max_frames: int = MAX_EVAL_FRAMES,
             labels: Optional[Sequence[str]] = None) -> MetricsReport:
    """Score predictions (prediction objects, rewards.prediction_io) against samples.
    `labels` names each prediction in error messages (e.g. "preds.jsonl line 7"); the default is
    "prediction <position>". Raises DataError for a malformed prediction, an id matching no sample,
    or two predictions for one query."""
    if dataset_kind not in DATASET_KINDS:
        raise UserError(f"unknown dataset kind {dataset_kind!r}; choose one of: {', '.join(DATASET_KINDS)}")
    by_id = _index_samples(samples)
    if labels is None:
        labels = [f"prediction {i}" for i in range(1, len(predictions) + 1)]
    preds = _index_predictions(predictions, labels, by_id)
    vtg = dataset_kind in VTG_KINDS
    rows = []
    for sample in samples:
        pred = preds.get(sample.id)
        if vtg:
            tiou = 0.0 if pred is None else float(span_tiou(np.float64(pred.t_start), np.float64(pred.t_end),
                                                            np.float64(sample.span_seconds[0]),
                                                            np.float64(sample.span_seconds[1])))
            rows.append(QueryResult(sample.id, sample.sentence_type, pred is not None, tiou, None))
        else:
            if not sample.fps > 0:
                raise DataError(f"sample {sample.id!r} has fps={sample.fps!r}; it must be > 0")
            tiou, viou = stvg_query(sample, pred, eval_fps, max_frames)
            rows.append(QueryResult(sample.id, sample.sentence_type, pred is not None, tiou, viou))
    groups = {"all": rows}
    if dataset_kind == "vidstg":
        types = sorted({row.sentence_type or "unknown" for row in rows})
        groups = {t: [r for r in rows if (r.sentence_type or "unknown") == t] for t in types} | groups
    aggregate = _vtg_aggregate if vtg else _stvg_aggregate
    protocol: dict[str, Any] = ({"tiou": "seconds", "r1_thresholds": list(VTG_THRESHOLDS)} if vtg else
                                {"eval_fps": eval_fps, "max_frames": max_frames,
                                 "viou_thresholds": list(VIOU_THRESHOLDS), "viou_at_r": "viou > R"})
    return MetricsReport(
        dataset_kind=dataset_kind, rows=rows,
        aggregates={name: aggregate(members) for name, members in groups.items()},
        counts={name: {"queries": len(m), "predicted": sum(r.predicted for r in m)} for name, m in groups.items()},
        protocol=protocol)


def _stvg_aggregate(rows: list[QueryResult]) -> dict[str, float]:
    tiou = np.array([r.tiou for r in rows], np.float64)
    viou = np.array([r.viou for r in rows], np.float64)
    out = {"m_tIoU": _percent(tiou), "m_vIoU": _percent(viou)}
    out.update({f"vIoU@{r}": _percent(viou > r) for r in VIOU_THRESHOLDS})
    return out


def _vtg_aggregate(rows: list[QueryResult]) -> dict[str, float]:
    tiou = np.array([r.tiou for r in rows], np.float64)
    out = {f"R1@{m}": _percent(tiou >= m) for m in VTG_THRESHOLDS}
    out["mIoU"] = _percent(tiou)
    return out


def _percent(values: np.ndarray) -> float:
    return float(100.0 * values.mean()) if len(values) else 0.0


def _index_samples(samples: Sequence[GroundingSample]) -> dict[str, GroundingSample]:
    by_id: dict[str, GroundingSample] = {}
    for sample in samples:
        if sample.id in by_id:
            raise DataError(f"two annotated queries share the id {sample.id!r}; query ids must be unique")
        by_id[sample.id] = sample
    return by_id


def _index_predictions(predictions: Sequence[Mapping[str, Any]], labels: Sequence[str],
                       samples: Mapping[str, GroundingSample]) -> dict[str, Prediction]:
    preds: dict[str, Prediction] = {}
    where_seen: dict[str, str] = {}
    for label, obj in zip(labels, predictions):
        pred = check_prediction(obj, label)
        if pred.id not in samples:
            raise DataError(f"{label}: id {pred.id!r} matches no annotated query")
        if pred.id in preds:
            raise DataError(f"{label}: id {pred.id!r} was already predicted ({where_seen[pred.id]}); "
                            "give one prediction per query")
        preds[pred.id] = pred
        where_seen[pred.id] = label
    return preds
