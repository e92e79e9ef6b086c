"""Experiment-tracking settings of a run (the `tracking:` section of a run config)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import check_range
from infra.errors import ConfigError


@dataclass
class TrackingConfig:
    """Where and what a run logs to MLflow. Only rank 0 of the learner logs."""

    tracking_uri: str = ""
    """MLflow tracking URI: 'http(s)://host:port' of an `mlflow server`, 'sqlite:///path.db', or
    '' = the MLFLOW_TRACKING_URI environment variable if set, else an offline local store
    'sqlite:///<cwd>/mlruns/mlflow.db' with artifacts under ./mlruns/artifacts."""

    experiment: str = "stvg"
    """MLflow experiment name; created on first use."""

    run_name: str = ""
    """Display name of the run; '' lets MLflow pick one. Ignored when resuming a run id."""

    log_images_every_n_steps: int = 50
    """Log rollout pictures at the first and the last step and every this many steps in between
    (Tracker.wants_images); 0 never."""

    num_images: int = 4
    """How many rollouts to draw each time pictures are logged."""

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, str) or not self.experiment.strip():
            raise ConfigError("tracking.experiment must be a non-empty experiment name")
        if self.tracking_uri and "://" not in self.tracking_uri and not self.tracking_uri.startswith("databricks"):
            raise ConfigError(f"tracking.tracking_uri={self.tracking_uri!r} needs a scheme: "
                              "http(s)://host:port, sqlite:///path.db, file:///dir, or '' for the default")
        check_range("tracking.log_images_every_n_steps", self.log_images_every_n_steps, 0)
        check_range("tracking.num_images", self.num_images, 0, 64)

    def images_due(self, step: int, total_steps: int | None = None) -> bool:
        """True on the steps (1-based, as logged) where rollout pictures are logged: the first, every
        log_images_every_n_steps-th, and the last (`total_steps`, when given), so that a short run
        shows its policy at the start and at the end too."""
        every = self.log_images_every_n_steps
        return every > 0 and self.num_images > 0 and (step % every == 0 or step == 1 or step == total_steps)
