"""Every client mistake becomes a 4xx JSON body `{"detail": "<one readable message>"}`.

FastAPI's default 422 body is a list of pydantic errors; a trainer log line needs one sentence that
names the item index and the field (`items[3].target.t_start: Field required`), so these handlers
rewrite them. The messages never echo request bodies back (they can be large).
"""

from __future__ import annotations

from typing import Any, Sequence

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

TASK_NAMES = ("stvg-o1", "stvg-r1", "vtg")
_MAX_LISTED = 3


class ApiError(Exception):
    """Raised by handlers for a request the server refuses; becomes `status` + `{"detail": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def format_loc(loc: Sequence[Any]) -> str:
    """("body", "stvg-o1", "items", 3, "target", "t_start") -> "items[3].target.t_start"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query"):
        parts = parts[1:]
    if parts and parts[0] in TASK_NAMES:  # the discriminated union's tag adds no information
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: dict[str, Any]) -> tuple[int, str]:
    kind = error.get("type", "")
    loc = error.get("loc", ())
    where = format_loc(loc)
    if kind == "json_invalid":
        pos = loc[-1] if loc else "?"
        return 400, f"malformed JSON at character {pos}: {error.get('ctx', {}).get('error', 'decode error')}"
    if kind in ("union_tag_invalid", "literal_error") and where in ("task", ""):
        tag = error.get("ctx", {}).get("tag", error.get("input"))
        return 422, f"unknown task {tag!r}; choose one of: {', '.join(TASK_NAMES)}"
    if kind == "union_tag_not_found":
        return 422, f"field 'task' is required; choose one of: {', '.join(TASK_NAMES)}"
    if kind == "missing" and not where:
        return 422, "request body is required: a JSON object"
    if kind in ("model_type", "model_attributes_type", "dict_type") and not where:
        return 422, "request body must be a JSON object"
    msg = error.get("msg", "invalid value")
    return 422, f"{where}: {msg}" if where else msg


def describe_errors(errors: Sequence[dict[str, Any]]) -> tuple[int, str]:
    """(status, message) for a list of pydantic errors: the first few, most severe status first."""
    described = [_describe(e) for e in errors]
    status = min(s for s, _ in described) if described else 422
    messages = [m for s, m in described if s == status]
    text = "; ".join(messages[:_MAX_LISTED])
    if len(messages) > _MAX_LISTED:
        text += f" (and {len(messages) - _MAX_LISTED} more errors)"
    return status, text


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    status, message = describe_errors(errors)
    # a bad target gets the expected shape of its task's target appended
    tasks = [e["loc"][1] for e in errors if len(e.get("loc", ())) > 4 and e["loc"][1] in TASK_NAMES
             and "target" in e["loc"]]
    if tasks and status == 422:
        from rewards.server.schemas import TARGET_SHAPES

        message += f"; a {tasks[0]} target is {TARGET_SHAPES[tasks[0]]}"
    return error_response(status, message)


async def api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.message)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = str(exc.detail)
    cause = exc.__cause__
    # FastAPI turns any non-JSONDecodeError failure of json.loads (nesting too deep, a 5,000-digit
    # integer) into a bare "There was an error parsing the body"; say what went wrong.
    if exc.status_code == 400 and cause is not None:
        message = f"malformed JSON: {type(cause).__name__}: {str(cause)[:200]}"
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))
