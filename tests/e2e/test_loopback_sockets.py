"""Nothing a single-machine run starts listens beyond loopback: the embedded demo (`stvg train` with
no config, two learner ranks so a process group and its rendezvous store exist), talking to the test
servers it uses in CI (a reward server over HTTP, `mlflow server`, moto's S3). Every listening socket
of this test's process tree (pytest, the servers, the job and every Ray process under it) is sampled
while the job runs; other users' processes on the machine are not part of that tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse

import boto3
import pytest

from tests.e2e._processes import kill_session
from tests.infra._listening import ListeningSockets, tree

pytestmark = pytest.mark.slow

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
       "AWS_DEFAULT_REGION": "us-east-1"}


def test_a_demo_run_and_the_test_servers_listen_on_loopback_only(tmp_path, e2e_cache, mlflow_url, s3_endpoint,
                                                                   reward_url, logged_names):
    bucket = f"loopback-{uuid.uuid4().hex[:8]}"
    experiment = f"loopback-{uuid.uuid4().hex[:6]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    overrides = [
        "name=loopback", "task=stvg-o1", "warm_start.steps=0", "eval.at_start=false",
        "total_steps=2", "prompts_per_step=2", "grpo.group_size=2", "rollout.max_new_tokens=16",
        "learner.num_workers=2", "learner.micro_batch_size=2", "eval.max_samples=2",
        "data.synthetic_train_videos=4", "data.synthetic_heldout_videos=2", f"model.cache_dir={e2e_cache}",
        "reward.mode=http", f"reward.urls=[{reward_url}]", f"tracking.tracking_uri={mlflow_url}",
        f"tracking.experiment={experiment}", f"checkpoint.uri=s3://{bucket}/runs",
    ]
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        job = subprocess.Popen([sys.executable, "-m", "infra.cli", "train", "--quiet", *overrides], cwd=tmp_path,
                               env={**os.environ, **AWS, "AWS_ENDPOINT_URL": s3_endpoint}, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    sockets = ListeningSockets()
    deadline = time.monotonic() + 900
    while job.poll() is None and time.monotonic() < deadline:
        sockets.sample(tree(os.getpid()))
        time.sleep(0.5)
    if job.poll() is None:
        kill_session(job.pid)  # Ray's workers too: they have process groups of their own
        pytest.fail(f"the demo run did not finish in 15 minutes:\n{log.read_text()[-4000:]}")
    assert job.returncode == 0, log.read_text()[-4000:]

    # The sample saw what it must judge: Ray's servers, the learner ranks and every test server.
    assert {"gcs_server", "raylet"} <= sockets.processes(), sockets.report()
    assert any(name.startswith("ray::RayTrainWorker") for name in sockets.processes()), sockets.report()
    assert {urlparse(url).port for url in (reward_url, mlflow_url, s3_endpoint)} <= sockets.ports(), sockets.report()
    assert not sockets.exposed(), "listening beyond loopback:\n" + "\n".join(map(str, sockets.exposed()))

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_url)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    logged_names.check(mlflow_url, run.info.run_id, "grpo-loopback")
