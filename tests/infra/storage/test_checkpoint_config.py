"""CheckpointConfig: defaults, validation messages naming the key, and loading from YAML."""

from __future__ import annotations

import pytest

from infra.config import load_config
from infra.errors import ConfigError
from infra.storage import CheckpointConfig


def test_defaults_follow_the_run_folder_and_an_unresolved_uri_cannot_open():
    from infra.errors import UserError

    config = CheckpointConfig()
    assert config.uri == "" and config.keep_last == 3 and config.export_hf
    with pytest.raises(UserError, match="resolve it to the run's folder"):
        config.open()


@pytest.mark.parametrize("override, key", [
    ("uri=ftp://host/x", "checkpoint.uri"),
    ("uri=s3://ab/x", "checkpoint.uri"),           # bucket names have at least 3 characters
    ("keep_last=-1", "checkpoint.keep_last"),
    ("every_n_steps=-5", "checkpoint.every_n_steps"),
    ("multipart_chunk_mb=4", "checkpoint.multipart_chunk_mb"),   # S3 parts are at least 5 MiB
    ("multipart_threshold_mb=0", "checkpoint.multipart_threshold_mb"),
    ("max_concurrency=0", "checkpoint.max_concurrency"),
])
def test_bad_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(CheckpointConfig, overrides=[override])


def test_yaml_and_overrides_reach_the_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("uri: s3://bucket/runs/a\nkeep_last: 5\n")
    config = load_config(CheckpointConfig, path, ["multipart_chunk_mb=32"])
    assert (config.uri, config.keep_last, config.multipart_chunk_mb) == ("s3://bucket/runs/a", 5, 32)


def test_open_on_a_local_uri_gives_a_working_store(tmp_path):
    store = CheckpointConfig(uri=f"file://{tmp_path}/ck", keep_last=1).open()
    src = tmp_path / "src"
    src.mkdir()
    (src / "w").write_bytes(b"x")
    assert store.save(1, src, {}) == f"{tmp_path}/ck/step-000001"
    assert (tmp_path / "ck" / "step-000001" / "w").read_bytes() == b"x"
