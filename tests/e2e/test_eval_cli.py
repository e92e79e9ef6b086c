"""`stvg eval` writes predictions that `stvg score` scores to the same numbers it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_eval_writes_scorable_predictions_and_matching_metrics(tmp_path, e2e_cache):
    out = tmp_path / "eval"
    run = subprocess.run([sys.executable, "-m", "infra.cli", "eval", "--quiet", "--out", str(out),
                          f"model.cache_dir={e2e_cache}", "task=stvg-o1", "data.synthetic_train_videos=6",
                          "data.synthetic_heldout_videos=2", "eval.max_samples=2", "rollout.max_new_tokens=24"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    completions = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert metrics["samples"] == 2 and len(completions) == 2
    assert {"id", "completion", "reward", "format", "temporal", "spatial"} <= set(completions[0])

    # Score the written predictions independently, against the held-out annotation file itself.
    heldout = next(Path(e2e_cache, "videos", "synthetic").glob("videos2-seed1001-*")) / "annotations.json"
    scored = tmp_path / "scored.json"
    score = subprocess.run([sys.executable, "-m", "infra.cli", "score", "--format", "hcstvg-v2", "--annotations",
                            str(heldout), "--predictions", str(out / "predictions.jsonl"), "--out", str(scored)],
                           capture_output=True, text=True, timeout=120)
    assert score.returncode == 0, score.stderr
    assert json.loads(scored.read_text())["aggregates"]["all"] == metrics["aggregates"]["all"]
