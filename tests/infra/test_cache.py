"""build_once: a folder is built once, atomically, and a failed build leaves nothing behind."""

import pytest

from infra.cache import build_once


def test_builds_once_then_reuses(tmp_path):
    calls = []

    def build(staging):
        calls.append(staging)
        (staging / "done.txt").write_text("ok")

    final = tmp_path / "artefact"
    assert build_once(final, "done.txt", build) == final
    assert build_once(final, "done.txt", build) == final
    assert len(calls) == 1 and (final / "done.txt").read_text() == "ok"
    left = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    assert left == ["artefact"]  # no staging folder left


def test_a_failed_build_leaves_no_folder_a_later_run_could_take_for_finished(tmp_path):
    def broken(staging):
        (staging / "half.bin").write_text("partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        build_once(tmp_path / "artefact", "done.txt", broken)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_debris_without_the_marker_is_replaced(tmp_path):
    final = tmp_path / "artefact"
    final.mkdir()
    (final / "stale.bin").write_text("old")
    build_once(final, "done.txt", lambda staging: (staging / "done.txt").write_text("new"))
    assert sorted(p.name for p in final.iterdir()) == ["done.txt"]


def _build_slowly(final, log):
    import time

    def build(staging):
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(1.0)  # long enough for every other process to be waiting on the lock
        (staging / "done.txt").write_text("ok")

    build_once(final, "done.txt", build)
    return (final / "done.txt").read_text()


def test_processes_asking_at_once_build_once_and_all_get_the_finished_folder(tmp_path):
    import multiprocessing

    final, log = tmp_path / "artefact", tmp_path / "builds.log"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(_build_slowly, [(final, log)] * 3)
    assert results == ["ok"] * 3
    assert log.read_text().count("built") == 1  # one builder per node; the others waited and reused it
