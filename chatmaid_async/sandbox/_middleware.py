"""The request pipeline around every handler, outermost first.

1. ``outcome``: give the request an id, count it, turn errors into the envelope, record usage.
2. ``faults``: add latency and inject the configured fault, before or after the handler.
3. ``auth``: 401 for an unknown key, 429 when its window is full, 403 without the scope.

Injected faults come before ``auth`` on purpose: like a failing proxy, they never reach the
API, so they take no rate-limit capacity and carry no ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from http import HTTPStatus

import attrs
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from chatmaid_async.sandbox._context import Context
from chatmaid_async.sandbox._errors import ApiError, envelope, error_response
from chatmaid_async.sandbox._ratelimit import Verdict
from chatmaid_async.sandbox._store import KeyRecord

__all__ = [
    "RequestState",
    "add_response_headers",
    "build_middlewares",
    "current_key",
    "route_template",
]

logger = logging.getLogger("chatmaid_async.sandbox")

BAD_GATEWAY_HTML = "<html><body>502 Bad Gateway</body></html>"
SLOW_BODY_CHUNKS = 8


@attrs.define(slots=True, eq=False)
class RequestState:
    """What the pipeline learns about one request, for the handler and the response hook."""

    request_id: str
    key: KeyRecord | None
    verdict: Verdict | None = None
    dropped: bool = False


# aiohttp runs each request, its middlewares and its response hook in one task of its own, so a
# context variable is per request. (Request-dict string keys warn on aiohttp >= 3.13, and its
# typed RequestKey does not exist on the oldest aiohttp we support.)
_STATE: ContextVar[RequestState | None] = ContextVar("chatmaid_sandbox_request", default=None)


def current_key() -> KeyRecord:
    """The authenticated key of the request being handled (set by the ``auth`` step)."""
    state = _STATE.get()
    if state is None or state.key is None:
        raise RuntimeError("no authenticated sandbox request in this context")
    return state.key


def route_template(request: web.Request) -> str | None:
    """The matched route as a template (``/v1/messages/{message_id}``), without a trailing
    slash; None when no route matched."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return resource.canonical.rstrip("/") or "/"


def build_middlewares(ctx: Context, scopes: Mapping[str, frozenset[str]]) -> list[Middleware]:
    """The pipeline for the sandbox app; ``scopes`` maps route templates to accepted scopes."""

    @web.middleware
    async def outcome(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = ctx.store.key_for_header(request.headers.get(hdrs.AUTHORIZATION))
        state = RequestState(f"req_{uuid.uuid4().hex}", key)
        _STATE.set(state)
        ctx.counters.count_request(key.key if key else None)

        response = await _answer(request, handler)

        _record_outcome(ctx, state, response.status)
        return response

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        decision = ctx.faults.decide(request.path, route_template(request))
        if decision.latency > 0:
            await asyncio.sleep(decision.latency)

        kind = decision.kind
        if kind is None:
            return await handler(request)
        state = _require_state()
        ctx.counters.count_fault(kind)
        logger.debug("injecting %s on %s", kind, route_template(request) or "unmatched route")

        # Faults that hit before the API sees the request.
        if kind == "error_503":
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, ["Service temporarily unavailable"])
        if kind == "html_502":
            return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")
        if kind == "drop_before":
            return _drop(request, state)

        # Faults that hit after the API has done its work (a send is stored by now).
        response = await _answer(request, handler)
        if kind == "drop_after":
            return _drop(request, state)
        return await _stream_slowly(request, response, ctx.faults.faults.slow_body_seconds)

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        template = route_template(request)
        if template is None:
            return await handler(request)  # the router's own 404

        state = _require_state()
        key = state.key
        if key is None or key.revoked:
            raise ApiError(HTTPStatus.UNAUTHORIZED, ["Invalid API key"])

        if key.window is not None:
            verdict = key.window.hit(ctx.monotonic())
            state.verdict = verdict
            if not verdict.allowed:
                ctx.counters.count_rate_limited(key.key)
                raise _too_many_requests(verdict)
            ctx.counters.note_in_window(key.key, verdict.in_window)

        accepted = scopes[template]
        if not key.scopes & accepted:
            needed = " or ".join(sorted(accepted))
            raise ApiError(HTTPStatus.FORBIDDEN, [f"API key lacks the required scope: {needed}"])
        return await handler(request)

    return [outcome, faults, auth]


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the rest of the pipeline; every error becomes the JSON envelope."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc, request.path)
    except web.HTTPException as exc:
        return _http_exception_response(exc, request)
    except ConnectionResetError:
        # The client hung up mid-request (it cancelled or timed out): no fault of the handler.
        return _client_left(request)
    except Exception:
        logger.exception("sandbox handler failed on %s", route_template(request))
        error = ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, ["Internal server error"])
        return error_response(error, request.path)


def _http_exception_response(exc: web.HTTPException, request: web.Request) -> web.Response:
    # The router's 404 and 405 read like the API's own: "Cannot POST /v1/messages".
    if exc.status in (HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED):
        status = HTTPStatus.NOT_FOUND
        messages = [f"Cannot {request.method} {request.path}"]
    else:
        status = HTTPStatus(exc.status)
        messages = [exc.reason]
    body = envelope(status, status.phrase, messages, request.path)
    return web.json_response(body, status=status)


def _too_many_requests(verdict: Verdict) -> ApiError:
    seconds = verdict.retry_after
    return ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        [f"Rate limit exceeded. Try again in {seconds} second{'s' if seconds != 1 else ''}."],
        retry_after=seconds,
    )


def _require_state() -> RequestState:
    state = _STATE.get()
    if state is None:
        raise RuntimeError("the sandbox pipeline runs without its outcome middleware")
    return state


def _record_outcome(ctx: Context, state: RequestState, status: int) -> None:
    # A dropped connection got no answer, so it is neither a success nor a failure.
    if state.dropped:
        return
    key = state.key
    if status == HTTPStatus.BAD_REQUEST:
        ctx.counters.count_validation_error(key.key if key else None)
    if key is not None and not key.revoked:
        ctx.store.record_api_request(key.environment, status < HTTPStatus.BAD_REQUEST, time.time())


def _client_left(request: web.Request) -> web.Response:
    """Answer nothing to a client that closed its connection before the request was read."""
    logger.debug("client left during %s", route_template(request) or "unmatched route")
    state = _STATE.get()
    if state is not None:
        state.dropped = True
    # As in _drop: aiohttp's attempt to write this to the closed transport fails quietly.
    return web.Response(status=HTTPStatus.NO_CONTENT)


def _drop(request: web.Request, state: RequestState) -> web.Response:
    """Close the client's connection without an answer; it sees a disconnect."""
    state.dropped = True
    transport = request.transport
    if transport is not None:
        transport.close()

    # aiohttp's attempt to write this to the closed transport fails quietly.
    return web.Response(status=HTTPStatus.NO_CONTENT)


async def _stream_slowly(
    request: web.Request, response: web.StreamResponse, seconds: float
) -> web.StreamResponse:
    """Send ``response`` in a few chunks spread over ``seconds``."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes) or not body:
        return response

    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() != hdrs.CONTENT_LENGTH.lower()
    }
    stream = web.StreamResponse(status=response.status, headers=headers)
    stream.content_length = len(body)
    step = math.ceil(len(body) / SLOW_BODY_CHUNKS)
    pause = seconds / SLOW_BODY_CHUNKS
    try:
        await stream.prepare(request)
        for start in range(0, len(body), step):
            await asyncio.sleep(pause)
            await stream.write(body[start : start + step])
        await stream.write_eof()
    except ConnectionError:
        logger.debug("client left during a slow body")
    return stream


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``x-request-id`` on every answer; the rate-limit headers for a limited key."""
    state = _STATE.get()
    if state is None:
        return
    response.headers["x-request-id"] = state.request_id

    verdict = state.verdict
    if verdict is None:
        return
    response.headers["X-RateLimit-Limit"] = str(verdict.limit)
    response.headers["X-RateLimit-Remaining"] = str(verdict.remaining)
    # Seconds (millisecond precision) until a slot frees, not a Unix time: e.g. "0.437".
    response.headers["X-RateLimit-Reset"] = f"{max(0.0, verdict.reset_after):.3f}"
