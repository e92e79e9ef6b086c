"""Runaway completions (longer than MAX_COMPLETION_CHARS) score 0 with `runaway` set, never fail a
batch, and score the same in-process and through a real reward server; a batch over the server's
body limit is split by the client instead of failing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reward_items import items  # noqa: E402
from _reward_servers import metric_value, reward_server  # noqa: E402

import httpx  # noqa: E402

from rewards import TASKS, score_batch  # noqa: E402
from rewards.client import RewardClientConfig, RewardRequestError, build_reward_client  # noqa: E402
from rewards.parsing import MAX_COMPLETION_CHARS  # noqa: E402

BODY_LIMIT = 1_000_000


def padded(text: str, length: int) -> str:
    """`text` followed by whitespace up to `length` characters: trailing whitespace is allowed by
    every format, so only the length decides whether it parses."""
    return text + " " * (length - len(text))


@pytest.mark.parametrize("task", TASKS)
def test_a_completion_one_character_over_the_limit_scores_zero_and_says_runaway(task):
    [good], [target] = items(task, 1, malformed_every=0)
    at_limit, over = padded(good, MAX_COMPLETION_CHARS), padded(good, MAX_COMPLETION_CHARS + 1)
    kept, runaway = score_batch(task, [at_limit, over], [target, target])
    assert kept.parsed and not kept.runaway and kept.total > 0
    assert kept.total == score_batch(task, [good], [target])[0].total
    assert (runaway.parsed, runaway.runaway, runaway.total) == (False, True, 0.0)
    assert set(runaway.terms.values()) == {0.0}


def test_runaway_completions_score_the_same_in_process_and_over_http():
    completions, targets = items("stvg-o1", 8, malformed_every=0)
    # Two non-ASCII runaways (JSON-escaped to 6 bytes a character: ~600 kB each as sent), one ASCII
    # runaway of 2 MB (sent cut to MAX_COMPLETION_CHARS + 1 characters), one ASCII runaway that is a
    # valid answer plus padding. Together the batch is over the server's 1 MB body limit.
    completions[1] = "é" * (MAX_COMPLETION_CHARS + 10)
    completions[3] = "x" * 2_000_000
    completions[5] = "<time>" + "✓" * MAX_COMPLETION_CHARS
    completions[6] = padded(completions[6], MAX_COMPLETION_CHARS + 1)
    local = build_reward_client(RewardClientConfig(mode="local"))
    expected = local.score("stvg-o1", completions, targets)
    assert [r.runaway for r in expected] == [False, True, False, True, False, True, True, False]
    assert all(r.total == 0.0 for r in expected if r.runaway)
    assert all(r.total > 0.0 for r in expected if not r.runaway)

    with reward_server("--max-body-bytes", str(BODY_LIMIT)) as server:
        before = httpx.get(f"{server.url}/metrics").text
        remote = build_reward_client(RewardClientConfig(mode="http", urls=[server.url], batch_size=8, token_env=""))
        try:
            results = remote.score("stvg-o1", completions, targets)
            after = httpx.get(f"{server.url}/metrics").text
            # one item too large on its own (a target of 40,000 GT boxes, ~1.2 MB) cannot be split further
            huge = {**targets[0], "boxes": [[float(t), 1.0, 2.0, 3.0, 4.0] for t in range(40_000)]}
            with pytest.raises(RewardRequestError, match=r"HTTP 413.*a single item is over the server's limit"):
                remote.score("stvg-o1", completions[:1], [huge])
        finally:
            remote.close()

    assert [(r.total, r.terms, r.parsed, r.runaway) for r in results] == \
        [(r.total, r.terms, r.parsed, r.runaway) for r in expected]

    def requests(status: str) -> float:
        return (metric_value(after, "stvg_reward_requests_total", endpoint="/v1/score", status=status)
                - metric_value(before, "stvg_reward_requests_total", endpoint="/v1/score", status=status))

    # the whole batch was refused once (413), then scored in two halves that each fit
    assert (requests("413"), requests("200")) == (1, 2)
    assert metric_value(after, "stvg_reward_runaway_completions_total", task="stvg-o1") == 4
