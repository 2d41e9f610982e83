"""The session layer: the only module that touches aiohttp on the client side.

One :class:`Transport` per client owns (or borrows) the aiohttp session, and runs every call
as the same steps: take a slot from the key's limiter, send one attempt under its own timeout,
release the slot when the attempt ends, then decode the envelope or map the failure to a typed
error. A first attempt that succeeds never touches tenacity; a failure worth retrying hands the
rest of the call to a fresh ``AsyncRetrying`` that reuses the same request, idempotency key
included (F06).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import platform
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from chatmaid_async import _retry
from chatmaid_async._limits import Limiter, redact_key
from chatmaid_async._retry import RetryPolicy
from chatmaid_async._timestamps import parse_timestamp
from chatmaid_async._version import __version__
from chatmaid_async.errors import (
    BODY_SNIPPET_CHARS,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ChatmaidError,
    ClientClosedError,
    DecodingError,
    LoopMismatchError,
    RateLimitError,
    error_class_for_status,
)

if TYPE_CHECKING:
    import tenacity

__all__ = ["Envelope", "RequestOptions", "Transport"]

logger = logging.getLogger("chatmaid_async")

USER_AGENT = (
    f"chatmaid-async/{__version__} "
    f"Python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
)
_REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-requestid")
# Bytes of a body read for its snippet: enough for BODY_SNIPPET_CHARS characters in UTF-32.
_SNIPPET_READ_BYTES = 4 * BODY_SNIPPET_CHARS
_NOT_JSON: Any = object()
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
CLOSED_MESSAGE = "this Chatmaid client is closed; create a new one"
# One encoder for every body: json.dumps builds a new one on each call given separators.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))


@attrs.frozen(slots=True)
class RequestOptions:
    """Per-call settings: attempt timeout, overall deadline and retry policy."""

    timeout: float
    retry: RetryPolicy
    deadline: float | None = None
    client_timeout: aiohttp.ClientTimeout = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: aiohttp.ClientTimeout(total=self.timeout), takes_self=True
        ),
    )


class Envelope(NamedTuple):
    """A decoded success envelope: ``data`` and, if the server put one there, a top-level
    ``pagination`` beside it."""

    # A tuple for the reason _Request is one: every call builds one.
    data: Any
    pagination: Any = None


class _Request(NamedTuple):
    # A tuple, not an attrs class: one is built per call, and a frozen attrs init costs more.
    method: str
    endpoint: str
    url: URL
    body: bytes | None
    idempotency_key: str | None


class Transport:
    """Sends API requests for one key through its limiter, with retries and error mapping."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        limiter: Limiter | None,
        max_connections: int = 100,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api_key = api_key
        self._origin = base_url
        self._limiter = limiter
        self._max_connections = max_connections
        self._caller_session = session
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        # Answers whose bodies are being read: aclose() cuts them off, as closing a session
        # leaves a body that is still arriving to wait out its timeout.
        self._reading: set[aiohttp.ClientResponse] = set()
        self._loop_guards: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        self._sleep = sleep
        self._closed = False
        self._redactor = _KeyRedactor(api_key)
        # Built once: aiohttp takes a multidict as it is, a dict it converts on every request.
        self._headers = CIMultiDictProxy(
            CIMultiDict(
                {
                    "Authorization": f"Bearer {api_key}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                }
            )
        )
        # A session of our own carries the common headers, so a request adds at most one; a
        # caller's session gets them all on every request.
        json_only = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
        self._body_headers = json_only
        self._bodyless_headers: CIMultiDictProxy[str] | None = None
        if session is not None:
            self._body_headers = CIMultiDictProxy(CIMultiDict(self._headers, **json_only))
            self._bodyless_headers = self._headers
        # URLs of endpoints without path parameters or query, by template (a handful).
        self._static_urls: dict[str, URL] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._sessions)} session(s)"
        return f"<Transport {self._origin} key={redact_key(self._api_key)} {state}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._closed

    @property
    def limiter(self) -> Limiter | None:
        """The key's limiter, or None when pacing is off."""
        return self._limiter

    def request(
        self,
        method: str,
        endpoint: str,
        path_params: tuple[str, ...] = (),
        *,
        options: RequestOptions,
        query: Mapping[str, str | int | None] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Awaitable[Envelope]:
        """One API call to await: pace, send, retry as the policy says, decode.

        ``endpoint`` is the path template (``/v1/messages/{}``); ``path_params`` fill it,
        percent-encoded. Raises :class:`ChatmaidError` subclasses only. The call's coroutine
        is handed back rather than awaited here, so there is one frame fewer to pass through
        each time the call resumes.
        """
        if self._closed:
            raise ClientClosedError(CLOSED_MESSAGE)

        request = _Request(
            method=method,
            endpoint=endpoint,
            url=self._url(endpoint, path_params, query),
            body=_JSON_ENCODER.encode(body).encode() if body is not None else None,
            idempotency_key=idempotency_key,
        )
        call = self._attempt(request, options)
        if options.deadline is None:
            return call
        return _within_deadline(call, options.deadline, request)

    async def aclose(self) -> None:
        """Close the sessions this transport opened; a caller's session is left open."""
        self._closed = True
        for response in list(self._reading):
            response.close()
        sessions, self._sessions = self._sessions, {}
        guards, self._loop_guards = self._loop_guards, {}
        for session in sessions.values():
            await _close_quietly(session)
        current = guards.pop(asyncio.get_running_loop(), None)
        if current is not None:
            await current.aclose()

    async def _attempt(
        self, request: _Request, options: RequestOptions, attempt: int = 1
    ) -> Envelope:
        # A call's first attempt is this coroutine itself, not one awaited by another: each
        # time a call resumes, it passes through every frame it is awaited through.
        try:
            session = self._sessions.get(asyncio.get_running_loop())
            if session is None or session.closed:
                session = await self._session_for(request)
            # No limiter, no await: pacing off costs nothing. The limiter logs long waits.
            permit = await self._limiter.acquire() if self._limiter is not None else None
            if self._closed:
                # Closed while this call waited for a slot: send nothing more.
                if permit is not None:
                    await permit.release(sent=False)
                # An earlier attempt of this call may have reached the API: hand back its key.
                raise ClientClosedError(CLOSED_MESSAGE, idempotency_key=request.idempotency_key)
            started = time.monotonic()
            status: int | None = None
            # Counted as sent unless the connection provably never opened: the guarantee of
            # at most N requests per window must hold even for attempts cut short.
            sent = True
            failure: ChatmaidError | None = None
            try:
                # The timeout starts once the slot is granted: waiting for one is not a fault.
                async with session.request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=(
                        self._body_headers if request.body is not None else self._bodyless_headers
                    ),
                    timeout=options.client_timeout,
                    allow_redirects=False,
                    # A caller's session may raise on 4xx/5xx; the status must reach the
                    # mapping below, which picks the typed error and whether to retry.
                    raise_for_status=False,
                ) as response:
                    self._reading.add(response)
                    try:
                        payload = await response.read()
                    finally:
                        self._reading.discard(response)
                    status, headers = response.status, response.headers
            # Each failure is raised below, outside its handler: raised inside, it would keep
            # aiohttp's exception as __context__, and that holds the request's headers.
            except asyncio.TimeoutError:
                failure = self._timeout_error(request, options.timeout)
            except aiohttp.ClientConnectorError as exc:
                sent = False
                failure = self._connection_error(request, exc)
            except aiohttp.ClientError as exc:
                failure = self._connection_error(request, exc)
            finally:
                if permit is not None:
                    await permit.release(sent=sent)
                if logger.isEnabledFor(logging.DEBUG):
                    _log_attempt(request, attempt, status, time.monotonic() - started)

            if failure is not None:
                raise failure
            assert status is not None  # set with the answer, or a failure was raised
            if self._limiter is not None:
                await self._follow_quota(self._limiter, headers, options.retry)
            if 200 <= status < 300:
                return _decode_success(request, status, headers, payload, self._redactor)
            error = _status_error(request, status, headers, payload, self._redactor)
            if isinstance(error, RateLimitError):
                await self._pause_key(error, options.retry)
            raise error
        except ChatmaidError as exc:
            if request.idempotency_key is not None:
                # Whatever ends a send (a limiter or a session closed before a retry, say) may
                # follow an attempt that reached the API: the caller needs the key to resend.
                exc.idempotency_key = request.idempotency_key
            if attempt > 1 or options.retry.max_retries == 0:
                raise
            if not _retry.is_retryable(exc, options.retry):
                raise
            first_failure = exc
        return await self._retry(request, options, first_failure)

    async def _retry(
        self, request: _Request, options: RequestOptions, first_failure: ChatmaidError
    ) -> Envelope:
        # The first attempt failed in a retryable way: tenacity runs the remaining attempts,
        # starting by re-raising that failure so its wait and logging apply uniformly. It is
        # imported here, as a call that succeeds at once never needs it.
        import tenacity

        retrier = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(options.retry.max_retries + 1),
            wait=_Wait(options.retry),
            retry=tenacity.retry_if_exception(lambda e: _retry.is_retryable(e, options.retry)),
            before_sleep=_log_retry(request),
            sleep=self._sleep,
            reraise=True,
        )
        failure: ChatmaidError | None = first_failure
        async for attempt in retrier:
            with attempt:
                if failure is not None:
                    raise_now, failure = failure, None
                    raise raise_now
                return await self._attempt(
                    request, options, attempt=attempt.retry_state.attempt_number
                )
        raise AssertionError("unreachable: tenacity reraises the last failure")

    async def _session_for(self, request: _Request) -> aiohttp.ClientSession:
        if self._closed:
            # Closed before a retry: an earlier attempt may have reached the API.
            raise ClientClosedError(CLOSED_MESSAGE, idempotency_key=request.idempotency_key)
        return await self._session()

    async def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError(CLOSED_MESSAGE)
        loop = asyncio.get_running_loop()
        if self._caller_session is not None:
            return self._checked_caller_session(loop)

        session = self._sessions.get(loop)
        if session is None or session.closed:
            await self._close_sessions_of_finished_loops()
            # No skip_auto_headers: every body is sent with its Content-Type already, and a
            # skip list makes aiohttp build a multidict on every request.
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=self._headers,
            )
            self._sessions[loop] = session
            await self._close_with_loop(loop, session)
        return session

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
    ) -> None:
        # A client reused across asyncio.run() calls must not leave a pooled socket behind in a
        # loop that has ended: asyncio.run() finalizes async generators before it closes the
        # loop, so a suspended one closes the session on its own loop, where it can.
        async def guard() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                if self._sessions.get(loop) is session:
                    del self._sessions[loop]
                await _close_quietly(session)

        started = guard()
        await started.__anext__()
        self._loop_guards[loop] = started

    def _checked_caller_session(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        session = self._caller_session
        assert session is not None
        session_loop = getattr(session, "_loop", loop)
        if session_loop is not loop:
            raise LoopMismatchError(
                "the aiohttp session passed as session= belongs to another event loop; create "
                "it inside the loop that uses the client (with pytest-asyncio, give the "
                "fixture and the tests the same loop_scope)"
            )
        if session.closed:
            raise ChatmaidError("the aiohttp session passed as session= is closed")
        return session

    async def _close_sessions_of_finished_loops(self) -> None:
        # A client reused across asyncio.run() calls gets a session per loop; one whose loop
        # has closed can never serve again, so close it now rather than let it pile up.
        for loop in [loop for loop in self._sessions if loop.is_closed()]:
            self._loop_guards.pop(loop, None)
            await _close_quietly(self._sessions.pop(loop))

    async def _follow_quota(
        self, limiter: Limiter, headers: Mapping[str, str], policy: RetryPolicy
    ) -> None:
        hold = _retry.parse_rate_limit_reset(headers)
        if hold is not None:
            await limiter.hold(min(hold, policy.max_retry_wait))

    async def _pause_key(self, error: RateLimitError, policy: RetryPolicy) -> None:
        # Every request on this key waits out the server's hint, not only the one that got it;
        # a hint past max_retry_wait fails the calls that meet it instead of parking them all.
        if self._limiter is not None and error.retry_after is not None:
            await self._limiter.hold(min(error.retry_after, policy.max_retry_wait))

    def _url(
        self,
        endpoint: str,
        path_params: tuple[str, ...],
        query: Mapping[str, str | int | None] | None,
    ) -> URL:
        if path_params or query:
            return self._build_url(endpoint, path_params, query)
        url = self._static_urls.get(endpoint)
        if url is None:
            url = self._static_urls[endpoint] = self._build_url(endpoint, (), None)
        return url

    def _build_url(
        self,
        endpoint: str,
        path_params: tuple[str, ...],
        query: Mapping[str, str | int | None] | None,
    ) -> URL:
        path = endpoint.format(*(quote(value, safe="") for value in path_params))
        url = self._origin + path
        if query:
            pairs = [
                f"{name}={quote(str(value), safe='')}"
                for name, value in query.items()
                if value is not None
            ]
            if pairs:
                url += "?" + "&".join(pairs)
        return URL(url, encoded=True)

    def _timeout_error(self, request: _Request, timeout: float) -> ChatmaidError:
        if self._closed:
            # The answer never came because aclose() ended the connection under it.
            return ClientClosedError(CLOSED_MESSAGE, idempotency_key=request.idempotency_key)
        return APITimeoutError(
            f"{request.method} {request.endpoint} got no answer within {timeout:g}s",
            idempotency_key=request.idempotency_key,
        )

    def _connection_error(self, request: _Request, exc: Exception) -> ChatmaidError:
        if self._closed:
            # aclose() closed the session under this attempt: the close is the cause, and a
            # retry (or a warning about one) would only meet the closed client.
            return ClientClosedError(CLOSED_MESSAGE, idempotency_key=request.idempotency_key)
        return APIConnectionError(
            f"{request.method} {request.endpoint} failed: {type(exc).__name__}",
            idempotency_key=request.idempotency_key,
        )


class _Wait:
    """tenacity wait: the server's Retry-After when given, else exponential full jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        assert exc is not None
        return _retry.retry_delay(exc, retry_state.attempt_number, self._policy)


def _log_attempt(request: _Request, attempt: int, status: int | None, elapsed: float) -> None:
    logger.debug(
        "%s %s attempt %d: %s in %.3fs",
        request.method,
        request.endpoint,
        attempt,
        status or "no response",
        elapsed,
    )


def _log_retry(request: _Request) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        logger.warning(
            "retrying %s %s in %.2fs after attempt %d: %s",
            request.method,
            request.endpoint,
            wait,
            retry_state.attempt_number,
            _failure_reason(exc),
        )

    return before_sleep


def _failure_reason(exc: BaseException | None) -> str:
    if isinstance(exc, APIStatusError):
        return f"{exc.status_code} {exc.error}"
    return type(exc).__name__


async def _within_deadline(
    call: Awaitable[Envelope], deadline: float, request: _Request
) -> Envelope:
    try:
        return await asyncio.wait_for(call, deadline)
    except asyncio.TimeoutError:
        raise APITimeoutError(
            f"{request.method} {request.endpoint} did not finish within {deadline:g}s",
            idempotency_key=request.idempotency_key,
        ) from None


async def _close_quietly(session: aiohttp.ClientSession) -> None:
    # A session whose loop has gone raises here; its sockets went with the loop.
    with contextlib.suppress(RuntimeError):
        await session.close()


class _KeyRedactor:
    """Replaces the API key with its redacted form in whatever an answer sent back.

    A proxy or debug page may echo the request's Authorization header in an error body or in a
    header; errors and log lines quote both.
    """

    __slots__ = ("_key", "_label", "_secret", "_secret_label")

    def __init__(self, api_key: str) -> None:
        self._key = api_key
        self._label = redact_key(api_key)
        # The part after the prefix, shown when the prefix was not, or had a character
        # written as a JSON escape ("\u0073k_live_…").
        prefix = self._label[: self._label.index("…")]
        self._secret = api_key[len(prefix) :]
        self._secret_label = self._label[len(prefix) :]

    def redact_headers(self, headers: Mapping[str, str]) -> CIMultiDict[str]:
        # Still a multidict: names ignore case, and a repeated header keeps all its values.
        return CIMultiDict(
            (self.redact_text(name), self.redact_text(value)) for name, value in headers.items()
        )

    def redact_text(self, text: str) -> str:
        return text.replace(self._key, self._label).replace(self._secret, self._secret_label)

    def snippet(self, payload: bytes, headers: Mapping[str, str]) -> str:
        """The start of a body that is no JSON envelope, as one line, the key redacted."""
        text = payload[:_SNIPPET_READ_BYTES].decode(_charset(headers), errors="replace")
        # UTF-16 or UTF-32 read as UTF-8 puts a NUL between characters, and a body that is
        # almost JSON may write any character as a \u escape: either hides the key from a
        # search, not from a reader. Redacted before the cut, so no part of it is left.
        text = _JSON_ESCAPE.sub(_unescaped, text.replace("\x00", ""))
        text = self.redact_text(text)
        return " ".join(text[:BODY_SNIPPET_CHARS].split())

    def redact_json(self, value: object) -> Any:
        """``value`` with the key redacted in every string, keys of objects included."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, list):
            return [self.redact_json(item) for item in value]
        if isinstance(value, dict):
            return {self.redact_text(k): self.redact_json(v) for k, v in value.items()}
        return value


def _decode_success(
    request: _Request,
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    redactor: _KeyRedactor,
) -> Envelope:
    try:
        document = _json_document(payload)
    except (ValueError, RecursionError):
        # RecursionError: a body nested deeper than the parser's stack (hostile or broken).
        document = _NOT_JSON
    if document is _NOT_JSON:
        # Raised here, not in the handler: the parser's error, kept as __context__, holds the
        # whole body.
        if not payload.strip():
            raise DecodingError(request.endpoint, f"HTTP {status} with an empty body")
        snippet = redactor.snippet(payload, headers)
        raise DecodingError(request.endpoint, f"HTTP {status} body is not JSON: {snippet!r}")

    if not isinstance(document, dict):
        raise DecodingError(request.endpoint, "expected a JSON object with success and data")
    if document.get("success") is False:
        raise _status_error(request, status, headers, payload, redactor, document)
    if "data" not in document:
        raise DecodingError(request.endpoint, "the success envelope has no data")
    return Envelope(document["data"], document.get("pagination"))


def _json_document(payload: bytes) -> Any:
    try:
        # Decoding first skips json.loads' sniffing of the encoding, for the usual UTF-8 body.
        return json.loads(payload.decode())
    except ValueError:
        # A BOM, UTF-16 or UTF-32 (which json.loads detects), or not JSON at all.
        return json.loads(payload)


def _status_error(
    request: _Request,
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    redactor: _KeyRedactor,
    document: object = None,
) -> APIStatusError:
    if document is None:
        document = _json_or_none(payload)
    # Every text taken from the answer is redacted once decoded: a body in UTF-16, or with the
    # key's characters written as JSON escapes, hides the key from a search of the raw bytes.
    headers = redactor.redact_headers(headers)
    try:
        document = redactor.redact_json(document)
    except RecursionError:
        # Nested too deep to walk: keep only a snippet of the raw text.
        document = None
    snippet = redactor.snippet(payload, headers) if document is None else ""
    envelope = document if isinstance(document, dict) else {}
    error_class = error_class_for_status(status)
    fields: dict[str, Any] = {
        "error": _text(envelope.get("error")),
        "messages": _messages(envelope.get("message"), document, snippet),
        "path": _text(envelope.get("path")) or request.endpoint,
        "timestamp": _timestamp(envelope.get("timestamp")),
        "request_id": next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None),
        "headers": headers,
        "body": document if document is not None else snippet,
        "idempotency_key": request.idempotency_key,
    }
    if issubclass(error_class, RateLimitError):
        return RateLimitError(
            status, retry_after=_retry.parse_retry_after(headers, envelope), **fields
        )
    return error_class(status, **fields)


def _json_or_none(payload: bytes) -> object:
    try:
        return json.loads(payload) if payload.strip() else None
    except (ValueError, RecursionError):
        return None


def _messages(value: object, document: object, snippet: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    if document is None and snippet:
        return [snippet]
    return []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: object) -> Any:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _unescaped(escape: re.Match[str]) -> str:
    # A surrogate stays escaped: alone, it could not be printed or logged.
    code = int(escape.group(1), 16)
    return escape.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)


def _charset(headers: Mapping[str, str]) -> str:
    # The Content-Type's charset if Python knows it (a UTF-16 HTML page, say), else UTF-8.
    found = _CHARSET.search(headers.get("Content-Type", ""))
    if found is not None:
        try:
            return codecs.lookup(found.group(1)).name
        except LookupError:
            pass
    return "utf-8"
