"""The reward client the training loop calls: in-process scoring or reward servers over HTTP.

`build_reward_client(cfg)` returns a RewardScorer. mode="local" calls rewards.score_batch in this
process; mode="http" sends batches to `stvg serve-rewards` servers (docs/reward-server.md);
mode="auto" (the default) is decided once, in the driver, by `resolve_reward_mode`: http to the
servers listed in $STVG_REWARD_URL when it is set (the Helm chart sets it on every Ray pod when it
deploys reward servers), local otherwise. Once decided, the mode is explicit: an http client whose
servers are all down raises RewardServiceError, it never falls back to local scoring (that would
silently change where the CPU time goes, and hide outages).

HTTP behaviour, per score() call:
- completions are cut into batches of `batch_size`, sent concurrently (up to 4 in flight per URL)
  to the least-loaded URL whose circuit breaker is closed (ties go round robin);
- a failed attempt (connection error, timeout, 408/429/5xx, malformed answer) is retried on another
  URL at once if one is available, else after exponential backoff with jitter; at most
  `max_retries` retries per batch;
- `circuit_failures` consecutive failures open a URL's breaker: it gets no traffic for
  `circuit_reset_s`, then one probe request decides whether it closes again;
- the whole call ends by `deadline_s` (plus ~1 s): results in input order, or ONE
  RewardServiceError naming every URL and its last error;
- a 413 answer (the request is over the server's item or body limit) splits the batch in two
  halves, each sent on its own, down to single items; only a single item that is still too large
  raises;
- any other 4xx answer (bad target, unknown task, wrong token) is not retried: it raises
  RewardRequestError with the server's message.
A runaway completion (over rewards.parsing.MAX_COMPLETION_CHARS characters) scores 0 with
`runaway=True` in both modes. Only its first MAX_COMPLETION_CHARS + 1 characters are sent: the
server needs no more to see that it is over the limit, and the request stays small.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Protocol, Sequence

from infra.config import check_choice, check_range
from infra.errors import ConfigError, UserError
from rewards import TASKS, RewardResult, score_batch
from rewards.parsing import MAX_COMPLETION_CHARS
from rewards.schema import SPATIAL_SPANS

log = logging.getLogger(__name__)

MODES = ("auto", "local", "http")
URL_ENV = "STVG_REWARD_URL"
"""Comma-separated base URLs of the deployed reward servers (set by the Helm chart)."""
_IN_FLIGHT_PER_URL = 4
_DEADLINE_SLACK_S = 1.0


class RewardServiceError(UserError):
    """No reward server scored a batch within the retries or the deadline; names URLs and errors."""


class RewardRequestError(UserError):
    """A reward server refused the request (4xx): the request, the targets or the token are wrong."""


@dataclass
class RewardClientConfig:
    """How the training loop gets rewards: in-process, or from reward servers over HTTP."""

    mode: str = "auto"
    """"local": score in this process with rewards.score_batch; "http": call reward servers at `urls`;
    "auto": http to the servers in $STVG_REWARD_URL (comma-separated) when it is set, else local."""
    urls: list[str] = field(default_factory=list)
    """Base URLs of reward servers for mode=http, e.g. ["http://rewards.ns.svc:8000"] (mode=auto
    takes them from $STVG_REWARD_URL)."""
    token_env: str = "STVG_REWARD_TOKEN"
    """Environment variable holding the bearer token (the token itself never goes in a config).
    Unset or empty: requests carry no Authorization header."""
    batch_size: int = 64
    """Completions per HTTP request."""
    timeout_s: float = 10.0
    """Timeout of one HTTP request (connect, write and read, each)."""
    max_retries: int = 4
    """Retries of one batch after its first attempt fails (on another URL when there is one)."""
    backoff_s: float = 0.2
    """Base of the exponential backoff between retries on the same URL (x 2^n up to 2^10, jitter 0.5-1.5x)."""
    deadline_s: float = 120.0
    """Time budget of one score() call; past it, RewardServiceError (never a hang)."""
    circuit_failures: int = 3
    """Consecutive failures that open a URL's circuit breaker (no traffic to it for a while)."""
    circuit_reset_s: float = 10.0
    """Seconds an open breaker waits before letting one probe request through."""
    weights: dict[str, float] = field(default_factory=dict)
    """Per-term reward weights (term -> weight); empty = the reward functions' defaults. In http
    mode they are sent with every request, so the client config decides, not the server."""
    spatial_span: str = "intersection"
    """STVG-o1's spatial term averages over the GT indices of the spans' intersection (the paper's
    rule; 0 when the spans do not meet) or over the whole GT span ("ground_truth": a GT second the
    answer does not box inside its own span scores -2, so dodging the target never pays). Sent with
    every stvg-o1 request in http mode. docs/conventions.md, "Reward terms"."""

    def __post_init__(self) -> None:
        check_choice("reward.mode", self.mode, MODES)
        check_choice("reward.spatial_span", self.spatial_span, SPATIAL_SPANS)
        if self.mode == "http" and not self.urls:
            raise ConfigError("reward.mode=http needs reward.urls (base URLs of `stvg serve-rewards` servers); "
                              "use reward.mode=local to score in-process")
        for url in self.urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigError(f"reward.urls entry {url!r} must start with http:// or https://")
        check_range("reward.batch_size", self.batch_size, 1)
        check_range("reward.timeout_s", self.timeout_s, 0, low_open=True)
        check_range("reward.max_retries", self.max_retries, 0)
        check_range("reward.backoff_s", self.backoff_s, 0)
        check_range("reward.deadline_s", self.deadline_s, 0, low_open=True)
        check_range("reward.circuit_failures", self.circuit_failures, 1)
        check_range("reward.circuit_reset_s", self.circuit_reset_s, 0)
        for term, weight in self.weights.items():
            if not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ConfigError(f"reward.weights.{term}={weight!r} must be a finite number")


class RewardScorer(Protocol):
    def score(self, task: str, completions: Sequence[str], targets: Sequence[Mapping]) -> list[RewardResult]:
        """One RewardResult per completion, in order."""

    def close(self) -> None:
        """Release connections and threads."""


def resolve_reward_mode(cfg: RewardClientConfig) -> RewardClientConfig:
    """mode=auto made explicit: http to $STVG_REWARD_URL's servers when that is set, else local."""
    if cfg.mode != "auto":
        return cfg
    import dataclasses

    urls = [url.strip() for url in os.environ.get(URL_ENV, "").split(",") if url.strip()]
    if not urls:
        return dataclasses.replace(cfg, mode="local")
    try:
        return dataclasses.replace(cfg, mode="http", urls=urls)
    except ConfigError as err:
        raise ConfigError(f"${URL_ENV}={os.environ[URL_ENV]!r}: {err}") from None


def build_reward_client(cfg: RewardClientConfig) -> RewardScorer:
    """The scorer `cfg.mode` asks for (no fallback from http to local)."""
    cfg = resolve_reward_mode(cfg)
    if cfg.mode == "local":
        return LocalRewardScorer(cfg.weights, cfg.spatial_span)
    return HttpRewardScorer(cfg)


def _check_inputs(task: str, completions: Sequence[str], targets: Sequence[Mapping]) -> None:
    if task not in TASKS:
        raise UserError(f"unknown reward task {task!r}; choose one of: {', '.join(TASKS)}")
    if len(completions) != len(targets):
        raise UserError(f"{len(completions)} completions but {len(targets)} targets: they must pair up")


class LocalRewardScorer:
    """Scores in this process (the default: no servers to run)."""

    def __init__(self, weights: Mapping[str, float] | None = None, spatial_span: str = "intersection"):
        self._weights = dict(weights) if weights else None
        self._spatial_span = spatial_span

    def score(self, task: str, completions: Sequence[str], targets: Sequence[Mapping]) -> list[RewardResult]:
        _check_inputs(task, completions, targets)
        return score_batch(task, list(completions), list(targets), weights=self._weights,
                           spatial_span=self._spatial_span)

    def close(self) -> None:
        pass


class _Endpoint:
    """One reward server URL: its load and its circuit breaker."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.in_flight = 0
        self.failures = 0  # consecutive
        self.opened_at: Optional[float] = None  # breaker open since (monotonic), None = closed
        self.probing = False  # a half-open probe is in flight
        self.last_error = "no request sent yet"

    def allowed(self, now: float, reset_s: float) -> bool:
        if self.opened_at is None:
            return True
        return not self.probing and now >= self.opened_at + reset_s


class _Retryable(Exception):
    """An attempt failed in a way another try (or another URL) may fix."""


class _Cancelled(Exception):
    """Another batch of the same score() call failed; stop this one."""


class _TooLarge(Exception):
    """The server answered 413: the batch is over its item or body limit."""


class HttpRewardScorer:
    """Talks to one or several reward servers; see the module docstring for the failure policy."""

    def __init__(self, cfg: RewardClientConfig):
        import httpx

        self.cfg = cfg
        self._endpoints = [_Endpoint(u) for u in cfg.urls]
        self._lock = threading.Lock()
        self._turn = itertools.count()
        threads = min(32, _IN_FLIGHT_PER_URL * len(self._endpoints))
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="reward-http")
        token = os.environ.get(cfg.token_env, "").strip() if cfg.token_env else ""
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._has_token = bool(token)
        self._http = httpx.Client(headers=headers, limits=httpx.Limits(max_connections=threads,
                                                                       max_keepalive_connections=threads))

    # -- public ---------------------------------------------------------------------------------

    def score(self, task: str, completions: Sequence[str], targets: Sequence[Mapping]) -> list[RewardResult]:
        _check_inputs(task, completions, targets)
        if not completions:
            return []
        start = time.monotonic()
        deadline = start + self.cfg.deadline_s
        cancel = threading.Event()
        size = self.cfg.batch_size
        futures = {
            self._threads.submit(self._score_batch, task, completions[i:i + size], targets[i:i + size],
                                 deadline, cancel): i
            for i in range(0, len(completions), size)
        }
        done, pending = wait(futures, timeout=self.cfg.deadline_s + _DEADLINE_SLACK_S, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None and not isinstance(f.exception(), _Cancelled)]
        if failed or pending:
            cancel.set()
            for f in pending:
                f.cancel()
            if failed:
                requests = [f.exception() for f in failed if isinstance(f.exception(), RewardRequestError)]
                raise (requests or [failed[0].exception()])[0]
            raise self._unavailable(task, time.monotonic() - start, "the deadline passed")
        results: list[RewardResult] = [None] * len(completions)  # type: ignore[list-item]
        for future, offset in futures.items():
            batch = future.result()
            results[offset:offset + len(batch)] = batch
        return results

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    # -- one batch ------------------------------------------------------------------------------

    def _score_batch(self, task: str, completions: Sequence[str], targets: Sequence[Mapping],
                     deadline: float, cancel: threading.Event) -> list[RewardResult]:
        """One batch, with retries; a batch the server finds too large is scored in two halves."""
        try:
            return self._score_request(task, completions, targets, deadline, cancel)
        except _TooLarge as err:
            if len(completions) == 1:
                raise RewardRequestError(f"{err} (a single item is over the server's limit: raise its "
                                         "--max-body-bytes)") from None
            half = len(completions) // 2
            log.info("reward server refused %d items as too large; sending them in two halves", len(completions))
            return (self._score_batch(task, completions[:half], targets[:half], deadline, cancel)
                    + self._score_batch(task, completions[half:], targets[half:], deadline, cancel))

    def _score_request(self, task: str, completions: Sequence[str], targets: Sequence[Mapping],
                       deadline: float, cancel: threading.Event) -> list[RewardResult]:
        body = self._encode(task, completions, targets)
        started = time.monotonic()
        attempts = 0
        last_failed: Optional[str] = None
        while True:
            if cancel.is_set():
                raise _Cancelled()
            now = time.monotonic()
            if now >= deadline:
                raise self._unavailable(task, now - started, f"the {self.cfg.deadline_s:g} s deadline passed",
                                        attempts)
            if last_failed is not None and not self._has_alternative(last_failed, now):
                backoff = self.cfg.backoff_s * 2 ** min(attempts - 1, 10) * random.uniform(0.5, 1.5)
                cancel.wait(min(backoff, max(deadline - now, 0)))
                if cancel.is_set() or time.monotonic() >= deadline:
                    continue
            endpoint, wait_s = self._acquire(avoid=last_failed, now=time.monotonic())
            if endpoint is None:  # every breaker is open: wait for the first to half-open
                cancel.wait(min(wait_s, max(deadline - time.monotonic(), 0)))
                continue
            timeout = min(self.cfg.timeout_s, max(deadline - time.monotonic(), 0.001))
            try:
                results = self._post(endpoint, body, len(completions), timeout)
            except _Retryable as err:
                self._release(endpoint, ok=False, error=str(err))
                attempts += 1
                last_failed = endpoint.url
                log.warning("reward server %s failed (attempt %d of %d): %s", endpoint.url, attempts,
                            self.cfg.max_retries + 1, err)
                if attempts > self.cfg.max_retries:
                    raise self._unavailable(task, time.monotonic() - started,
                                            f"max_retries={self.cfg.max_retries} was used up", attempts) from None
                continue
            except BaseException:
                self._release(endpoint, ok=True)  # a refusal (4xx) still proves the server is up
                raise
            self._release(endpoint, ok=True)
            return results

    def _encode(self, task: str, completions: Sequence[str], targets: Sequence[Mapping]) -> bytes:
        # a runaway completion's score does not depend on its text past the limit (see the module docstring)
        items = [{"completion": c[:MAX_COMPLETION_CHARS + 1], "target": dict(t)} for c, t in zip(completions, targets)]
        payload: dict[str, Any] = {"task": task, "items": items}
        if self.cfg.weights:
            payload["weights"] = dict(self.cfg.weights)
        if task == "stvg-o1" and self.cfg.spatial_span != "intersection":  # servers default to the paper's
            payload["spatial_span"] = self.cfg.spatial_span
        return json.dumps(payload, default=_plain).encode()

    def _post(self, endpoint: _Endpoint, body: bytes, count: int, timeout: float) -> list[RewardResult]:
        import httpx

        try:
            response = self._http.post(f"{endpoint.url}/v1/score", content=body, timeout=timeout)
        except httpx.HTTPError as err:
            raise _Retryable(f"{type(err).__name__}: {err or 'no detail'}") from None
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise _Retryable(f"HTTP {status}: {_detail(response)}")
        if status == 413:
            raise _TooLarge(self._refusal(endpoint, status, _detail(response)))
        if status != 200:
            raise RewardRequestError(self._refusal(endpoint, status, _detail(response)))
        try:
            data = response.json()
            rewards, terms, parsed, runaway = data["rewards"], data["terms"], data["parsed"], data["runaway"]
            if not (len(rewards) == len(terms) == len(parsed) == len(runaway) == count):
                raise ValueError(f"{len(rewards)} rewards for {count} items")
            return [RewardResult(total=float(r), terms={k: float(v) for k, v in t.items()}, parsed=bool(p),
                                 runaway=bool(w))
                    for r, t, p, w in zip(rewards, terms, parsed, runaway)]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise _Retryable(f"malformed answer: {type(err).__name__}: {err}") from None

    def _refusal(self, endpoint: _Endpoint, status: int, detail: str) -> str:
        message = f"reward server {endpoint.url} refused the request (HTTP {status}): {detail}"
        if status == 401:
            source = f"${self.cfg.token_env}" if self.cfg.token_env else "reward.token_env"
            message += f" (the client's token comes from {source}, which is " + \
                       ("set)" if self._has_token else "unset or empty)")
        return message

    # -- load balancing and breakers -------------------------------------------------------------

    def _acquire(self, avoid: Optional[str], now: float) -> tuple[Optional[_Endpoint], float]:
        reset = self.cfg.circuit_reset_s
        with self._lock:
            allowed = [e for e in self._endpoints if e.allowed(now, reset)]
            preferred = [e for e in allowed if e.url != avoid] or allowed
            if not preferred:
                waits = [e.opened_at + reset - now for e in self._endpoints if e.opened_at is not None and not e.probing]
                return None, max(min(waits), 0.01) if waits else 0.05
            turn = next(self._turn)
            rotated = preferred[turn % len(preferred):] + preferred[:turn % len(preferred)]
            chosen = min(rotated, key=lambda e: e.in_flight)
            if chosen.opened_at is not None:
                chosen.probing = True  # half-open: this request is the probe
            chosen.in_flight += 1
            return chosen, 0.0

    def _has_alternative(self, failed_url: str, now: float) -> bool:
        with self._lock:
            return any(e.url != failed_url and e.allowed(now, self.cfg.circuit_reset_s) for e in self._endpoints)

    def _release(self, endpoint: _Endpoint, ok: bool, error: str = "") -> None:
        with self._lock:
            endpoint.in_flight -= 1
            was_probe, endpoint.probing = endpoint.probing, False
            if ok:
                if endpoint.opened_at is not None:
                    log.info("reward server %s is back: circuit closed", endpoint.url)
                endpoint.failures, endpoint.opened_at = 0, None
                return
            endpoint.failures += 1
            endpoint.last_error = error
            if was_probe or endpoint.failures >= self.cfg.circuit_failures:
                if endpoint.opened_at is None:
                    log.warning("reward server %s: circuit opened after %d failures", endpoint.url, endpoint.failures)
                endpoint.opened_at = time.monotonic()

    def _unavailable(self, task: str, elapsed: float, reason: str, attempts: Optional[int] = None) -> RewardServiceError:
        with self._lock:
            lines = "; ".join(f"{e.url}: {e.last_error}" for e in self._endpoints)
        tried = f" after {attempts} attempts" if attempts is not None else ""
        return RewardServiceError(
            f"reward service unavailable: no reward server scored a {task} batch{tried} in {elapsed:.1f} s "
            f"({reason}; reward.max_retries={self.cfg.max_retries}, reward.deadline_s={self.cfg.deadline_s:g}). "
            f"Last error per server: {lines}")


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays in targets."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot send a {type(value).__name__} in a reward target")


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
        if detail:
            return str(detail)[:500]
    except Exception:  # not JSON: show the start of the text
        pass
    return response.text[:200] or response.reason_phrase
