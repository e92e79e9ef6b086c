"""local_folder: an s3:// folder copied into a node's cache once, atomically, checked, and fetched
anew when its objects change (moto's S3 server on 127.0.0.1)."""

from __future__ import annotations

import multiprocessing
import os
import re

import boto3
import pytest

from infra.errors import UserError
from infra.storage import folders
from infra.storage.folders import folder_fingerprint, local_folder

FILES = {"config.json": b'{"a": 1}', "model-00001-of-00002.safetensors": b"W" * 3000,
         "model-00002-of-00002.safetensors": b"V" * 2000, "processor/tokenizer.json": b"{}"}


def _upload(bucket: str, prefix: str, files: dict[str, bytes]) -> str:
    s3 = boto3.client("s3")
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)
    return f"s3://{bucket}/{prefix}"


def _files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def test_an_s3_folder_is_copied_whole_once_and_reused(bucket, tmp_path):
    uri = _upload(bucket, "models/m", FILES)
    _upload(bucket, "models/m-other", {"config.json": b"not me"})  # a sibling sharing the prefix's letters
    first = local_folder(uri, tmp_path / "cache")
    assert _files(first) == FILES
    (first / "touched").write_text("x")
    assert local_folder(uri, tmp_path / "cache") == first and (first / "touched").exists()


def test_an_object_rewritten_at_the_same_size_is_fetched_anew(bucket, tmp_path):
    uri = _upload(bucket, "models/m", FILES)
    old = local_folder(uri, tmp_path / "cache")
    _upload(bucket, "models/m", {"model-00001-of-00002.safetensors": b"X" * 3000})  # same size, new weights
    new = local_folder(uri, tmp_path / "cache")
    assert new != old
    assert (new / "model-00001-of-00002.safetensors").read_bytes() == b"X" * 3000


def test_a_folder_changed_since_the_driver_listed_it_is_refused(bucket, tmp_path):
    uri = _upload(bucket, "models/m", FILES)
    pinned = folder_fingerprint(uri)
    _upload(bucket, "models/m", {"extra.bin": b"1"})
    with pytest.raises(UserError, match="changed after the run started"):
        local_folder(uri, tmp_path / "cache", fingerprint=pinned)


def test_an_empty_prefix_and_a_missing_local_folder_are_user_errors(bucket, tmp_path):
    with pytest.raises(UserError, match="holds no files"):
        local_folder(f"s3://{bucket}/nothing", tmp_path / "cache")
    with pytest.raises(UserError, match="not a folder on this node.*cluster.shared_paths"):
        local_folder(str(tmp_path / "absent"), tmp_path / "cache")


def test_large_downloads_print_progress_lines(bucket, tmp_path, monkeypatch, capsys):
    uri = _upload(bucket, "models/m", FILES)
    monkeypatch.setattr(folders, "PROGRESS_MIN_BYTES", 1000)
    local_folder(uri, tmp_path / "cache")
    total = sum(len(b) for b in FILES.values())
    assert re.search(rf"fetching {uri}: .* MiB \(100%\), .* MiB/s", capsys.readouterr().out)  # the final line
    monkeypatch.setattr(folders, "PROGRESS_MIN_BYTES", total + 1)
    local_folder(_upload(bucket, "models/small", FILES), tmp_path / "cache")
    assert "fetching" not in capsys.readouterr().out


def _fetch_in_process(uri, cache, env):
    os.environ.update(env)
    from infra.storage.folders import local_folder as fetch_folder

    calls = []
    import infra.storage.objects as objects

    real = objects.open_store

    def counting(*args, **kwargs):  # count how many processes really download
        store = real(*args, **kwargs)
        original = store.get_files

        def get_files(items, progress=None):
            calls.append(len(items))
            return original(items, progress)

        store.get_files = get_files
        return store

    import infra.storage.folders as folders_module

    folders_module.open_store = counting
    folder = fetch_folder(uri, cache)
    return str(folder), len(calls)


def test_processes_of_one_node_asking_at_once_download_once(bucket, tmp_path):
    uri = _upload(bucket, "models/m", FILES)
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_fetch_in_process, [(uri, tmp_path / "cache", env)] * 3)
    assert len({folder for folder, _ in results}) == 1
    assert sum(downloads for _, downloads in results) == 1


def test_stvg_upload_puts_a_folder_under_a_prefix_that_nodes_then_fetch_whole(bucket, tmp_path, capsys):
    from infra.cli import main

    folder = tmp_path / "model"
    for name, body in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    uri = f"s3://{bucket}/models/mine"
    assert main(["upload", str(folder), uri, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"uploaded Hugging Face model folder {folder} to {uri}" in out and f"model.path={uri}" in out
    assert _files(local_folder(uri, tmp_path / "cache")) == FILES

    # a second upload to the same prefix is refused (runs pin what they listed) unless --replace
    assert main(["upload", str(folder), uri, "--quiet"]) == 2
    assert "already holds 4 objects" in capsys.readouterr().err
    (folder / "processor" / "tokenizer.json").unlink()
    assert main(["upload", str(folder), uri, "--quiet", "--replace"]) == 0
    assert boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="models/mine/")["KeyCount"] == 3  # stale one deleted
