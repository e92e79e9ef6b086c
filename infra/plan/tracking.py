"""The plan of a training run, logged by its driver as MLflow params (`plan.*`) and a plan.yaml."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("stvg.plan")


def log_plan(tracker: Any, cfg: Any) -> None:
    """Plan `cfg` as `stvg plan` does (the model's config.json read where model.path points) and log
    its summary. A plan is advice: any failure to make one is a warning, never the reason a run fails."""
    from infra.plan.plan import make_plan
    from infra.plan.report import one_line, summary

    try:
        plan = make_plan(cfg)
    except Exception as err:  # noqa: BLE001
        log.warning("no plan logged for this run: %s", err)
        return
    tracker.log_config({"plan": summary(plan)}, artifact_name="plan.yaml")
    if not plan.fits:
        log.warning("stvg plan: %s", one_line(plan))
