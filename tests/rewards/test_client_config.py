"""RewardClientConfig validation and the in-process (local) scorer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reward_items import items  # noqa: E402

from infra.config import load_config  # noqa: E402
from infra.errors import ConfigError, UserError  # noqa: E402
from rewards import score_batch  # noqa: E402
from rewards.client import HttpRewardScorer, LocalRewardScorer, RewardClientConfig, build_reward_client  # noqa: E402


def test_default_config_scores_locally():
    scorer = build_reward_client(RewardClientConfig())
    assert isinstance(scorer, LocalRewardScorer)
    completions, targets = items("stvg-o1", 7)
    results = scorer.score("stvg-o1", completions, targets)
    assert [(r.total, r.terms, r.parsed) for r in results] == \
        [(r.total, r.terms, r.parsed) for r in score_batch("stvg-o1", completions, targets)]


def test_auto_mode_uses_the_deployed_reward_servers_named_by_the_environment(monkeypatch):
    from rewards.client import resolve_reward_mode

    monkeypatch.setenv("STVG_REWARD_URL", "http://rewards-a.ns.svc:8000, http://rewards-b.ns.svc:8000")
    resolved = resolve_reward_mode(RewardClientConfig())
    assert (resolved.mode, resolved.urls) == ("http", ["http://rewards-a.ns.svc:8000", "http://rewards-b.ns.svc:8000"])
    monkeypatch.setenv("STVG_REWARD_URL", "")
    assert resolve_reward_mode(RewardClientConfig()).mode == "local"
    monkeypatch.setenv("STVG_REWARD_URL", "http://a:8000")
    explicit = resolve_reward_mode(RewardClientConfig(mode="local"))
    assert explicit.mode == "local", "an explicit mode is never overridden by the environment"


def test_a_malformed_reward_url_in_the_environment_is_a_config_error_naming_it(monkeypatch):
    from rewards.client import resolve_reward_mode

    monkeypatch.setenv("STVG_REWARD_URL", "rewards:8000")
    with pytest.raises(ConfigError, match=r"\$STVG_REWARD_URL='rewards:8000'.*must start with http://"):
        resolve_reward_mode(RewardClientConfig())


def test_local_scorer_applies_configured_weights():
    # VTG total = w_tiou * tIoU + w_format * format; exact span [2, 4] -> tIoU 1, format 1.
    scorer = build_reward_client(RewardClientConfig(weights={"tiou": 3.0, "format": 0.5}))
    [result] = scorer.score("vtg", ["<think>a</think><answer>2 to 4</answer>"], [{"t_start": 2.0, "t_end": 4.0}])
    assert result.total == pytest.approx(3.5)


def test_local_scorer_applies_the_configured_spatial_span():
    # GT 2..3, the answer's span 6..7 misses it: the paper's rule scores 2 (format + consistency),
    # over the GT span each list loses 2 per GT index: 2 - 2 * 2 = -2.
    box = "[0, 0, 10, 10]"
    text = f"<time> 6 - 7 </time> <think_bbox> 6. {box}, 7. {box} </think_bbox> <pred_bbox> 6. {box}, 7. {box} </pred_bbox>"
    target = {"t_start": 2, "t_end": 3, "boxes": [[2, 0, 0, 10, 10], [3, 0, 0, 10, 10]], "width": 100, "height": 100}
    totals = [build_reward_client(RewardClientConfig(spatial_span=span)).score("stvg-o1", [text], [target])[0].total
              for span in ("intersection", "ground_truth")]
    assert totals == [pytest.approx(2.0), pytest.approx(-2.0)]


def test_http_mode_without_urls_is_a_config_error():
    with pytest.raises(ConfigError, match=r"reward.mode=http needs reward.urls"):
        RewardClientConfig(mode="http")


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "remote"}, r"reward.mode='remote' is not allowed; choose one of: auto, local, http"),
    ({"mode": "http", "urls": ["rewards:8000"]}, r"must start with http:// or https://"),
    ({"batch_size": 0}, r"reward.batch_size=0 is out of range"),
    ({"timeout_s": 0.0}, r"reward.timeout_s=0.0 is out of range"),
    ({"max_retries": -1}, r"reward.max_retries=-1"),
    ({"deadline_s": 0.0}, r"reward.deadline_s=0.0"),
    ({"circuit_failures": 0}, r"reward.circuit_failures=0"),
    ({"weights": {"tiou": float("nan")}}, r"reward.weights.tiou=nan must be a finite number"),
    ({"spatial_span": "union"}, r"reward.spatial_span='union' is not allowed; choose one of: intersection, ground_truth"),
])
def test_bad_values_are_refused_naming_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RewardClientConfig(**kwargs)


def test_config_loads_from_overrides_with_lists_and_dicts():
    cfg = load_config(RewardClientConfig, overrides=["mode=http", "urls=[http://a:1,http://b:2]",
                                                     "weights.think=0.25", "batch_size=8"])
    assert cfg.urls == ["http://a:1", "http://b:2"] and cfg.weights == {"think": 0.25} and cfg.batch_size == 8
    scorer = build_reward_client(cfg)
    try:
        assert isinstance(scorer, HttpRewardScorer)  # explicit: never silently local
    finally:
        scorer.close()


def test_mismatched_lengths_and_unknown_task_are_user_errors():
    scorer = build_reward_client(RewardClientConfig())
    with pytest.raises(UserError, match="2 completions but 1 targets"):
        scorer.score("vtg", ["a", "b"], [{"t_start": 1.0, "t_end": 2.0}])
    with pytest.raises(UserError, match="unknown reward task 'grounding'"):
        scorer.score("grounding", [], [])
