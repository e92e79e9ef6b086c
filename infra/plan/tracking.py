"""The plan of a training run, logged by its driver as MLflow params (`plan.*`) and a plan.yaml."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("stvg.plan")


def log_plan(tracker: Any, cfg: Any, model_dir: str) -> None:
    """Plan `cfg` with the prepared model's own config.json and tokenizer and log its summary.
    A plan is advice: any failure to make one is a warning, never the reason a run fails."""
    from infra.plan.plan import PlanOptions, make_plan
    from infra.plan.report import one_line, summary

    try:
        plan = make_plan(cfg, PlanOptions(model_config=str(Path(model_dir) / "config.json")))
    except Exception as err:  # noqa: BLE001
        log.warning("no plan logged for this run: %s", err)
        return
    tracker.log_config({"plan": summary(plan)}, artifact_name="plan.yaml")
    if not plan.fits:
        log.warning("stvg plan: %s", one_line(plan))
