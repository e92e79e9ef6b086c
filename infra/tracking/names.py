"""Metric names used across the project, and the rules that make any name valid for MLflow.

MLflow accepts names made of letters, digits, `_ - . / : space`, at most 250 characters, that stay
the same under path normalisation (no leading '/', no '//', no '.' or '..' segments). `metric_name`
maps anything else onto that set (e.g. 'eval/vIoU@0.3' -> 'eval/vIoU_0.3'), the same way every
time, so a chart keeps one name across runs. The full convention is in docs/tracking.md.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

MAX_KEY = 250  # MLflow's limit on metric, param and tag keys
MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value
MAX_TAG_VALUE = 8000  # MLflow's limit on a tag value

# Names other modules look up. The whole list of what runs log is the table in docs/tracking.md,
# which the end-to-end tests check against every name their real runs log (tests/e2e/_logged_names.py).
REWARD_MEAN = "reward/mean"
DATA = "data/{name}"  # data pipeline figures, e.g. data/samples_stale, data/curation/hard
PROGRESS_STEP = "progress/step"  # logged by Tracker.log_metrics at every call: the step reached

_BAD_CHARS = re.compile(r"[^\w\-./: ]", re.ASCII)


def metric_name(name: str) -> str:
    """A valid MLflow metric/param/tag key for `name` (see the module docstring)."""
    cleaned = _BAD_CHARS.sub("_", str(name))
    parts = []
    for part in cleaned.split("/"):
        if part in ("", "."):
            continue
        parts.append("__" if part == ".." else part)
    return ("/".join(parts) or "_")[:MAX_KEY].rstrip("/")


def param_value(value: Any) -> str:
    """A param value as MLflow stores it: text, lists/dicts as JSON, cut to MLflow's limit."""
    if isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return _truncate(text, MAX_PARAM_VALUE)


def tag_value(value: Any) -> str:
    return _truncate(str(value), MAX_TAG_VALUE)


def flat_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{'grpo': {'group_size': 8}} -> {'grpo.group_size': '8'}: dotted keys, MLflow-safe values."""
    out: dict[str, str] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, dotted + "."))
        else:
            out[metric_name(dotted)] = param_value(value)
    return out


def _truncate(text: str, limit: int) -> str:
    marker = "...[truncated]"
    return text if len(text) <= limit else text[:limit - len(marker)] + marker
