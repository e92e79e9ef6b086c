"""Pure-ASGI layers around the app, outermost first: metrics, bearer auth, body limit.

They are plain ASGI (not Starlette's BaseHTTPMiddleware) so they cost little per request and can
answer before any of the body is read: an unauthenticated or oversized request is refused without
buffering it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Awaitable, Callable

from rewards.server.metrics import ServerMetrics

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths that answer without a token: probes and scrapers carry no secrets (docs/reward-server.md).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect"})


async def send_json(send: Send, status: int, payload: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Counts every HTTP request by endpoint and status and times it to the last response byte."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - start)


class BearerAuthMiddleware:
    """Requires `Authorization: Bearer <token>` on every path except OPEN_PATHS."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        scheme, _, credential = given.partition(b" ")
        # compare_digest on equal-type bytes: its time does not depend on where they first differ
        if scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self._token):
            return await self.app(scope, receive, send)
        reason = "missing bearer token" if not given else "wrong bearer token"
        await send_json(send, 401, {"detail": f"{reason}: send 'Authorization: Bearer <token>'"},
                        [(b"www-authenticate", b"Bearer")])


class BodyLimitMiddleware:
    """Reads a request body up to `max_bytes` within `timeout_s`, then hands it to the app.

    A declared Content-Length over the limit is refused before reading anything; a chunked body is
    counted as it arrives and refused as soon as it passes the limit, so at most `max_bytes` are
    ever held. A body that trickles in slower than `timeout_s` is answered 408.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def _too_large(self, send: Send, size: str) -> Awaitable[None]:
        return send_json(send, 413, {"detail": f"request body of {size} bytes is over the limit of "
                                               f"{self.max_bytes} bytes (--max-body-bytes); send smaller batches"},
                         [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._too_large(send, value.decode())
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        more = True
        while more:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(remaining, 0.001))
            except asyncio.TimeoutError:
                return await send_json(send, 408, {"detail": f"request body not received within {self.timeout_s:g} s"},
                                       [(b"connection", b"close")])
            if message["type"] == "http.disconnect":
                return  # nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(send, f"more than {self.max_bytes}")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
