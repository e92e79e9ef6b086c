"""The other seed methods as a user runs them (`stvg train`, `stvg eval`, `stvg score`, subprocesses):

- STVG-R1 on a dataset that ships no tracks: the colour-blob tracker runs once, its tracks are
  cached beside the annotations, a GRPO step and the final evaluation run;
- zero-shot STVG-R1 evaluation with query decomposition and temporal-augmented assembling, by a
  scripted model (tests/trainer/_seed_models.py) that always answers "Target ID: 2, Time range: 4 to
  9": the tube is instance 2's track from 4 to 9 s, worked out from the generator's tracks.json;
- the VideoTG-R1 preset: curation counts in MLflow and the drop list, with the scripted model
  answering the reflection question "yes, at 8-12 s" (hand-worked in test_seed_curation.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer._seed_models import R1_ID2_4_TO_9, YES_8_TO_12, write_scripted_model

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


def test_stvg_r1_trains_on_a_dataset_without_tracks_by_tracking_its_videos_once(tmp_path, e2e_cache):
    from infra.data.synth import generate

    data = tmp_path / "data"
    generate(data, num_videos=3, seed=7, width=160, height=120, fps=5.0)
    annotations = data / "annotations.json"
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    run = _stvg("train", "--quiet", "name=r1", "task=stvg-r1", "data.source=hcstvg-v2",
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


def test_zero_shot_strategies_give_the_tube_of_the_predicted_id_and_stvg_score_agrees(tmp_path, e2e_cache):
    model = _scripted(e2e_cache, R1_ID2_4_TO_9, "scripted-r1-id2")
    common = ["--quiet", "task=stvg-r1", f"model.path={model}", f"model.cache_dir={e2e_cache}",
              "data.synthetic_train_videos=6", "data.synthetic_heldout_videos=2", "eval.max_samples=2",
              "rollout.max_new_tokens=24"]
    _stvg("eval", *common, "--decompose", "rules", "--assemble", "both", "--out", str(tmp_path / "zs"), cwd=tmp_path)
    _stvg("eval", *common, "--out", str(tmp_path / "plain"), cwd=tmp_path)

    heldout = next(Path(e2e_cache, "videos", "synthetic").glob("videos2-seed1001-*"))
    tracks = json.loads((heldout / "tracks.json").read_text())
    # every view's action answer is 4-9 s (the reversed one 11-16 s, mapped back to 4-9) and every
    # attribute answer names id 2: instance 2's boxes on frames round(4 * 5) = 20 .. 44, at f / 5 s
    expected = [{"id": name, "t_start": 4.0, "t_end": 9.0,
                 "boxes": [[f / 5, *tracks[name]["2"][str(f)]] for f in range(20, 45) if str(f) in tracks[name]["2"]]}
                for name in sorted(tracks)]
    for out in ("zs", "plain"):
        predictions = [json.loads(line) for line in (tmp_path / out / "predictions.jsonl").read_text().splitlines()]
        assert sorted(predictions, key=lambda p: p["id"]) == expected, out
    zs = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert zs["strategy"] == {"decompose": "rules", "assemble": "both"}
    answers = [json.loads(line) for line in (tmp_path / "zs" / "completions.jsonl").read_text().splitlines()]
    # two questions (action as VTG, attribute as STVG-R1) on three views, per sample
    assert sorted({(a["role"], a["view"]) for a in answers}) == sorted(
        (role, view) for role in ("action", "attribute") for view in ("original", "reversed", "shifted"))
    assert {a["span"][0] for a in answers if a["view"] == "reversed"} == {11.0}

    scored = tmp_path / "scored.json"
    _stvg("score", "--format", "hcstvg-v2", "--annotations", str(heldout / "annotations.json"), "--predictions",
          str(tmp_path / "zs" / "predictions.jsonl"), "--out", str(scored), cwd=tmp_path, timeout=120)
    assert json.loads(scored.read_text())["aggregates"]["all"] == zs["aggregates"]["all"]
    assert zs["aggregates"]["all"]["m_tIoU"] > 0


def test_videotg_r1_preset_logs_how_many_samples_each_curation_pass_kept(tmp_path, e2e_cache):
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
