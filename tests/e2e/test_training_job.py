"""`stvg train` end to end on CPU with real parts: a local Ray cluster, two ZeRO-3 learner ranks
taking PPO mini-batches, a rollout actor fed over the gloo weight-sync group, a reward server over
HTTP, checkpoints in S3 (moto on loopback) and a real `mlflow server`. The job is killed mid-run and
resumed; a half-written checkpoint is planted first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from tests.e2e._processes import kill_session

pytestmark = pytest.mark.slow

TOTAL_STEPS = 5
PROMPTS_PER_STEP = 2


def _aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


def _train(cwd: Path, env: dict[str, str], overrides: list[str]) -> subprocess.Popen:
    log = open(cwd / f"train-{len(list(cwd.glob('train-*.log')))}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "train", "--quiet", *overrides], cwd=cwd,
                            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _keys(s3, bucket: str, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


def _wait_for(predicate, proc: subprocess.Popen, timeout: float, what: str, log: Path, poll: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"job exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def test_job_killed_mid_run_resumes_from_the_last_complete_checkpoint_and_logs_everything(
        tmp_path, e2e_cache, mlflow_url, s3_endpoint, reward_url, logged_names):
    env = _aws_env(s3_endpoint)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"e2e-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    root = "runs/e2e/checkpoints"
    experiment = f"e2e-{uuid.uuid4().hex[:6]}"
    overrides = [
        "name=e2e", f"total_steps={TOTAL_STEPS}", f"prompts_per_step={PROMPTS_PER_STEP}",
        f"model.cache_dir={e2e_cache}", "data.synthetic_train_videos=6", "data.synthetic_heldout_videos=2",
        "rollout.max_new_tokens=24", "grpo.group_size=2", "grpo.filter_zero_variance=false",
        "task=stvg-o1", "warm_start.steps=0", "eval.at_start=false",
        "learner.num_workers=2", "learner.micro_batch_size=2",
        # gloo collective weight sync in 1 MiB buckets gathered by both ZeRO-3 ranks in lockstep;
        # 2 PPO mini-batches of 1 prompt a step
        "rollout.weight_sync=collective", "rollout.weight_bucket_mb=1", "grpo.ppo_mini_batch_size=1",
        # box credit: learner rank 0 reads the policy's tokenizer from its own node's model cache
        "grpo.credit=box",
        f"checkpoint.uri=s3://{bucket}/{root}", "checkpoint.every_n_steps=2", "checkpoint.keep_last=2",
        f"tracking.tracking_uri={mlflow_url}", f"tracking.experiment={experiment}",
        "tracking.log_images_every_n_steps=2", "tracking.num_images=1",
        "reward.mode=http", f"reward.urls=[{reward_url}]", "eval.max_samples=2",
    ]

    # 1. Run until checkpoint 2 is complete, then kill the whole job (driver, Ray, every worker) at
    #    once. Polled often: on an idle machine a step takes about a second.
    first = _train(tmp_path, env, overrides)
    log0 = tmp_path / "train-0.log"
    _wait_for(lambda: f"{root}/step-000002/manifest.json" in _keys(s3, bucket, root), first, 600,
              "checkpoint 2", log0, poll=0.1)
    kill_session(first.pid)  # Ray's workers have process groups of their own: killpg would miss them
    first.wait()
    # The job may have got further than step 2 before it died; nothing writes any more.
    last = max(int(key.split("/step-")[1][:6]) for key in _keys(s3, bucket, root) if key.endswith("/manifest.json"))
    assert last in (2, 4), last  # checkpoints every 2 steps of 5

    # 2. Plant debris of a later, never-finished save: files without a manifest, and a manifest
    #    that lists a file which is not there. Neither may be picked up.
    partial, broken = last + 1, last + 2
    s3.put_object(Bucket=bucket, Key=f"{root}/step-{partial:06d}/zero_shard.pt", Body=b"partial")
    s3.put_object(Bucket=bucket, Key=f"{root}/step-{broken:06d}/manifest.json", Body=json.dumps({
        "format": "stvg-checkpoint/1", "step": broken, "created": "2026-01-01T00:00:00+00:00", "total_bytes": 1,
        "files": [{"path": "missing.pt", "size": 1, "sha256": "0" * 64}], "metadata": {"step": broken}}).encode())

    # 3. Resume: it must continue from the latest complete checkpoint to the end.
    second = _train(tmp_path, env, [*overrides, "resume=auto"])
    assert second.wait(timeout=900) == 0, (tmp_path / "train-1.log").read_text()[-4000:]
    resumed_log = (tmp_path / "train-1.log").read_text()
    assert f"steps {last}->{TOTAL_STEPS}" in resumed_log

    # Checkpoints: the last two complete ones are kept, and the final one holds the full state.
    keys = _keys(s3, bucket, root)
    assert {f"{root}/step-000004/manifest.json", f"{root}/step-000005/manifest.json"} <= keys
    assert f"{root}/step-000002/manifest.json" not in keys  # pruned (keep_last=2)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{root}/step-000005/manifest.json")["Body"].read())
    assert manifest["metadata"]["step"] == TOTAL_STEPS
    assert manifest["metadata"]["prompts_consumed"] == TOTAL_STEPS * PROMPTS_PER_STEP
    files = {f["path"] for f in manifest["files"]}
    assert {"trainer_state.json", "rng_rank0.pt", "rng_rank1.pt", "hf/config.json"} <= files
    assert any("zero_pp_rank_1" in path for path in files), "rank 1's ZeRO-3 shard must be in the checkpoint"

    # MLflow: one run, continued after the kill, with every step's metrics, pictures and config.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_url)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "reward/mean")}
    assert steps == set(range(1, TOTAL_STEPS + 1))
    for name in ("time/rollout_s", "time/learn_s", "time/sync_s", "loss", "response_len/mean", "eval/m_tIoU",
                 "adv/box_credit_frac"):
        assert client.get_metric_history(run.info.run_id, name), f"metric {name} was not logged"
    assert {m.value for m in client.get_metric_history(run.info.run_id, "optimizer_steps")} == {2.0}
    assert run.data.tags["checkpoint_uri"].endswith("step-000005")
    # every metric and artifact name is one docs/tracking.md lists
    artifacts = logged_names.check(mlflow_url, run.info.run_id, "grpo-http-resumed")["artifact"]
    assert "config.yaml" in artifacts and any(a.startswith("config.resumed-") for a in artifacts)
    # pictures at steps 2 and 4 (every 2 steps, one each), the reward curve at the last step
    assert {"rollouts/step-000002-0.png", "rollouts/step-000004-0.png", "plots/step-000005-reward-curve.png"} \
        <= artifacts
    # stvg plan's figures (docs/plan.md): the plan of the first job, and the resumed job's beside it
    assert "plan.yaml" in artifacts and any(a.startswith("plan.resumed-") for a in artifacts)
    assert run.data.params["plan.fits"] == "True"
