"""The other seed methods as a user runs them (`stvg train`, `stvg eval`, `stvg score`, subprocesses):

- STVG-R1 on a dataset that ships no tracks: the colour-blob tracker runs once, its tracks are
  cached beside the annotations, a GRPO step and the final evaluation run;
- zero-shot STVG-R1 evaluation with query decomposition and temporal-augmented assembling, by a
  scripted model (tests/trainer/_seed_models.py) that answers differently per temporal view (it
  reads the view from the colours of a colour-clock video) and per question (VTG or STVG-R1): the
  assembled span, the voted id and the per-frame tube are worked out by hand;
- the VideoTG-R1 preset: curation counts in MLflow and the drop list, with the scripted model
  answering the reflection question "yes, at 8-12 s" (hand-worked in test_seed_curation.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer._seed_models import YES_8_TO_12, write_scripted_model

pytestmark = pytest.mark.slow


def _stvg(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _scripted(e2e_cache: Path, tokens, name: str) -> Path:
    from rollout.models.tiny import tiny_model_dir

    return write_scripted_model(tiny_model_dir(Path(e2e_cache) / "models"), Path(e2e_cache) / name, tokens)


def _iou(a, b) -> float:
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(iw, 0) * max(ih, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_stvg_r1_trains_on_a_dataset_without_tracks_by_tracking_its_videos_once(tmp_path, e2e_cache, logged_names):
    from infra.data.synth import generate

    data = tmp_path / "data"
    generate(data, num_videos=3, seed=7, width=160, height=120, fps=5.0)
    annotations = data / "annotations.json"
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    run = _stvg("train", "--quiet", "name=r1", "task=stvg-r1", "warm_start.steps=0", "data.source=hcstvg-v2",
                f"data.train_annotations={annotations}", f"data.heldout_annotations={annotations}",
                f"data.video_root={data / 'videos'}", "data.tracker=colour-blobs", f"model.cache_dir={e2e_cache}",
                "total_steps=1", "rollout.max_new_tokens=24", "grpo.group_size=2", "grpo.filter_zero_variance=false",
                "eval.max_samples=2", f"tracking.tracking_uri={tracking}", "tracking.experiment=r1", cwd=tmp_path)
    assert "tracking 3 samples with colour-blobs" in run.stdout

    # the tracks are cached beside the annotations; each sample's target is the tracked object that
    # follows its ground-truth boxes (checked against the annotation's boxes here)
    cache = json.loads((data / "annotations.tracks-colour-blobs.json").read_text())
    ground_truth = json.loads(annotations.read_text())
    assert sorted(cache) == sorted(ground_truth)
    for name, entry in cache.items():
        record = ground_truth[name]
        gt = {record["st_frame"] + i: (x, y, x + w, y + h) for i, (x, y, w, h) in enumerate(record["bbox"])}
        target = entry[str(entry["target_id"])]
        ious = [_iou(target[str(f)], box) for f, box in gt.items() if str(f) in target]
        assert len(ious) >= len(gt) / 2 and sorted(ious)[len(ious) // 2] > 0.7, name

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    (found,) = client.search_runs([client.get_experiment_by_name("r1").experiment_id])
    for name in ("reward/mean", "eval/m_tIoU", "eval/m_vIoU"):
        assert client.get_metric_history(found.info.run_id, name), f"{name} was not logged"
    logged_names.check(tracking, found.info.run_id, "grpo-stvg-r1")


# The view-aware scripted model's answers (tests/trainer/_seed_models.py): per temporal view of a
# colour-clock video and per question (VTG for the action sub-query, STVG-R1 for the attribute one).
VIEW_ANSWERS = {
    ("original", "vtg"): ("<", "answer", ">", "4", " to", " ", "9", "</", "answ", "e", "r", ">."),
    ("reversed", "vtg"): ("<", "answer", ">", "8", " to", " ", "1", "6", "</", "answ", "e", "r", ">."),
    ("shifted", "vtg"): ("<", "answer", ">", "0", " to", " ", "3", "</", "answ", "e", "r", ">."),
    ("original", "stvg-r1"): ("<", "answer", ">Target", " ID", ":\n", "2", " Time", " range", ":", "4", " to", " ",
                              "9", "</", "answ", "e", "r", ">."),
    ("reversed", "stvg-r1"): ("<", "answer", ">Target", " ID", ":\n", "3", " Time", " range", ":", "1", " to", " ",
                              "6", "</", "answ", "e", "r", ">."),
    ("shifted", "stvg-r1"): ("<", "answer", ">Target", " ID", ":\n", "3", " Time", " range", ":", "5", " to", " ",
                             "8", "</", "answ", "e", "r", ">."),
}
QUESTION_TRIGGERS = {"vtg": " happens", "stvg-r1": " marked"}  # a word only that instruction holds


def _moving(f: int) -> list[float]:
    """Instance 2 moves right 2 px per frame."""
    return [2.0 * f + 8, 20.0, 2.0 * f + 28, 40.0]


STILL = [40.0, 20.0, 60.0, 40.0]  # instance 3, on frames 16..31 only
QUERIES = {"clock-a.mp4": "The man in red walks to the door.", "clock-b.mp4": "who does the woman in black follow?"}
SUB_QUERIES = {"clock-a.mp4": ("the man in red", "walks to the door"),
               "clock-b.mp4": ("the person that the woman in black follows", "the woman in black follows someone")}


def _clock_dataset(root: Path) -> list[str]:
    """Two HC-STVG v2 samples on 20 s colour-clock videos at 4 fps (80 frames) with a tracks file of
    instances 2 and 3; the stvg eval arguments that read them."""
    from tests.trainer._seed_models import write_colour_clock_video

    (root / "videos").mkdir(parents=True)
    annotations, tracks = {}, {}
    for name, query in QUERIES.items():
        write_colour_clock_video(root / "videos" / name)
        annotations[name] = {"English": query, "st_frame": 16, "bbox": [[40, 20, 20, 20]] * 24, "st_time": 4.0,
                             "ed_time": 10.0, "img_num": 80, "img_size": [112, 112]}
        tracks[name] = {"target_id": 3, "2": {str(f): _moving(f) for f in range(80)},
                        "3": {str(f): STILL for f in range(16, 32)}}
    (root / "annotations.json").write_text(json.dumps(annotations))
    (root / "tracks.json").write_text(json.dumps(tracks))
    return ["data.source=hcstvg-v2", f"data.train_annotations={root / 'annotations.json'}",
            f"data.heldout_annotations={root / 'annotations.json'}", f"data.video_root={root / 'videos'}",
            f"data.tracks={root / 'tracks.json'}", "rollout.max_long_side=112", "rollout.max_new_tokens=40",
            # 2 fps from 0 s: whole and half seconds, the frame pairs the model reads the view from
            "rollout.fps=2", "rollout.max_frames=40"]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_zero_shot_eval_assembles_spans_votes_ids_and_assembles_tubes_across_views(tmp_path, e2e_cache):
    from rollout.models.tiny import tiny_model_dir
    from tests.trainer._seed_models import write_view_aware_model

    model = write_view_aware_model(tiny_model_dir(Path(e2e_cache) / "models"), Path(e2e_cache) / "scripted-views",
                                   VIEW_ANSWERS, QUESTION_TRIGGERS)
    common = ["--quiet", "task=stvg-r1", "rollout.instruction=paper", f"model.path={model}", f"model.cache_dir={e2e_cache}",
              *_clock_dataset(tmp_path / "data")]
    _stvg("eval", *common, "--decompose", "rules", "--assemble", "both", "--out", str(tmp_path / "zs"), cwd=tmp_path)
    _stvg("eval", *common, "--out", str(tmp_path / "plain"), cwd=tmp_path)

    # Every answer, mapped back to forward time (a 20 s video: the reversed view's s..e is 20-e..20-s)
    answers = {(a["id"], a["role"], a["view"]): a for a in _jsonl(tmp_path / "zs" / "completions.jsonl")}
    for name, (attribute, action) in SUB_QUERIES.items():
        expected = {("action", "original"): (action, [4, 9], None), ("action", "reversed"): (action, [4, 12], None),
                    ("action", "shifted"): (action, [0, 3], None),
                    ("attribute", "original"): (attribute, [4, 9], 2),
                    ("attribute", "reversed"): (attribute, [14, 19], 3),
                    ("attribute", "shifted"): (attribute, [5, 8], 3)}
        got = {key[1:]: (a["query"], a["span"], a["instance_id"]) for key, a in answers.items() if key[0] == name}
        assert got == expected, name

    # The action spans: tIoU((4, 9), (4, 12)) = 5/8, the shifted view's (0, 3) overlaps neither. The
    # original and reversed spans tie as anchor (1 + 5/8 each), the original wins; the mean of the two
    # is (4, 10.5). Ids 2, 3, 3: the vote is 3. The tube, on frames round(4 * 4) = 16 .. round(10.5 * 4)
    # - 1 = 41 (4 fps; every frame is an evaluation frame): instance 3's box twice (reversed and
    # shifted views) and instance 2's once. Instance 3 is the anchor; instance 2 joins where their
    # IoU >= 0.5, weighted by it: at frames 16..19 the IoU is 1, 9/11, 2/3, 7/13 (x overlap 20, 18,
    # 16, 14 px of 20 x 20 boxes), then below 0.5. From frame 32 (8 s) instance 3 has no box left
    # and instance 2's track fills the tube.
    share = {16: 1.0, 17: 9 / 11, 18: 2 / 3, 19: 7 / 13}
    tube = []
    for f in range(16, 42):
        if f < 32:
            w = share.get(f, 0.0)
            box = [(2 * a + w * b) / (2 + w) for a, b in zip(STILL, _moving(f))]
        else:
            box = _moving(f)
        tube.append([f / 4, *box])
    predictions = sorted(_jsonl(tmp_path / "zs" / "predictions.jsonl"), key=lambda p: p["id"])
    assert [p["id"] for p in predictions] == sorted(QUERIES)
    for prediction in predictions:
        assert (prediction["t_start"], prediction["t_end"], prediction["instance_id"]) == (4.0, 10.5, 3)
        assert len(prediction["boxes"]) == len(tube)
        for got_row, want_row in zip(prediction["boxes"], tube):
            assert got_row == pytest.approx(want_row), prediction["id"]

    # The plain eval asks the whole query on the original view only: instance 2 over 4-9 s, every
    # track frame round(4 * 4) = 16 .. round(9 * 4) - 1 = 35
    plain = sorted(_jsonl(tmp_path / "plain" / "predictions.jsonl"), key=lambda p: p["id"])
    assert plain == [{"id": name, "t_start": 4.0, "t_end": 9.0, "boxes": [[f / 4, *_moving(f)] for f in range(16, 36)]}
                     for name in sorted(QUERIES)]

    zs = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert zs["strategy"] == {"decompose": "rules", "assemble": "both"}
    scored = tmp_path / "scored.json"
    _stvg("score", "--format", "hcstvg-v2", "--annotations", str(tmp_path / "data" / "annotations.json"),
          "--predictions", str(tmp_path / "zs" / "predictions.jsonl"), "--out", str(scored), cwd=tmp_path, timeout=120)
    assert json.loads(scored.read_text())["aggregates"]["all"] == zs["aggregates"]["all"]


def test_videotg_r1_preset_logs_how_many_samples_each_curation_pass_kept(tmp_path, e2e_cache, logged_names):
    model = _scripted(e2e_cache, YES_8_TO_12, "scripted-yes-8-12")
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    run = _stvg("train", "videotg-r1-curated", "--quiet", f"model.path={model}", f"model.cache_dir={e2e_cache}",
                "total_steps=2", "eval.max_samples=1", f"curation.difficulty_file={tmp_path / 'scores.difficulty.json'}",
                f"tracking.tracking_uri={tracking}", "tracking.experiment=curated", cwd=tmp_path)
    assert "curation: 8 samples, 4 kept by boundary reflection (4 dropped), 1 of 4 hard" in run.stdout
    assert "training videotg-r1-curated: 4 train" in run.stdout

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking)
    (found,) = client.search_runs([client.get_experiment_by_name("curated").experiment_id])
    counts = {name: client.get_metric_history(found.info.run_id, f"data/curation/{name}")[-1].value
              for name in ("in", "reflection_kept", "reflection_dropped", "scored", "hard")}
    assert counts == {"in": 8, "reflection_kept": 4, "reflection_dropped": 4, "scored": 4, "hard": 1}
    assert {a.path for a in client.list_artifacts(found.info.run_id, "curation")} == \
        {"curation/dropped.json", "curation/scores.difficulty.json"}
    assert (tmp_path / "scores.reflection.json").is_file()
    assert client.get_metric_history(found.info.run_id, "reward/mean")
    logged_names.check(tracking, found.info.run_id, "grpo-videotg-curated")
