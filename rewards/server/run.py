"""Starting the reward server: metrics directory, settings hand-off and uvicorn's worker supervisor."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

from infra.errors import UserError
from rewards.server.settings import SETTINGS_ENV, ServerSettings, load_token

log = logging.getLogger("rewards.server")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_metrics_dir() -> Path | None:
    """A fresh directory for prometheus_client's multiprocess files; returns it if we created it.

    It must exist before prometheus_client is first imported in any worker. A directory given by
    the operator is emptied of old *.db files (stale samples of an earlier run would be summed in).
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="stvg-reward-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    return created


def _check_can_listen(host: str, port: int) -> None:
    """A taken port or unknown host as one UserError line, not uvicorn's exit code 3 after startup."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(infos[0][4])
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err} (--host/--port)") from None


def _exit_on_sigterm(sig: int, frame: object) -> None:
    raise SystemExit(0)  # a graceful stop, as with several workers (uvicorn's supervisor exits 0)


def serve(settings: ServerSettings) -> None:
    """Run the server until SIGINT/SIGTERM. Blocks."""
    import uvicorn

    load_token(settings)  # fail here, once, with a clear message, rather than in every worker
    _check_can_listen(settings.host, settings.port)
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        log.warning("prometheus_client was imported before the metrics directory was set; "
                    "/metrics may only cover one worker")
    created = _prepare_metrics_dir()
    os.environ[SETTINGS_ENV] = settings.to_env()
    # uvicorn re-raises the SIGTERM that stopped it once it has shut down; with the default handler
    # that kills the process on the spot, skipping the clean-up below. Exit through Python instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    log.info("reward server on http://%s:%d: %d worker(s), auth %s, %s pool x%d", settings.host, settings.port,
             settings.workers, "on" if settings.auth_enabled else "off", settings.pool, settings.pool_size)
    try:
        uvicorn.run(
            "rewards.server.app:app_from_env",
            factory=True,
            http="rewards.server.protocol:NoDelayHTTPProtocol",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=settings.access_log,
            log_level=settings.log_level,
            # graceful shutdown lets in-flight batches finish, but never waits forever
            timeout_graceful_shutdown=30,
            timeout_keep_alive=30,
        )
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
