"""`stvg score` against an independent port of TubeDETR's evaluation, on random annotation files in
the real HC-STVG v2 and VidSTG formats.

The reference below follows TubeDETR's released code (github.com/antoyang/TubeDETR at d70c0ee:
`preproc/preproc_hcstvgv2.py` and `preproc/preproc_vidstg.py` turn annotations into videos,
`datasets/hcstvg_eval.py` / `datasets/vidstg_eval.py` score them, `util/box_ops.py:np_box_iou`
is the IoU), written loop by loop in plain Python, reading the annotation files itself. TubeDETR's
model gives a start/end frame and a box on every evaluation frame; an LLM's prediction gives
seconds and a few boxes, so two adaptations sit in front of the evaluator, written here
independently of rewards/metrics.py: seconds become frame ids by round-half-up (end exclusive),
and the box on a frame is the prediction's boxes interpolated linearly in time, held outside
their range. Predicted boxes reach the IoU exactly as given: partly outside the frame, and
sometimes with reversed corners, as a language model writes them.
"""

from __future__ import annotations

import bisect
import json
import math
import random

import pytest

from infra.cli import main

EVAL_FPS, VIDEO_MAX_LEN, THRESHOLDS = 5, 200, (0.3, 0.5)


# ---- the reference ------------------------------------------------------------------------------

def preproc_hcstvg_v2(annotations: dict) -> list[dict]:
    """preproc_hcstvgv2.py, plus the evaluator's whole-video range and fps (20 s videos)."""
    videos = []
    for name, ann in annotations.items():
        frame_count = ann["img_num"]
        videos.append({"video_id": name, "fps": frame_count / 20, "start_frame": 0, "end_frame": frame_count - 1,
                       "tube_start_frame": ann["st_frame"], "tube_end_frame": ann["st_frame"] + len(ann["bbox"]),
                       "width": ann["img_size"][1], "height": ann["img_size"][0],
                       "boxes_xywh": {ann["st_frame"] + i: b for i, b in enumerate(ann["bbox"])}})
    return videos


def preproc_vidstg(records: list, trajectories: dict) -> list[dict]:
    """preproc_vidstg.py: one video entry per caption and per question; boxes from the VidOR
    trajectory of the target id, converted to xywh as TubeDETR stores them."""
    videos = []
    for index, rec in enumerate(records):
        by_tid: dict[int, dict[int, list]] = {}
        for frame_id, entries in enumerate(trajectories[rec["vid"]]["trajectories"]):
            for entry in entries:
                b = entry["bbox"]
                by_tid.setdefault(entry["tid"], {})[frame_id] = [b["xmin"], b["ymin"], b["xmax"] - b["xmin"],
                                                                 b["ymax"] - b["ymin"]]
        for key, infix, qtype in (("captions", "caption", "declarative"), ("questions", "question", "interrogative")):
            for i, sentence in enumerate(rec[key]):
                videos.append({"video_id": f"{rec['vid']}_{index}_{infix}{i}", "qtype": qtype, "fps": rec["fps"],
                               "start_frame": rec["used_segment"]["begin_fid"],
                               "end_frame": rec["used_segment"]["end_fid"],
                               "tube_start_frame": rec["temporal_gt"]["begin_fid"],
                               "tube_end_frame": rec["temporal_gt"]["end_fid"],
                               "boxes_xywh": by_tid[sentence["target_id"]]})
    return videos


def np_box_iou(a: list, b: list) -> float:
    """util/box_ops.py for one pair: areas from the corners as given, overlap clipped at 0."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = w * h
    return inter / (area_a + area_b - inter)


def frame_of(seconds: float, fps: float) -> int:
    return math.floor(seconds * fps + 0.5)


def box_at(prediction: dict, seconds: float) -> list:
    """The prediction's box at a time: linear between the two nearest boxes, the first box of a
    repeated time, the end boxes held outside their range."""
    first: dict[float, list] = {}
    for t, *box in prediction["boxes"]:
        first.setdefault(t, box)
    times = sorted(first)
    k = bisect.bisect_left(times, seconds)
    if k == 0:
        return first[times[0]]
    if k == len(times):
        return first[times[-1]]
    t0, t1 = times[k - 1], times[k]
    w = (seconds - t0) / (t1 - t0)
    return [(1 - w) * p + w * q for p, q in zip(first[t0], first[t1])]


def evaluate_video(video: dict, prediction: dict | None) -> tuple[float, float]:
    """HCSTVGGiouEvaluator / VidSTGiouEvaluator with tmp_loc=True, for one video."""
    if prediction is None:  # TubeDETR requires a prediction per video; a missing one scores 0 here
        return 0.0, 0.0
    sampling_rate = EVAL_FPS / video["fps"]
    frame_ids = [video["start_frame"]]
    for frame_id in range(video["start_frame"], video["end_frame"]):
        if int(frame_ids[-1] * sampling_rate) < int(frame_id * sampling_rate):
            frame_ids.append(frame_id)
    if len(frame_ids) > VIDEO_MAX_LEN:
        frame_ids = [frame_ids[(j * len(frame_ids)) // VIDEO_MAX_LEN] for j in range(VIDEO_MAX_LEN)]
    inter_frames = [f for f in frame_ids if video["tube_start_frame"] <= f < video["tube_end_frame"]]

    gt_sted = [video["tube_start_frame"], video["tube_end_frame"]]
    pred_sted = [frame_of(prediction["t_start"], video["fps"]), frame_of(prediction["t_end"], video["fps"])]
    max_start, min_end = max(gt_sted[0], pred_sted[0]), min(gt_sted[1], pred_sted[1])
    min_start, max_end = min(gt_sted[0], pred_sted[0]), max(gt_sted[1], pred_sted[1])
    if min_end <= max_start:
        tiou = 0
    else:
        intersection = min_end - max_start
        tiou = intersection / ((gt_sted[1] - gt_sted[0]) + (pred_sted[1] - pred_sted[0]) - intersection)
    union_predgt = [f for f in frame_ids if min_start <= f < max_end]
    inter_predgt = {f for f in frame_ids if max_start <= f < min_end}
    viou = 0
    for frame_id in inter_frames:
        if frame_id in inter_predgt and prediction["boxes"]:
            x, y, w, h = video["boxes_xywh"][frame_id]
            viou += np_box_iou(box_at(prediction, frame_id / video["fps"]), [x, y, x + w, y + h])
    return tiou, viou / max(len(union_predgt), 1)


def summarize(results: list[tuple[float, float]]) -> dict[str, float]:
    """The evaluator's summarize(): means over videos (here in %)."""
    n = len(results)
    out = {"m_tIoU": 100 * sum(t for t, _ in results) / n, "m_vIoU": 100 * sum(v for _, v in results) / n}
    out.update({f"vIoU@{r}": 100 * sum(v > r for _, v in results) / n for r in THRESHOLDS})
    return out


# ---- random data in the real formats ------------------------------------------------------------

def gt_track(rng: random.Random, width: int, height: int, count: int) -> list[list[float]]:
    """`count` xywh boxes of one object: a base box (often touching the frame's edge) that wobbles."""
    x, y = rng.choice([0.0, rng.uniform(0, width / 2)]), rng.choice([0.0, rng.uniform(0, height / 2)])
    w, h = rng.uniform(width / 4, width - x), rng.uniform(height / 4, height - y)
    track = []
    for _ in range(count):
        dx, dy = rng.uniform(-2, 2), rng.uniform(-2, 2)
        bx, by = min(max(x + dx, 0.0), width - 1.0), min(max(y + dy, 0.0), height - 1.0)
        track.append([round(bx, 2), round(by, 2), round(min(w, width - bx), 2), round(min(h, height - by), 2)])
    return track


def predicted_box(rng: random.Random, gt_xywh: list[float], width: float, height: float) -> list[float]:
    """The GT box moved a little; a third of them reach past the frame's edge, one in ten has its
    corners reversed (x1 > x2 and y1 > y2), as a language model may write them."""
    x, y, w, h = gt_xywh
    box = [x + rng.gauss(0, 0.05 * width), y + rng.gauss(0, 0.05 * height),
           x + w + rng.gauss(0, 0.05 * width), y + h + rng.gauss(0, 0.05 * height)]
    if rng.random() < 1 / 3:
        box[rng.choice([0, 1])] -= rng.uniform(0.05, 0.3) * width
        box[rng.choice([2, 3])] += rng.uniform(0.05, 0.3) * height
    return [box[2], box[3], box[0], box[1]] if rng.random() < 0.1 else box


def random_prediction(rng: random.Random, query_id: str, gt_frames: tuple[int, int], fps: float,
                      gt_boxes: dict[int, list[float]], width: float, height: float) -> dict:
    """A span around the GT span (one in ten reversed: an empty span) and 0-6 boxes near the GT's."""
    start, end = gt_frames[0] / fps + rng.gauss(0, 2), gt_frames[1] / fps + rng.gauss(0, 2)
    if rng.random() < 0.1:
        start, end = end, start
    boxes = []
    for _ in range(rng.randint(0, 6)):
        t = round(rng.uniform(min(start, end) - 1, max(start, end) + 1), 2)
        nearest = min(max(frame_of(t, fps), gt_frames[0]), gt_frames[1] - 1)
        boxes.append([t, *predicted_box(rng, gt_boxes[nearest], width, height)])
    return {"id": query_id, "t_start": start, "t_end": end, "boxes": boxes}


def score(tmp_path, fmt: str, annotations, predictions: list, *extra: str) -> dict:
    ann_path, pred_path, out = tmp_path / "annotations.json", tmp_path / "predictions.jsonl", tmp_path / "m.json"
    ann_path.write_text(json.dumps(annotations))
    pred_path.write_text("".join(json.dumps(p) + "\n" for p in predictions))
    assert main(["score", "--format", fmt, "--annotations", str(ann_path), "--predictions", str(pred_path),
                 "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def assert_same(result: dict, videos: list[dict], predictions: dict) -> None:
    expected = {v["video_id"]: evaluate_video(v, predictions.get(v["video_id"])) for v in videos}
    rows = {q["id"]: (q["tiou"], q["viou"]) for q in result["queries"]}
    assert rows.keys() == expected.keys()
    for query_id, reference in expected.items():
        assert rows[query_id] == pytest.approx(reference, abs=1e-9), query_id
    assert result["aggregates"]["all"] == pytest.approx(summarize(list(expected.values())), abs=1e-9)


# ---- the tests ----------------------------------------------------------------------------------

def test_stvg_score_equals_tubedetrs_evaluation_on_random_hcstvg_v2_queries(tmp_path):
    rng = random.Random(16)
    annotations, predictions = {}, {}
    for i in range(300):
        name = f"{i:03d}_video.mp4"
        img_num = rng.randint(100, 760)  # 5 to 38 fps over 20 s (TubeDETR asserts fps >= 5)
        height, width = rng.choice([(360, 640), (720, 1280), (480, 854)])
        st_frame = rng.randint(0, img_num - 2)
        length = rng.randint(1, img_num - st_frame)
        track = gt_track(rng, width, height, length)
        annotations[name] = {"bbox": track, "st_time": st_frame / (img_num / 20),
                             "ed_time": (st_frame + length) / (img_num / 20), "img_num": img_num,
                             "English": "the man in red turns around.", "img_size": [height, width], "st_frame": st_frame}
        if rng.random() < 0.95:
            boxes = {st_frame + k: b for k, b in enumerate(track)}
            predictions[name] = random_prediction(rng, name, (st_frame, st_frame + length), img_num / 20, boxes,
                                                  width, height)
    result = score(tmp_path, "hcstvg-v2", annotations, list(predictions.values()))
    assert_same(result, preproc_hcstvg_v2(annotations), predictions)
    # the data exercises what the protocol is about: overlapping tubes, boxes outside the frame
    assert sum(q["viou"] > 0 for q in result["queries"]) > 150
    outside = [b for p in predictions.values() for b in p["boxes"] if min(b[1:]) < 0]
    assert len(outside) > 100


def test_stvg_score_equals_tubedetrs_evaluation_on_random_vidstg_queries(tmp_path):
    rng = random.Random(61)
    records, trajectories, predictions = [], {}, {}
    for i in range(40):
        vid = f"v{i:02d}"
        fps = rng.choice([24.0, 25.0, 29.97, 30.0, 12.0])
        frame_count = rng.randint(200, 2400)  # up to 80 s: long segments hit the 200-frame cap
        width, height = rng.choice([(640, 360), (320, 240)])
        begin = rng.randint(0, frame_count // 4)
        end = rng.randint(begin + 10, frame_count)
        gt_begin = rng.randint(begin, end - 2)
        gt_end = rng.randint(gt_begin + 1, end)
        # tid 1 is the target of the caption and covers the whole tube; tid 2 (the question's
        # target) covers it too, with other boxes
        frames = [[] for _ in range(frame_count)]
        covered = range(max(gt_begin - 5, 0), min(gt_end + 5, frame_count))
        targets = {}
        for tid in (1, 2):
            targets[tid] = dict(zip(covered, gt_track(rng, width, height, len(covered))))
            for f, (x, y, w, h) in targets[tid].items():
                frames[f].append({"tid": tid, "bbox": {"xmin": x, "ymin": y, "xmax": x + w, "ymax": y + h}})
        trajectories[vid] = {"trajectories": frames}
        records.append({"vid": vid, "fps": fps, "frame_count": frame_count, "width": width, "height": height,
                        "used_segment": {"begin_fid": begin, "end_fid": end},
                        "temporal_gt": {"begin_fid": gt_begin, "end_fid": gt_end},
                        "subject/objects": [{"tid": 1, "category": "adult"}, {"tid": 2, "category": "dog"}],
                        "captions": [{"description": "an adult walks.", "type": "adult", "target_id": 1}],
                        "questions": [{"description": "what runs?", "type": "dog", "target_id": 2}]})
        for infix, tid in (("caption0", 1), ("question0", 2)):
            query_id = f"{vid}_{i}_{infix}"
            predictions[query_id] = random_prediction(rng, query_id, (gt_begin, gt_end), fps, targets[tid],
                                                      width, height)
    folder = tmp_path / "vidor"
    folder.mkdir()
    for vid, data in trajectories.items():
        (folder / f"{vid}.json").write_text(json.dumps(data))
    result = score(tmp_path, "vidstg", records, list(predictions.values()), "--trajectories", str(folder))
    videos = preproc_vidstg(records, trajectories)
    assert_same(result, videos, predictions)
    for qtype in ("declarative", "interrogative"):
        members = [v for v in videos if v["qtype"] == qtype]
        expected = summarize([evaluate_video(v, predictions[v["video_id"]]) for v in members])
        assert result["aggregates"][qtype] == pytest.approx(expected, abs=1e-9)
    assert sum(q["viou"] > 0 for q in result["queries"]) > 40
    assert any((v["end_frame"] - v["start_frame"]) * EVAL_FPS / v["fps"] > 2 * VIDEO_MAX_LEN for v in videos)
