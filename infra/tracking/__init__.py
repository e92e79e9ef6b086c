"""Experiment tracking in MLflow (see docs/tracking.md).

    with Tracker.start(config.tracking, run_id=resumed_id, tags={"dataset": "hcstvg-v1"}) as tracker:
        tracker.log_config(config)                        # dotted params + config.yaml
        tracker.log_metrics({"reward/mean": 1.2}, step)   # names per infra.tracking.names
        tracker.log_image(strip, step)                    # rollouts/step-000010.png

Only rank 0 logs. mlflow is imported when a Tracker starts or runs are listed.
"""

from infra.tracking.client import describe_source, resolve_tracking_uri, ui_hint
from infra.tracking.config import TrackingConfig
from infra.tracking.names import metric_name
from infra.tracking.runs import CHECKPOINT_TAG, RunSummary, list_runs
from infra.tracking.tracker import Tracker, git_commit

__all__ = [
    "CHECKPOINT_TAG",
    "RunSummary",
    "describe_source",
    "Tracker",
    "TrackingConfig",
    "git_commit",
    "list_runs",
    "metric_name",
    "resolve_tracking_uri",
    "ui_hint",
]
