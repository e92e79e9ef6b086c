"""Settings of the reward server, shared by the CLI, the uvicorn supervisor and every worker.

Worker processes are spawned by uvicorn, so the settings travel to them as JSON in one environment
variable. The bearer token never does: each worker reads it itself from the named environment
variable or file, so it is not copied into any config, argument list or log line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from infra.config import check_choice, check_range
from infra.errors import ConfigError

SETTINGS_ENV = "STVG_REWARD_SERVER_SETTINGS"


@dataclass
class ServerSettings:
    """How `stvg serve-rewards` listens, what it accepts and how it scores."""

    host: str = "127.0.0.1"
    """Interface to bind; use 0.0.0.0 inside a container."""
    port: int = 8000
    """TCP port to bind (0 is not allowed: clients must know it)."""
    workers: int = 1
    """uvicorn worker processes sharing the port; one per core is the usual choice."""
    max_items: int = 1024
    """Most items (completions) one request may carry; more is answered 413."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body in bytes, enforced while reading; larger is answered 413. This is the
    only size limit: a runaway completion inside a body that fits is scored (0, flagged runaway)."""
    token_env: str = ""
    """Name of an environment variable holding the bearer token ("" = no auth unless token_file)."""
    token_file: str = ""
    """Path of a file holding the bearer token, e.g. a mounted Kubernetes Secret ("" = unused)."""
    drain_s: float = 0.0
    """On SIGTERM, keep serving this long with /readyz answering 503 before shutting down."""
    body_timeout_s: float = 30.0
    """A request body that has not fully arrived after this many seconds is answered 408."""
    pool: str = "thread"
    """Where scoring runs off the event loop: "thread" (default, measured faster) or "process"."""
    pool_size: int = 1
    """Threads or processes in each worker's scoring pool."""
    access_log: bool = False
    """Log one line per request (off by default: /metrics counts requests)."""
    log_level: str = "info"
    """uvicorn log level."""

    def __post_init__(self) -> None:
        check_range("--port", self.port, 1, 65535)
        check_range("--workers", self.workers, 1, 256)
        check_range("--max-items", self.max_items, 1)
        check_range("--max-body-bytes", self.max_body_bytes, 1024)
        check_range("--drain-s", self.drain_s, 0)
        check_range("--body-timeout-s", self.body_timeout_s, 0, low_open=True)
        check_choice("--pool", self.pool, ("thread", "process"))
        check_range("--pool-size", self.pool_size, 1, 64)
        check_choice("--log-level", self.log_level, ("critical", "error", "warning", "info", "debug", "trace"))
        if self.token_env and self.token_file:
            raise ConfigError("token_env and token_file are exclusive: give the token one way (--token-env or --token-file)")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.token_env or self.token_file)

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> "ServerSettings":
        raw = os.environ.get(SETTINGS_ENV)
        if raw is None:
            return cls()
        return cls(**json.loads(raw))


def load_token(settings: ServerSettings) -> str | None:
    """The bearer token the server expects, or None when auth is off.

    A configured but missing or empty token is an error: starting open by accident is worse than
    not starting. Surrounding whitespace is stripped (Secret files often end with a newline).
    """
    if settings.token_env:
        token = os.environ.get(settings.token_env, "").strip()
        if not token:
            raise ConfigError(f"--token-env {settings.token_env}: that environment variable is unset or empty")
        return token
    if settings.token_file:
        path = Path(settings.token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(f"--token-file {str(path)!r} cannot be read: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--token-file {str(path)!r} is not UTF-8 text") from None
        if not token:
            raise ConfigError(f"--token-file {str(path)!r} is empty")
        return token
    return None
