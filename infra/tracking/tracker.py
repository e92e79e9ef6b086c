"""One MLflow run of a training job: config, metrics by step, pictures, artifacts, tags, status.

Only rank 0 of the learner may create a Tracker and log; the caller guarantees it (the other
ranks simply never construct one). A resumed job passes the run id it stored in its checkpoint
metadata to `Tracker.start(..., run_id=...)` and keeps appending to the same run.

Failing to reach the tracking store at start is a UserError naming the URI. After that,
logging is best effort: an error while logging is a warning, never the end of a training run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from infra.errors import UserError
from infra.tracking.client import connect, resolve_tracking_uri, sqlite_path
from infra.tracking.config import TrackingConfig
from infra.tracking.names import (
    MAX_PARAM_VALUE,
    PROGRESS_STEP,
    flat_params,
    metric_name,
    tag_value,
)

log = logging.getLogger(__name__)

STATUSES = ("FINISHED", "FAILED", "KILLED")
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # the tag MLflow's UI shows as the source version
_BATCH_PARAMS, _BATCH_METRICS = 100, 1000  # MLflow's per-request limits


class Tracker:
    """Logs one run. Build it with `Tracker.start`; use it as a context manager or call `close`."""

    def __init__(self, client: Any, run_id: str, tracking_uri: str, config: TrackingConfig, resumed: bool):
        self.client = client
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.config = config
        self.resumed = resumed
        self._closed = False

    @classmethod
    def start(cls, config: TrackingConfig, run_id: str | None = None,
              tags: Mapping[str, Any] | None = None) -> Tracker:
        """Start a new run in `config.experiment`, or resume `run_id` (status back to RUNNING).

        Tags set on every start: the git commit of the code (env STVG_GIT_COMMIT, else `git`)
        when known, plus `tags` (e.g. {"dataset": "hcstvg-v1"}).
        """
        from mlflow.exceptions import MlflowException

        uri = resolve_tracking_uri(config.tracking_uri)
        client = connect(uri)
        try:
            if run_id:
                try:
                    run = client.get_run(run_id)
                except MlflowException as err:
                    raise UserError(f"cannot resume MLflow run {run_id!r} at {uri}: {_first_line(err)}") from None
                client.update_run(run_id, status="RUNNING")
                tracker = cls(client, run_id, uri, config, resumed=True)
                log.info("resumed MLflow run %s (%s) at %s", run_id, run.info.run_name, uri)
            else:
                experiment_id = _experiment_id(client, config.experiment, uri)
                run = client.create_run(experiment_id, run_name=config.run_name or None)
                tracker = cls(client, run.info.run_id, uri, config, resumed=False)
                log.info("started MLflow run %s (%s) at %s", run.info.run_id, run.info.run_name, uri)
            start_tags = dict(tags or {})
            commit = git_commit()
            if commit:
                start_tags.setdefault(GIT_COMMIT_TAG, commit)
            if start_tags:
                from mlflow.entities import RunTag

                client.log_batch(tracker.run_id, tags=[RunTag(metric_name(k), tag_value(v))
                                                      for k, v in start_tags.items()])
        except MlflowException as err:
            raise UserError(f"MLflow tracking store {uri} refused the run: {_first_line(err)}") from None
        except OSError as err:
            raise UserError(f"cannot use the MLflow tracking store {uri}: {err}") from None
        return tracker

    # --- logging ----------------------------------------------------------------------------

    def log_config(self, config: Any, artifact_name: str = "config.yaml") -> None:
        """Log a resolved config (dataclass, dict or OmegaConf) as dotted params and as a YAML artifact.

        Params are immutable in MLflow: on a resumed run, params already logged are kept, and
        changed values are only reported in a warning; the YAML of the resumed job is saved
        beside the first one as 'config.resumed-<UTC time>.yaml'.
        """
        import yaml
        from mlflow.entities import Param

        data = _plain(_as_dict(config))
        params = flat_params(data)
        if self.resumed:
            existing = self._call("read params", lambda: self.client.get_run(self.run_id).data.params) or {}
            changed = sorted(k for k, v in params.items() if k in existing and existing[k] != v)
            if changed:
                log.warning("resumed run %s: config changed for %s (MLflow keeps the first values; "
                            "see the resumed YAML artifact)", self.run_id, ", ".join(changed[:20]))
            params = {k: v for k, v in params.items() if k not in existing}
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            artifact_name = f"{Path(artifact_name).stem}.resumed-{stamp}.yaml"
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), _BATCH_PARAMS):
            batch = items[start:start + _BATCH_PARAMS]
            self._call("log params", lambda b=batch: self.client.log_batch(self.run_id, params=b))
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        self._call("log config artifact", lambda: self.client.log_text(self.run_id, text, artifact_name))

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log numbers at `step` (plus 'progress/step' = step). Names are made MLflow-safe.

        Values may be Python or numpy numbers or 0-d tensors; None values are skipped.
        A non-numeric value is a TypeError naming its key.
        """
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = {PROGRESS_STEP: float(step)}
        for key, value in metrics.items():
            if value is None:
                continue
            values[metric_name(key)] = _number(key, value)
        items = [Metric(k, v, now, int(step)) for k, v in values.items()]
        for start in range(0, len(items), _BATCH_METRICS):
            batch = items[start:start + _BATCH_METRICS]
            self._call("log metrics", lambda b=batch: self.client.log_batch(self.run_id, metrics=b))

    def log_image(self, image: Any, step: int, key: str = "rollouts", suffix: str = "") -> str:
        """Save a PIL image or numpy array (HxW, HxWx3/4; uint8, or float in [0, 1]) as
        '<key>/step-000010[-suffix].png' in the run's artifacts; return that artifact path."""
        picture = _to_pil(image)
        name = f"step-{int(step):06d}{'-' + _safe_file(suffix) if suffix else ''}.png"
        directory = "/".join(metric_name(p) for p in key.split("/") if p) or "images"
        with tempfile.TemporaryDirectory(prefix="stvg-image-") as tmp:
            path = Path(tmp, name)
            picture.save(path, format="PNG")
            self._call("log image", lambda: self.client.log_artifact(self.run_id, str(path), directory))
        return f"{directory}/{name}"

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a local file or directory into the run's artifacts (under `artifact_path`)."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"artifact {str(path)!r} does not exist")
        if path.is_dir():
            self._call("log artifacts", lambda: self.client.log_artifacts(self.run_id, str(path), artifact_path))
        else:
            self._call("log artifact", lambda: self.client.log_artifact(self.run_id, str(path), artifact_path))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags, e.g. {'checkpoint_uri': 's3://.../step-000120', 'dataset': 'hcstvg-v1'}."""
        from mlflow.entities import RunTag

        items = [RunTag(metric_name(k), tag_value(v)) for k, v in tags.items()]
        for start in range(0, len(items), _BATCH_PARAMS):
            batch = items[start:start + _BATCH_PARAMS]
            self._call("set tags", lambda b=batch: self.client.log_batch(self.run_id, tags=b))

    def wants_images(self, step: int, total_steps: int | None = None) -> bool:
        """True on the steps where pictures should be logged (TrackingConfig.images_due)."""
        return self.config.images_due(step, total_steps)

    def close(self, status: str = "FINISHED") -> None:
        """End the run with FINISHED, FAILED or KILLED. Closing twice is a no-op."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r} must be one of {', '.join(STATUSES)}")
        if self._closed:
            return
        self._closed = True
        self._call("end run", lambda: self.client.set_terminated(self.run_id, status))

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close("FINISHED")
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            self.close("KILLED")
        else:
            self.close("FAILED")

    def _call(self, what: str, fn):
        """Run one MLflow call; after start, a failure is logged, not raised (best effort)."""
        try:
            return fn()
        except Exception as err:  # MlflowException, requests/OSError: never stop training for a log line
            log.warning("MLflow %s failed for run %s at %s: %s", what, self.run_id, self.tracking_uri,
                        _first_line(err))
            return None


def git_commit() -> str | None:
    """The commit of the running code: $STVG_GIT_COMMIT (set in images), else `git rev-parse HEAD`."""
    env = os.environ.get("STVG_GIT_COMMIT", "").strip()
    if env:
        return env
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def _experiment_id(client: Any, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise UserError(f"MLflow experiment {name!r} at {uri} is deleted; restore it "
                            "(mlflow experiments restore) or choose another tracking.experiment")
        return experiment.experiment_id
    location = None
    db = sqlite_path(uri)
    if db is not None:  # keep a local store's artifacts next to its database, not in the cwd
        location = (db.absolute().parent / "artifacts" / _safe_file(name)).as_uri()
    return client.create_experiment(name, artifact_location=location)


def _as_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return OmegaConf.to_container(config, resolve=True)
    except ImportError:
        pass
    raise TypeError(f"cannot log a config of type {type(config).__name__}; pass a dataclass or a dict")


def _plain(value: Any) -> Any:
    """Only YAML-safe types: dict/list/str/int/float/bool/None; anything else becomes str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            return _plain(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)[:MAX_PARAM_VALUE]


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar or 0-d tensor
        value = value.item()
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"metric {key!r} has non-numeric value {value!r} of type {type(value).__name__}")


def _to_pil(image: Any):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    import numpy as np

    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image array must be HxW or HxWx(1|3|4), got shape {array.shape}")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array)


def _safe_file(text: str) -> str:
    return re.sub(r"[^\w.\-]", "_", text, flags=re.ASCII) or "_"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
