"""Where the plan reads config.json from: local folders, checkpoints (local and in S3 through moto's
server), an s3:// prefix, the shipped configs by name, and the one-line errors otherwise."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from infra.errors import UserError
from infra.plan.source import SHIPPED_DIR, find_model
from infra.storage import open_checkpoints

SEVEN_B = json.loads((SHIPPED_DIR / "qwen2.5-vl-7b.json").read_text())


def _model_folder(path, config=SEVEN_B):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _checkpoints(root_uri: str, tmp_path, steps=(1, 2)) -> None:
    """Complete checkpoints at `steps`, each with an hf/ export whose config says its step."""
    store = open_checkpoints(root_uri, keep_last=0)
    for step in steps:
        local = _model_folder(tmp_path / f"ckpt{step}" / "hf", {**SEVEN_B, "num_hidden_layers": 20 + step}).parent
        store.save(step, local, {"step": step})


def test_a_local_folder_with_its_tokenizer_counts_text_exactly(tmp_path):
    from rollout.models.tiny import tiny_model_dir

    model_dir = tiny_model_dir(tmp_path / "models")
    source = find_model(str(model_dir))
    assert source.where == str(model_dir / "config.json")
    assert source.config == json.loads((model_dir / "config.json").read_text())
    assert source.tokenizer is not None and source.tokenizer.chat_template


def test_a_folder_without_a_tokenizer_is_planned_with_estimated_text(tmp_path):
    source = find_model(str(_model_folder(tmp_path / "Qwen2.5-VL-7B-Instruct")))
    assert source.config == SEVEN_B and source.tokenizer is None


def test_a_local_checkpoint_root_uses_its_latest_hf_export(tmp_path):
    _checkpoints(str(tmp_path / "ckpts"), tmp_path)
    assert find_model(str(tmp_path / "ckpts")).config["num_hidden_layers"] == 22
    assert find_model(str(tmp_path / "ckpts" / "step-000001")).config["num_hidden_layers"] == 21


def test_s3_prefix_and_checkpoint_read_only_the_config(s3_endpoint, tmp_path):
    import boto3

    bucket = f"plan-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="models/qwen7b/config.json", Body=json.dumps(SEVEN_B).encode())
    s3.put_object(Bucket=bucket, Key="models/qwen7b/model-00001-of-00004.safetensors", Body=b"not read")
    source = find_model(f"s3://{bucket}/models/qwen7b")
    assert source.config == SEVEN_B and source.where == f"s3://{bucket}/models/qwen7b/config.json"
    assert source.tokenizer is None
    _checkpoints(f"s3://{bucket}/runs/a/checkpoints", tmp_path)
    assert find_model(f"s3://{bucket}/runs/a/checkpoints").config["num_hidden_layers"] == 22


def test_an_unreadable_path_falls_back_to_the_shipped_config_its_name_carries(tmp_path):
    source = find_model("/models/Qwen2.5-VL-72B-Instruct")
    assert source.config == json.loads((SHIPPED_DIR / "qwen2.5-vl-72b.json").read_text())
    assert "shipped qwen2.5-vl-72b" in source.where and "not readable here" in source.where
    assert find_model("/mnt/weights/qwen2.5-vl-3b").config["vocab_size"] == 151936


def test_an_unreadable_unknown_path_is_one_clear_error():
    with pytest.raises(UserError) as err:
        find_model("/models/my-finetune")
    message = str(err.value)
    assert "model.path='/models/my-finetune' cannot be read here" in message
    assert "--model-config" in message and "qwen2.5-vl-7b" in message and "\n" not in message


def test_model_config_names_a_shipped_config_or_a_file(tmp_path):
    assert find_model("/models/my-finetune", override="qwen2.5-vl-32b").config["hidden_size"] == 5120
    folder = _model_folder(tmp_path / "m", {**SEVEN_B, "num_hidden_layers": 3})
    assert find_model("tiny", override=str(folder / "config.json")).config["num_hidden_layers"] == 3
    assert find_model("tiny", override=str(folder)).config["num_hidden_layers"] == 3
    with pytest.raises(UserError, match="neither a config.json file nor a shipped config"):
        find_model("tiny", override="qwen2.5-vl-8b")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable JSON config"):
        find_model("tiny", override=str(tmp_path / "bad.json"))


@pytest.mark.parametrize("size", ["small", "medium"])
def test_the_tiny_model_is_planned_from_the_config_its_size_builds(tmp_path, size):
    """`stvg plan` sizes model.path=tiny without building weights: its config must be the one the
    node builds for that size (compared with the config.json written by the real build)."""
    from rollout.models.source import resolve_model_source

    built = json.loads((Path(resolve_model_source("tiny", str(tmp_path), tiny_size=size).local_dir())
                        / "config.json").read_text())
    planned = find_model("tiny", tiny_size=size).config
    for part, keys in (("text_config", ("hidden_size", "num_hidden_layers")),
                       ("vision_config", ("hidden_size", "depth", "out_hidden_size"))):
        assert {k: planned[part][k] for k in keys} == {k: built[part][k] for k in keys}
    assert planned["vision_config"]["depth"] == {"small": 2, "medium": 4}[size]
