"""`stvg train` on a real multi-node Ray cluster whose nodes do not share a filesystem.

A head and two worker nodes run on one machine, each in its own mount namespace with a private
tmpfs over its home, temp, Ray and working folders (tests/e2e/_cluster.py), so a path valid on one
node names nothing on another, as on separate pods. The worker nodes advertise the chart's Ray
resources (stvg_learner, stvg_rollout); the head advertises none. S3 (moto's server), `mlflow server`
and a reward server run as their own processes on loopback. The job goes in through the head's job
server, as a RayJob's submitter sends it, with the model folder, the annotations and the videos in
S3, checkpoints to S3 and reward.mode=auto finding the reward server in STVG_REWARD_URL.

Mid-run a learner node is SIGKILLed (raylet and all) and a fresh node joins: the run goes on from
its last complete checkpoint and ends with every step applied exactly once. The same job with a
checkpoint folder on the head's disk is refused before any worker starts.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
import yaml

from tests.e2e._cluster import LocalCluster, wait_for
from tests.infra._servers import aws_test_env, mlflow_server, s3_server
from tests.rewards._reward_servers import metric_value, reward_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STVG = str(Path(sys.executable).with_name("stvg"))
TOTAL_STEPS = 6
PROMPTS_PER_STEP = 2
GROUP_SIZE = 2
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

# What the chart's run config asks for: learner ranks on the learner group, actors on the rollout group.
RUN_CONFIG = {
    "name": "mn", "total_steps": TOTAL_STEPS, "prompts_per_step": PROMPTS_PER_STEP, "quiet": True,
    "data": {"source": "hcstvg-v2"},
    "rollout": {"max_new_tokens": 24, "max_frames": 8, "resources_per_worker": {"stvg_rollout": 1}},
    "grpo": {"group_size": GROUP_SIZE, "filter_zero_variance": False},
    "learner": {"num_workers": 2, "resources_per_worker": {"stvg_learner": 1}, "max_failures": 2},
    "checkpoint": {"every_n_steps": 2, "keep_last": 2},
    "tracking": {"log_images_every_n_steps": 2, "num_images": 1},
    "eval": {"max_samples": 2},
}


def _s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _upload_tree(s3, folder: Path, bucket: str, prefix: str) -> str:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return f"s3://{bucket}/{prefix}"


def _manifest(s3, bucket: str, key: str):
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """S3, MLflow and a reward server, each its own process on 127.0.0.1."""
    with s3_server(in_process=False, set_env=False) as s3_url, \
            mlflow_server(tmp_path_factory.mktemp("mlflow")) as mlflow_url, \
            reward_server("--workers", "1") as rewards:
        yield {"s3": s3_url, "mlflow": mlflow_url, "rewards": rewards}


@pytest.fixture(scope="module")
def stored(services, tmp_path_factory):
    """The bucket with the model folder, the annotations and the videos uploaded by the test."""
    from infra.data.synth import generate
    from rollout.models.tiny import tiny_model_dir

    s3 = _s3(services["s3"])
    bucket = f"mn-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    local = tmp_path_factory.mktemp("upload")
    model = _upload_tree(s3, tiny_model_dir(local / "models"), bucket, "models/tiny-qwen")
    # The real datasets' layout: one annotation file per split, one folder of videos.
    for split, count, seed in (("train", 6, 11), ("heldout", 2, 12)):
        generate(local / split, count, seed, width=160, height=120, fps=5.0)
        s3.upload_file(str(local / split / "annotations.json"), bucket, f"datasets/synth/{split}.json")
        _upload_tree(s3, local / split / "videos", bucket, "datasets/synth/videos")
    return {"bucket": bucket, "model": model, "data": f"s3://{bucket}/datasets/synth"}


@pytest.fixture(scope="module")
def cluster(services):
    root = Path(tempfile.mkdtemp(prefix="mn", dir="/tmp"))  # short: Ray's socket paths live under it
    env = {**AWS, "AWS_ENDPOINT_URL": services["s3"], "PYTHONPATH": str(REPO),
           "MLFLOW_TRACKING_URI": services["mlflow"], "STVG_REWARD_URL": services["rewards"].url,
           "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0",
           "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",  # collectives on loopback like the rest
           "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}
    with LocalCluster(root, env) as cluster:
        cluster.start_head("127.0.0.2")
        cluster.add_worker("w1", "127.0.0.3", {"stvg_learner": 1, "stvg_rollout": 1})
        cluster.add_worker("w2", "127.0.0.4", {"stvg_learner": 1})
        yield cluster
    shutil.rmtree(root, ignore_errors=True)  # only node logs and the run configs are left outside the nodes


def _submit(cluster: LocalCluster, config_path: Path, overrides: list[str]) -> str:
    """The RayJob's way in: the entrypoint `stvg train <config> k=v ...` through the head's job server."""
    from ray.job_submission import JobSubmissionClient

    entrypoint = " ".join([STVG, "train", str(config_path), *overrides])
    return JobSubmissionClient(cluster.dashboard_url).submit_job(entrypoint=entrypoint)


def _job(cluster: LocalCluster, job_id: str):
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(cluster.dashboard_url)
    return client.get_job_status(job_id), client.get_job_logs(job_id)


def _actors(cluster: LocalCluster, class_name: str, job_id: str | None = None) -> list:
    from ray.util.state import list_actors

    found = list_actors(address=cluster.dashboard_url, filters=[("class_name", "=", class_name)], detail=True,
                        limit=1000, raise_on_missing_output=False)
    if job_id is None:
        return found
    from ray.job_submission import JobSubmissionClient

    ray_job = JobSubmissionClient(cluster.dashboard_url).get_job_info(job_id).driver_info
    return [a for a in found if ray_job is not None and a.job_id == ray_job.id]


def test_a_run_spans_nodes_that_share_no_files_and_survives_losing_a_learner_node(services, stored, cluster):
    from ray.job_submission import JobStatus

    from infra.storage import open_checkpoints

    s3 = _s3(services["s3"])
    bucket = stored["bucket"]
    root = "runs/mn/checkpoints"
    experiment = f"mn-{uuid.uuid4().hex[:6]}"
    config = cluster.root / "run.yaml"  # the chart's ConfigMap: read by the driver on the head only
    config.write_text(yaml.safe_dump(RUN_CONFIG))
    overrides = [f"model.path={stored['model']}", f"data.train_annotations={stored['data']}/train.json",
                 f"data.heldout_annotations={stored['data']}/heldout.json", f"data.video_root={stored['data']}/videos",
                 f"checkpoint.uri=s3://{bucket}/{root}", f"tracking.experiment={experiment}"]
    items_before = metric_value(httpx.get(f"{services['rewards'].url}/metrics").text, "stvg_reward_items_scored_total")

    job_id = _submit(cluster, config, overrides)
    logs = lambda: _job(cluster, job_id)[1][-6000:] + "\n" + cluster.logs()  # noqa: E731

    # 1. Lose a learner node once checkpoint 2 is complete, then let a fresh node take its place.
    wait_for(lambda: _manifest(s3, bucket, f"{root}/step-000002/manifest.json") is not None
             or _job(cluster, job_id)[0].is_terminal(), 900, "checkpoint 2", logs)
    assert not _job(cluster, job_id)[0].is_terminal(), logs()
    lost = next(n for n in cluster.nodes if n.name == "w2")
    cluster.kill(lost)
    # With a rank gone no further step can complete, so this is what the run must resume from.
    with aws_test_env(services["s3"]):
        resume_from = open_checkpoints(f"s3://{bucket}/{root}").latest().step
    fresh = cluster.add_worker("w3", "127.0.0.5", {"stvg_learner": 1})

    wait_for(lambda: _job(cluster, job_id)[0].is_terminal(), 1200, "the job to end", logs)
    status, job_log = _job(cluster, job_id)
    assert status == JobStatus.SUCCEEDED, logs()
    assert f"resuming at step {resume_from} from the latest complete checkpoint" in job_log, logs()

    # Every checkpoint left in S3 is complete (keep_last=2), none half-written by the lost node.
    with aws_test_env(services["s3"]):
        store = open_checkpoints(f"s3://{bucket}/{root}")
        step_dirs = {key.split("/")[0] for key in store.objects.list("")}
        assert step_dirs == {f"step-{TOTAL_STEPS - 2:06d}", f"step-{TOTAL_STEPS:06d}"}, step_dirs
        assert all(store.get(int(name[5:])) is not None for name in step_dirs)
    # Every step applied once: the last checkpoint holds the whole run and both ranks' shards.
    manifest = _manifest(s3, bucket, f"{root}/step-{TOTAL_STEPS:06d}/manifest.json")
    assert manifest is not None, logs()
    assert manifest["metadata"]["step"] == TOTAL_STEPS
    assert manifest["metadata"]["policy_version"] == TOTAL_STEPS
    assert manifest["metadata"]["prompts_consumed"] == TOTAL_STEPS * PROMPTS_PER_STEP
    files = {f["path"] for f in manifest["files"]}
    assert {"trainer_state.json", "rng_rank0.pt", "rng_rank1.pt", "hf/config.json"} <= files
    assert any("zero_pp_rank_1" in p for p in files) and any("zero_pp_rank_0" in p for p in files)

    # Learner ranks and rollout actors ran on the worker nodes, never on the head; the restarted
    # group used the node that joined.
    head = cluster.nodes[0].node_id
    workers = {n.node_id: n.name for n in cluster.nodes[1:]}
    learners = _actors(cluster, "RayTrainWorker")
    rollouts = _actors(cluster, "RolloutWorker")
    assert learners and rollouts
    assert all(a.node_id in workers and a.node_id != head for a in [*learners, *rollouts])
    assert {workers[a.node_id] for a in rollouts} == {"w1"}
    assert fresh.node_id in {a.node_id for a in learners}

    # MLflow: one finished run with every step's metrics, pictures and the reward curve.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=services["mlflow"])
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    assert {m.step for m in client.get_metric_history(run.info.run_id, "reward/mean")} == \
        set(range(1, TOTAL_STEPS + 1))
    assert client.get_metric_history(run.info.run_id, "eval/m_tIoU")
    assert any(a.path.endswith(".png") for a in client.list_artifacts(run.info.run_id, "rollouts"))
    assert any(a.path.endswith("reward-curve.png") for a in client.list_artifacts(run.info.run_id, "plots"))

    # The reward server scored the completions (reward.mode=auto found it in STVG_REWARD_URL).
    scored = metric_value(httpx.get(f"{services['rewards'].url}/metrics").text, "stvg_reward_items_scored_total")
    assert scored - items_before >= TOTAL_STEPS * PROMPTS_PER_STEP * GROUP_SIZE


def test_a_checkpoint_folder_on_the_heads_disk_is_refused_before_any_worker_starts(services, stored, cluster):
    from ray.job_submission import JobStatus

    config = cluster.root / "refused.yaml"
    config.write_text(yaml.safe_dump({**RUN_CONFIG, "name": "refused"}))
    job_id = _submit(cluster, config, [f"model.path={stored['model']}", f"data.train_annotations={stored['data']}/train.json",
                                       f"data.video_root={stored['data']}/videos", "checkpoint.uri=runs/refused/checkpoints"])
    wait_for(lambda: _job(cluster, job_id)[0].is_terminal(), 300, "the refused job to end")
    status, job_log = _job(cluster, job_id)
    assert status == JobStatus.FAILED
    lines = [line for line in job_log.splitlines() if line.strip()]
    assert lines[-1].startswith("stvg train: error: checkpoint.uri=") and \
        "is a folder on the driver's node only" in lines[-1] and "s3://" in lines[-1], job_log
    assert "Traceback" not in job_log
    assert _actors(cluster, "RolloutWorker", job_id) == [] and _actors(cluster, "RayTrainWorker", job_id) == []
