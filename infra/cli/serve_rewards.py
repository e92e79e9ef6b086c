"""`stvg serve-rewards`: run the HTTP reward server (docs/reward-server.md)."""

from __future__ import annotations

import argparse

from rewards.server.settings import ServerSettings

_DEFAULTS = ServerSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_DEFAULTS.host, help="interface to bind (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=_DEFAULTS.port, help="TCP port")
    parser.add_argument("--workers", type=int, default=_DEFAULTS.workers,
                        help="worker processes sharing the port (one per core)")
    parser.add_argument("--max-items", type=int, default=_DEFAULTS.max_items,
                        help="most completions per request (more: 413)")
    parser.add_argument("--max-body-bytes", type=int, default=_DEFAULTS.max_body_bytes,
                        help="largest request body in bytes, enforced while reading (more: 413)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token-env", default="", metavar="VAR",
                       help="require 'Authorization: Bearer TOKEN' with TOKEN read from this environment variable")
    token.add_argument("--token-file", default="", metavar="PATH",
                       help="as --token-env, reading the token from a file (e.g. a mounted Kubernetes Secret)")
    parser.add_argument("--drain-s", type=float, default=_DEFAULTS.drain_s,
                        help="on SIGTERM, keep serving this many seconds with /readyz 503 before stopping")
    parser.add_argument("--body-timeout-s", type=float, default=_DEFAULTS.body_timeout_s,
                        help="answer 408 when a request body takes longer than this to arrive")
    parser.add_argument("--pool", default=_DEFAULTS.pool, choices=("thread", "process"),
                        help="where each worker scores off its event loop")
    parser.add_argument("--pool-size", type=int, default=_DEFAULTS.pool_size,
                        help="threads or processes in each worker's scoring pool")
    parser.add_argument("--access-log", action="store_true", help="log one line per request")
    parser.add_argument("--log-level", default=_DEFAULTS.log_level,
                        choices=("critical", "error", "warning", "info", "debug", "trace"))


def run(args: argparse.Namespace) -> int:
    from rewards.server.run import serve

    settings = ServerSettings(
        host=args.host, port=args.port, workers=args.workers, max_items=args.max_items,
        max_body_bytes=args.max_body_bytes,
        token_env=args.token_env, token_file=args.token_file, drain_s=args.drain_s,
        body_timeout_s=args.body_timeout_s, pool=args.pool, pool_size=args.pool_size,
        access_log=args.access_log, log_level=args.log_level,
    )
    serve(settings)
    return 0
