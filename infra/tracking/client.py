"""Resolve a tracking URI and connect to it, failing fast with a message that names the URI."""

from __future__ import annotations

import os
import shlex
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from infra.errors import UserError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_DIR = "mlruns"
DEFAULT_DB = "mlflow.db"


def resolve_tracking_uri(configured: str | None = "") -> str:
    """The tracking URI a run uses: `configured`, else $MLFLOW_TRACKING_URI, else the local default.

    The local default is an absolute 'sqlite:///<cwd>/mlruns/mlflow.db', and a relative sqlite
    path ('sqlite:///runs/mlflow.db') is made absolute against the current folder, both resolved
    now: call this in the driver and pass the result on (Ray workers run from other folders).
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI", "") or f"sqlite:///{DEFAULT_DIR}/{DEFAULT_DB}"
    db = sqlite_path(uri)
    if db is not None and not db.is_absolute():
        return f"sqlite:///{db.absolute()}"
    return uri


def describe_source(configured: str | None = "") -> str:
    """Where resolve_tracking_uri(configured) took its URI from, for messages."""
    if configured:
        return "as given"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "from MLFLOW_TRACKING_URI"
    return "the default local store of this folder; --tracking-uri or MLFLOW_TRACKING_URI name another"


UI_PORT = 5000


def ui_hint(uri: str) -> str:
    """How to look at the runs of `uri`: a server's own address, or for a local store the command
    that starts MLflow's UI on it with the `mlflow` of this Python environment (so it works as
    printed, without activating the virtualenv), with one worker process: the UI of one person's
    runs needs no more, and MLflow's default of four takes four times the start-up on a laptop."""
    if uri.startswith(("http://", "https://")):
        return uri
    script = Path(sys.executable).parent / "mlflow"  # not resolved: a venv's python is a symlink
    launcher = shlex.quote(str(script)) if script.is_file() else f"{shlex.quote(sys.executable)} -m mlflow"
    return f"{launcher} ui --backend-store-uri {shlex.quote(uri)} --port {UI_PORT} --workers 1"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a 'sqlite:///...' URI (None for other schemes)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def connect(uri: str, create: bool = True) -> MlflowClient | None:
    """An MlflowClient for `uri`, after checking the server answers (UserError naming it if not).

    With create=False a local sqlite store that does not exist yet gives None instead of
    creating an empty database (for read-only callers such as `stvg status`).
    """
    from mlflow import MlflowClient

    if uri.startswith(("http://", "https://")):
        _probe(uri)
    db = sqlite_path(uri)
    if db is not None:
        if not db.exists() and not create:
            return None
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the MLflow store {uri}: {err.strerror or err}") from None
    return MlflowClient(tracking_uri=uri)


def _probe(uri: str, timeout: float = 10.0) -> None:
    """GET <uri>/health: any HTTP answer means a server is there; no answer is a UserError."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # a proxy or auth layer answered: the MLflow calls will say more
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"cannot reach the MLflow tracking server at {uri}: {reason}; "
                        "check tracking.tracking_uri / MLFLOW_TRACKING_URI and that the server is up") from None
