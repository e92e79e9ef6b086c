"""ModelSource: what model.path names, resolved in the driver and materialised by every node in its
own cache (tiny model, local folder, a Hugging Face folder in S3, an stvg checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from infra.errors import UserError
from infra.storage import open_checkpoints
from rollout.models.source import ModelSource, folder_digest, resolve_model_source


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def _upload_folder(folder: Path, bucket: str, prefix: str) -> str:
    s3 = boto3.client("s3")
    for rel, body in _files(folder).items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=body)
    return f"s3://{bucket}/{prefix}"


def test_the_tiny_model_is_rebuilt_identically_on_another_node(tmp_path):
    driver = resolve_model_source("tiny", str(tmp_path / "driver-cache"), tiny_seed=3)
    assert driver.kind == "tiny" and driver.fingerprint
    # another node: same description, its own empty cache
    elsewhere = ModelSource("tiny", "tiny", str(tmp_path / "node-cache"), tiny_seed=3, fingerprint=driver.fingerprint)
    built = Path(elsewhere.local_dir())
    assert str(built).startswith(str(tmp_path / "node-cache"))
    assert _files(built) == _files(Path(driver.local_dir()))


def test_a_node_whose_tiny_model_differs_from_the_drivers_refuses_to_train(tmp_path):
    wrong = ModelSource("tiny", "tiny", str(tmp_path / "cache"), tiny_seed=3, fingerprint="0" * 64)
    with pytest.raises(UserError, match="differs from the driver's"):
        wrong.local_dir()


def test_a_hugging_face_folder_in_s3_is_fetched_into_each_nodes_cache(tiny_model, bucket, tmp_path):
    uri = _upload_folder(tiny_model, bucket, "models/tiny")
    source = resolve_model_source(uri + "/", str(tmp_path / "driver-cache"))
    assert (source.kind, source.uri) == ("s3-folder", uri)
    node = ModelSource(**{**source.__dict__, "cache_dir": str(tmp_path / "node-cache")})
    local = Path(node.local_dir())
    assert str(local).startswith(str(tmp_path / "node-cache")) and _files(local) == _files(tiny_model)
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(local).model_type == "qwen2_5_vl"


def test_a_checkpoint_root_pins_its_latest_step_for_the_whole_run(bucket, tmp_path):
    store = open_checkpoints(f"s3://{bucket}/runs/sft/checkpoints")
    for step, version in ((2, 1), (4, 2)):
        src = tmp_path / f"src{step}"
        (src / "hf").mkdir(parents=True)
        (src / "hf" / "config.json").write_text(json.dumps({"version": version}))
        (src / "zero_shard.pt").write_bytes(b"optimizer")
        store.save(step, src, {"step": step})
    source = resolve_model_source(f"s3://{bucket}/runs/sft/checkpoints", str(tmp_path / "cache"))
    assert (source.kind, source.uri) == ("checkpoint", f"s3://{bucket}/runs/sft/checkpoints/step-000004")
    later = tmp_path / "src6"
    (later / "hf").mkdir(parents=True)
    (later / "hf" / "config.json").write_text(json.dumps({"version": 3}))
    store.save(6, later, {"step": 6})  # saved while the run goes on: the run keeps the step it started with
    local = Path(source.local_dir())
    assert json.loads((local / "config.json").read_text()) == {"version": 2}
    assert not (local.parent / "zero_shard.pt").exists()  # only hf/ is fetched


def test_a_prefix_holding_no_model_is_one_clear_error(bucket, tmp_path):
    boto3.client("s3").put_object(Bucket=bucket, Key="junk/readme.txt", Body=b"x")
    with pytest.raises(UserError, match=r"model.path=s3://.*/junk: neither a Hugging Face model folder"):
        resolve_model_source(f"s3://{bucket}/junk", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="no config.json"):
        resolve_model_source(str(tmp_path), str(tmp_path / "cache"))


def test_folder_digest_covers_names_and_bytes(tmp_path):
    (tmp_path / "a").write_bytes(b"1")
    before = folder_digest(tmp_path)
    (tmp_path / "a").write_bytes(b"2")
    assert folder_digest(tmp_path) != before
    (tmp_path / "a").write_bytes(b"1")
    assert folder_digest(tmp_path) == before
    (tmp_path / "a").rename(tmp_path / "b")
    assert folder_digest(tmp_path) != before
