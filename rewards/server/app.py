"""The reward server's FastAPI app: /v1/score, the OpenRLHF endpoint, probes and metrics.

`create_app(settings)` builds one app; uvicorn workers call `app_from_env()` (settings arrive as
JSON in an environment variable, see settings.py). Scoring runs in a pool (scoring.py) so the
event loop keeps answering probes while batches are scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import threading
from typing import Any, Literal, Mapping, Optional, Sequence

from fastapi import FastAPI, Path
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewards.server.errors import (ApiError, api_error_handler, describe_errors,
                                   http_error_handler, validation_error_handler)
from rewards.server.metrics import ServerMetrics
from rewards.server.middleware import BearerAuthMiddleware, BodyLimitMiddleware, MetricsMiddleware
from rewards.server.schemas import (TARGET_MODELS, TARGET_SHAPES, OpenRLHFRequest, OpenRLHFResponse,
                                    ScoreRequest, ScoreResponse)
from rewards.server.scoring import Scored, ScoringPool
from rewards.server.settings import ServerSettings, load_token

log = logging.getLogger("rewards.server")

# Trailing special tokens OpenRLHF's decoded queries may end with (Qwen's end-of-turn and padding).
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


class _State:
    """Readiness of this worker: 'starting' until the scoring self-test passes, then 'ready'."""

    def __init__(self) -> None:
        self.status = "starting"
        self.detail = "scoring self-test has not finished"


def completion_from_query(query: str, prompt: str) -> tuple[str, bool]:
    """The response part of an OpenRLHF query, and whether the prompt was found in it.

    The query is prompt + response as decoded by the trainer. If it starts with the prompt, the
    prompt is cut off; if the prompt occurs later (left padding or a BOS token before it), the text
    after its first occurrence is kept; if it does not occur at all the whole query is scored as
    the completion (counted in stvg_reward_openrlhf_prompt_mismatch). Trailing end-of-turn and
    padding tokens (END_TOKENS) and whitespace are then removed.
    """
    found = True
    if query.startswith(prompt):
        rest = query[len(prompt):]
    else:
        index = query.find(prompt)
        found = index >= 0
        rest = query[index + len(prompt):] if found else query
    stripped = True
    while stripped:
        rest = rest.rstrip()
        stripped = False
        for token in END_TOKENS:
            if rest.endswith(token):
                rest = rest[: -len(token)]
                stripped = True
    return rest, found


def create_app(settings: ServerSettings | None = None) -> Any:
    """The ASGI app (FastAPI wrapped in metrics, auth and body-limit layers)."""
    from rewards import TargetError, validate_target
    from rewards.parsing import MAX_COMPLETION_CHARS

    settings = settings or ServerSettings()
    token = load_token(settings)
    metrics = ServerMetrics()
    state = _State()
    pool_holder: dict[str, ScoringPool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = ScoringPool(settings.pool, settings.pool_size)
        pool_holder["pool"] = pool
        warmup = asyncio.create_task(_self_test(pool, state))
        _install_drain(settings.drain_s, state)
        try:
            yield
        finally:
            warmup.cancel()
            pool.close()

    app = FastAPI(
        title="stvg reward server",
        version="1",
        lifespan=lifespan,
        description=_DESCRIPTION.format(max_items=settings.max_items, max_body=settings.max_body_bytes,
                                        max_chars=MAX_COMPLETION_CHARS),
    )
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    worker_header = {"X-Reward-Worker": str(os.getpid())}

    def check_count(count: int, what: str) -> None:
        if count > settings.max_items:
            raise ApiError(413, f"too many {what}: {count}; the limit is {settings.max_items} per request "
                                "(--max-items); split the batch")

    def check_target(task: str, target: Mapping[str, Any], where: str) -> None:
        try:
            validate_target(task, target)
        except TargetError as err:
            message = str(err)
            message = message[len(f"{task} target: "):] if message.startswith(f"{task} target: ") else message
            raise ApiError(422, f"{where}: {message}") from None

    async def run_scoring(task: str, completions: Sequence[str], targets: Sequence[Mapping[str, Any]],
                          weights: Optional[Mapping[str, float]], where: str,
                          spatial_span: str = "intersection") -> list[Scored]:
        from infra.errors import UserError

        try:
            scored = await pool_holder["pool"].score(task, completions, targets, weights, spatial_span)
        except TargetError as err:
            # score_batch validates every target itself; only on failure is each one checked here,
            # to name it the way the request does (validating twice up front cost 25% of the CPU)
            for i, target in enumerate(targets):
                check_target(task, target, where.format(i))
            raise ApiError(422, str(err)) from None
        except UserError as err:  # score_batch's only other refusal: a weight for a term the task lacks
            raise ApiError(422, f"weights: {err}") from None
        metrics.observe_scored(task, len(scored), sum(not s[2] for s in scored), sum(s[3] for s in scored))
        return scored

    @app.post("/v1/score", response_model=ScoreResponse, summary="Score completions against their targets",
              responses={400: {"description": "Malformed JSON"}, 401: {"description": "Missing or wrong token"},
                         413: {"description": "Too many items or body too large"},
                         422: {"description": "Unknown task, bad target"}})
    async def score(request: ScoreRequest) -> JSONResponse:
        task = request.task
        check_count(len(request.items), "items")
        targets = [item.target.model_dump() for item in request.items]
        scored = await run_scoring(task, [item.completion for item in request.items], targets, request.weights,
                                   "items[{}].target", getattr(request, "spatial_span", "intersection"))
        return JSONResponse({"rewards": [s[0] for s in scored], "terms": [s[1] for s in scored],
                             "parsed": [s[2] for s in scored], "runaway": [s[3] for s in scored]},
                            headers=worker_header)

    @app.post("/openrlhf/{task}", response_model=OpenRLHFResponse,
              summary="OpenRLHF remote reward endpoint (--reward.remote_url http://host:port/openrlhf/TASK)")
    async def openrlhf(request: OpenRLHFRequest,
                       task: Literal["stvg-o1", "stvg-r1", "vtg"] = Path(description="Task of every sample.")
                       ) -> JSONResponse:
        sizes = (len(request.query), len(request.prompts), len(request.labels))
        if len(set(sizes)) != 1:
            raise ApiError(422, "query, prompts and labels must have the same length; got "
                                f"{sizes[0]}, {sizes[1]} and {sizes[2]}")
        check_count(sizes[0], "samples")
        completions, targets, mismatched = [], [], 0
        for i, (query, prompt, label) in enumerate(zip(request.query, request.prompts, request.labels)):
            completion, found = completion_from_query(query, prompt)
            mismatched += not found
            targets.append(_parse_label(task, label, i))
            completions.append(completion)
        if mismatched:
            metrics.prompt_mismatch.labels(task).inc(mismatched)
        scored = await run_scoring(task, completions, targets, None, "labels[{}]")
        names = sorted({name for s in scored for name in s[1]})
        totals = [s[0] for s in scored]
        extra_logs = {n: [s[1].get(n, 0.0) for s in scored] for n in names}
        extra_logs["runaway"] = [float(s[3]) for s in scored]
        return JSONResponse({"rewards": totals, "scores": totals, "extra_logs": extra_logs}, headers=worker_header)

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: scoring works and the worker is not draining")
    async def readyz() -> JSONResponse:
        code = 200 if state.status == "ready" else 503
        return JSONResponse({"status": state.status, "detail": state.detail}, status_code=code)

    @app.get("/metrics", summary="Prometheus metrics, summed over all workers")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    wrapped: Any = BodyLimitMiddleware(app, settings.max_body_bytes, settings.body_timeout_s)
    if token is not None:
        wrapped = BearerAuthMiddleware(wrapped, token)
    wrapped = MetricsMiddleware(wrapped, metrics)
    wrapped.fastapi = app  # for tests and for reading the OpenAPI schema
    return wrapped


def app_from_env() -> Any:
    """uvicorn factory used by `stvg serve-rewards` (settings come from the environment)."""
    return create_app(ServerSettings.from_env())


def _parse_label(task: str, label: str, index: int) -> dict[str, Any]:
    where = f"labels[{index}]"
    try:
        raw = json.loads(label)
    except (ValueError, RecursionError) as err:
        raise ApiError(422, f"{where} is not a JSON-encoded target ({err}); a {task} target is "
                            f"{TARGET_SHAPES[task]}") from None
    try:
        target = TARGET_MODELS[task].model_validate(raw).model_dump()
    except ValidationError as err:
        _, message = describe_errors([{**e, "loc": ("labels", index, *e["loc"])} for e in err.errors()])
        raise ApiError(422, f"{message}; a {task} target is {TARGET_SHAPES[task]}") from None
    return target


async def _self_test(pool: ScoringPool, state: _State) -> None:
    try:
        await pool.self_test()
    except asyncio.CancelledError:
        raise
    except Exception as err:  # any failure means this worker must not receive traffic
        log.exception("scoring self-test failed; /readyz stays 503")
        state.status, state.detail = "failed", f"scoring self-test failed: {type(err).__name__}: {err}"
        return
    # Everything imported and warmed up so far lives as long as the worker: move it out of the
    # collector's reach. A full collection otherwise walks ~60k objects (10-60 ms measured) every
    # few hundred requests, which showed up directly in p99 latency.
    gc.collect()
    gc.freeze()
    if state.status == "starting":
        state.status, state.detail = "ready", "scoring works"


def _install_drain(drain_s: float, state: _State) -> None:
    """On the first SIGTERM, answer /readyz 503 for `drain_s` seconds, then let uvicorn shut down.

    uvicorn installs its own SIGTERM handler before the app starts; it is wrapped here so load
    balancers see the worker leave before it stops accepting requests. More SIGTERMs during the
    drain change nothing (a signal sent to the process group reaches a worker twice: directly
    and from uvicorn's supervisor); SIGINT still stops at once.
    """
    if drain_s <= 0 or threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    shutdown = signal.getsignal(signal.SIGTERM)
    if not callable(shutdown):
        return

    def on_sigterm(sig: int, frame: Any) -> None:
        if state.status == "draining":
            return
        state.status, state.detail = "draining", f"shutting down in {drain_s:g} s"
        log.info("SIGTERM: draining for %g s before shutdown", drain_s)
        loop.call_soon_threadsafe(loop.call_later, drain_s, shutdown, sig, None)

    signal.signal(signal.SIGTERM, on_sigterm)


_DESCRIPTION = """Scores video-grounding completions with the project's reward functions.

Targets per task (times in seconds, boxes `[t, x1, y1, x2, y2]` in pixels of the frame the model sees):
`stvg-o1` {{t_start, t_end, boxes, width, height}}, `stvg-r1` {{t_start, t_end, instance_id}},
`vtg` {{t_start, t_end}}.

Limits, per request: at most {max_items} items and bodies of at most {max_body} bytes (413 beyond).
A completion longer than {max_chars} characters is not refused: like any malformed output it scores
0, with `runaway: true`, exactly as in-process scoring does. Errors are JSON `{{"detail": message}}`
naming the item and field.
"""
