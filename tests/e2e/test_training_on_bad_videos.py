"""`stvg train` on a dataset with a damaged and a truncated video, as a user runs it (no --quiet):
by default the run ends at once with one line naming the file, exit 2, no traceback and no retry;
with data.on_bad_video=skip it trains without those samples, warns once per file and counts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOTAL_STEPS = 3
PROMPTS_PER_STEP = 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[Path]]:
    """6 synthetic videos in the HC-STVG v2 layout; #1 overwritten from byte 2000, #4 cut in half."""
    from infra.data.synth import generate

    root = tmp_path_factory.mktemp("bad-set")
    annotations = generate(root, 6, seed=11)
    videos = sorted((root / "videos").iterdir())
    data = bytearray(videos[1].read_bytes())
    data[2000:] = bytes((i * 7919) % 251 for i in range(len(data) - 2000))
    videos[1].write_bytes(bytes(data))
    videos[4].write_bytes(videos[4].read_bytes()[: videos[4].stat().st_size // 2])
    return annotations, [videos[1], videos[4]]


def _train(cwd: Path, cache: Path, annotations: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["train", "name=bad", "task=stvg-o1", "warm_start.steps=0", f"model.cache_dir={cache}", "data.source=hcstvg-v2",
            f"data.train_annotations={annotations}", f"total_steps={TOTAL_STEPS}",
            f"prompts_per_step={PROMPTS_PER_STEP}", "rollout.max_new_tokens=16", "grpo.group_size=2",
            "checkpoint.every_n_steps=0", "tracking.tracking_uri=sqlite:///mlflow.db", *extra]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}  # every line Ray would print, not a summary of repeats
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)


def _run(cwd: Path):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("stvg").experiment_id])
    return client, run


def test_a_bad_video_ends_the_run_at_once_with_one_line_naming_it(tmp_path, e2e_cache, dataset):
    annotations, bad = dataset
    # learner.max_failures=-1: if the error went through Ray Train's retries, the run would never end
    result = _train(tmp_path, e2e_cache, annotations, "learner.max_failures=-1")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-4000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("stvg train: error: video '") and any(f"'{video}'" in last for video in bad), last
    assert "data.on_bad_video=skip" in last and "stvg data inspect" in last
    for noise in ("Traceback", "Error in training function", "PlacementGroupCleaner", "PreemptionWatcher",
                  "resumed MLflow run"):
        assert noise not in output, noise
    assert output.count("Started training worker group") == 1  # no second attempt
    _, run = _run(tmp_path)
    assert run.info.status == "FAILED"
    assert not (tmp_path / "runs" / "bad").exists()  # no empty run folder left behind


def test_with_skip_the_run_trains_without_those_samples_and_counts_them(tmp_path, e2e_cache, dataset, logged_names):
    from infra.data.readers import read_annotations
    from trainer.sampler import PromptSampler

    annotations, bad = dataset
    result = _train(tmp_path, e2e_cache, annotations, "data.on_bad_video=skip",
                    f"data.heldout_annotations={annotations}", "eval.max_samples=0", "tracking.num_images=1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for video in bad:  # one warning per file, however often its sample comes up
        assert output.count(f"warning: video '{video}'") == 1, video
    for noise in ("Traceback", "PlacementGroupCleaner", "PreemptionWatcher", "resumed MLflow run",
                  "generation flags are not valid", "real_accelerator.py"):
        assert noise not in output, noise
    assert not [line for line in output.splitlines() if "RayTrainWorker" in line and "Writing model" in line]

    # Which prompts each step draws is fixed by (seed 0, step): count the bad ones independently.
    samples = read_annotations("hcstvg-v2", annotations)
    is_bad = [s.video in {str(v) for v in bad} for s in samples]
    sampler = PromptSampler(len(samples), 0)
    expected = [sum(is_bad[i] for i in sampler.indices_at(step * PROMPTS_PER_STEP, PROMPTS_PER_STEP))
                for step in range(TOTAL_STEPS)]
    client, run = _run(tmp_path)
    assert run.info.status == "FINISHED"
    logged_names.check(f"sqlite:///{tmp_path}/mlflow.db", run.info.run_id, "grpo-bad-videos-skipped")
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "data/bad_video_skips")}
    assert [history[step] for step in range(1, TOTAL_STEPS + 1)] == expected
    assert run.data.metrics["eval/bad_video_skips"] == 2  # both bad videos are in the held-out file too
    # pictures: at the first and the last step of a run shorter than log_images_every_n_steps
    pictures = {a.path.split("/")[-1][:11] for a in client.list_artifacts(run.info.run_id, "rollouts")}
    assert pictures == {"step-000001", f"step-{TOTAL_STEPS:06d}"}


def _zero_shot_eval(cwd: Path, cache: Path, annotations: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["eval", "task=stvg-o1", f"model.cache_dir={cache}", "data.source=hcstvg-v2",
            f"data.train_annotations={annotations}", f"data.heldout_annotations={annotations}",
            "rollout.max_new_tokens=16", "--assemble", "reversed", "--out", str(cwd / "zs"), *extra]
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_zero_shot_eval_leaves_bad_videos_out_when_skipping_and_stops_on_them_otherwise(tmp_path, e2e_cache, dataset):
    """Every question of a sample (its sub-queries, then two roles x two views) needs its video: a
    sample whose video fails is left out of all of them and of the scores, once, like the plain
    evaluation does."""
    from infra.data.readers import read_annotations

    annotations, bad = dataset
    failed = _zero_shot_eval(tmp_path / "fail", e2e_cache, annotations, "--decompose", "rules")
    assert failed.returncode == 2, (failed.stdout + failed.stderr)[-4000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("stvg eval: error: video '") and "data.on_bad_video=skip" in last, last
    assert "Traceback" not in failed.stdout + failed.stderr
    assert not (tmp_path / "fail" / "zs").exists()

    # --decompose model: the model is asked for the sub-queries first (a fifth question per sample)
    result = _zero_shot_eval(tmp_path, e2e_cache, annotations, "data.on_bad_video=skip", "--decompose", "model")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for video in bad:  # one warning per file although five questions met it
        assert output.count(f"warning: video '{video}'") == 1, video
    good = sorted(s.id for s in read_annotations("hcstvg-v2", annotations) if s.video not in {str(v) for v in bad})
    metrics = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert (metrics["samples"], metrics["left_out_bad_videos"]) == (4, 2)
    assert metrics["metrics"]["eval/bad_video_skips"] == 2
    answered = [json.loads(line) for line in (tmp_path / "zs" / "completions.jsonl").read_text().splitlines()]
    # the four usable samples, each asked for its sub-queries, then the action and the attribute
    # question on both views
    assert sorted({a["id"] for a in answered}) == good
    assert sorted(a["role"] for a in answered) == sorted(["decompose"] * 4 + ["action", "attribute"] * 4 * 2)


def test_curation_leaves_bad_videos_out_when_skipping_and_keeps_its_scores_when_stopping(tmp_path, e2e_cache,
                                                                                        dataset):
    """VideoTG-R1's curation passes ask the model about every training sample before training: with
    skip, a sample whose video fails gets no score and is left out of training (warned once); without,
    the run ends with the usual line and the scores of the samples asked before it are kept."""
    from infra.data.readers import read_annotations

    annotations, bad = dataset
    samples = read_annotations("hcstvg-v2", annotations)
    good = {s.id for s in samples if s.video not in {str(v) for v in bad}}
    curation = ["curation.enabled=true", "curation.rollouts=2", "curation.reflection_rollouts=2",
                "curation.batch_size=1", "curation.reflection_threshold=1.0"]  # reflection drops nothing

    scores = tmp_path / "fail" / "s.difficulty.json"
    (tmp_path / "fail").mkdir()
    failed = _train(tmp_path / "fail", e2e_cache, annotations, *curation, f"curation.difficulty_file={scores}")
    assert failed.returncode == 2, (failed.stdout + failed.stderr)[-4000:]
    assert failed.stderr.strip().splitlines()[-1].startswith("stvg train: error: video '")
    # batches of one, in file order: the samples before the first bad one were asked and are kept
    first_bad = next(i for i, s in enumerate(samples) if s.id not in good)
    reflection = json.loads((tmp_path / "fail" / "s.reflection.json").read_text())["reflection"]
    assert sorted(reflection) == sorted(s.id for s in samples[:first_bad]) and first_bad > 0

    result = _train(tmp_path, e2e_cache, annotations, *curation, "data.on_bad_video=skip",
                    f"curation.difficulty_file={tmp_path / 's.difficulty.json'}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for video in bad:  # once per file, though both passes met it
        assert output.count(f"warning: video '{video}'") == 1, video
    assert f"curation: {len(good)} samples, {len(good)} kept by boundary reflection (0 dropped, 2 left out" in output
    assert sorted(json.loads((tmp_path / "s.difficulty.json").read_text())["difficulty"]) == sorted(good)
    assert f"{len(good)} train" in output
