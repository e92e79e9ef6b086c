"""What `stvg status` shows: the runs in a tracking store, newest first, with their progress."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from infra.errors import UserError
from infra.tracking.client import connect, resolve_tracking_uri
from infra.tracking.names import PROGRESS_STEP, REWARD_MEAN

CHECKPOINT_TAG = "checkpoint_uri"  # set by the training loop after each checkpoint save


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    run_name: str
    status: str
    """RUNNING, FINISHED, FAILED, KILLED or SCHEDULED (MLflow's run status)."""
    step: int | None
    """Last step logged ('progress/step'), None if the run logged no metrics through Tracker."""
    last_reward: float | None
    """Latest value of 'reward/mean'."""
    checkpoint_uri: str | None
    """Tag 'checkpoint_uri': the newest checkpoint the run saved."""
    start_time: _dt.datetime | None
    """UTC start time."""


def list_runs(tracking_uri: str | None = None, experiment: str | None = None,
              max_results: int = 200) -> list[RunSummary]:
    """Runs of `experiment` (every experiment when None) at `tracking_uri`, newest first.

    tracking_uri None or '' resolves as for training ($MLFLOW_TRACKING_URI, else the local
    ./mlruns store). A local store that does not exist yet has no runs. An unknown experiment
    or an unreachable server is a UserError naming it.
    """
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    client = connect(uri, create=False)
    if client is None:
        return []
    try:
        if experiment is None:
            experiment_ids = [e.experiment_id for e in client.search_experiments()]
        else:
            found = client.get_experiment_by_name(experiment)
            if found is None:
                names = sorted(e.name for e in client.search_experiments())
                raise UserError(f"MLflow experiment {experiment!r} not found at {uri}; "
                                f"existing: {', '.join(names[:20]) or 'none'}")
            experiment_ids = [found.experiment_id]
        if not experiment_ids:
            return []
        runs = client.search_runs(experiment_ids, order_by=["attributes.start_time DESC"],
                                  max_results=max_results)
    except MlflowException as err:
        raise UserError(f"cannot list runs at {uri}: {str(err).splitlines()[0]}") from None
    return [_summary(run) for run in runs]


def _summary(run) -> RunSummary:
    metrics, tags = run.data.metrics, run.data.tags
    step = metrics.get(PROGRESS_STEP)
    start = run.info.start_time
    return RunSummary(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        status=run.info.status,
        step=None if step is None else int(step),
        last_reward=metrics.get(REWARD_MEAN),
        checkpoint_uri=tags.get(CHECKPOINT_TAG),
        start_time=None if start is None else _dt.datetime.fromtimestamp(start / 1000, tz=_dt.timezone.utc),
    )
