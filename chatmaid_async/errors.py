"""Typed errors raised by the SDK.

Every exception the SDK raises on purpose derives from :class:`ChatmaidError`. HTTP failures
become an :class:`APIStatusError` subclass chosen by :func:`error_class_for_status`, the one
place that maps a status code to a class. No error text ever holds an API key or a webhook
secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Any

from multidict import CIMultiDict

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatmaidError",
    "ClientClosedError",
    "ConfigurationError",
    "DecodingError",
    "InternalServerError",
    "LoopMismatchError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiterUnavailableError",
    "StatusTimeoutError",
    "ValidationError",
    "WebhookVerificationError",
    "error_class_for_status",
]

# Raw response text kept on an error, enough to recognise an HTML proxy page.
BODY_SNIPPET_CHARS = 1024


class ChatmaidError(Exception):
    """Base class of every error the SDK raises on purpose.

    ``idempotency_key`` is set on any error that ends a send, to the key it was sent with: an
    attempt may have reached the API, and sending again with that key can never create a
    second message. It is None on other calls' errors and on errors raised before a request.
    """

    idempotency_key: str | None = None


class ClientClosedError(ChatmaidError, RuntimeError):
    """A call was made on, or was still running when someone closed, a closed client.

    ``idempotency_key`` is set for a send that was under way at the close: it may have reached
    the API, and sending again with that key, on another client, can never create a second
    message.
    """

    idempotency_key: str | None

    def __init__(self, message: str, *, idempotency_key: str | None = None) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(message)


class ConfigurationError(ChatmaidError):
    """The client was configured wrongly (missing or malformed key, unsafe base URL)."""


class ValidationError(ChatmaidError, ValueError):
    """An argument broke a rule of the API; raised before anything is sent.

    ``field`` names the argument in the SDK's own terms and ``rule`` says what it must be.
    """

    field: str
    rule: str

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class LoopMismatchError(ChatmaidError, RuntimeError):
    """A caller-owned aiohttp session was used from an event loop other than its own."""


class DecodingError(ChatmaidError):
    """A successful response could not be turned into the expected model.

    ``endpoint`` is the path template and ``detail`` says which field or shape was wrong. On a
    send, the API accepted the message: ``idempotency_key`` is set.
    """

    endpoint: str
    detail: str

    def __init__(self, endpoint: str, detail: str) -> None:
        self.endpoint = endpoint
        self.detail = detail
        super().__init__(f"unexpected response from {endpoint}: {detail}")


class APIConnectionError(ChatmaidError):
    """The request never got an HTTP answer: DNS, refused or dropped connection, TLS.

    ``idempotency_key`` is set for a send, so the caller can reconcile: a retry with the same
    key can never create a second message.
    """

    idempotency_key: str | None

    def __init__(self, message: str, *, idempotency_key: str | None = None) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """An attempt, or the call's overall deadline, ran out before an answer came."""


class RateLimiterUnavailableError(ChatmaidError):
    """The shared (Redis) rate limiter could not be reached and fallback is off."""


class StatusTimeoutError(ChatmaidError, TimeoutError):
    """``wait_for_status`` gave up; ``last_status`` is the status seen last (None if none)."""

    message_id: str
    last_status: str | None

    def __init__(self, message_id: str, last_status: str | None, waited: float) -> None:
        self.message_id = message_id
        self.last_status = last_status
        super().__init__(
            f"message {message_id} still {last_status or 'unknown'} after {waited:.1f}s"
        )


class WebhookVerificationError(ChatmaidError):
    """A webhook delivery failed verification; ``code`` says why.

    Codes: ``missing_secret``, ``missing_signature``, ``malformed_signature``,
    ``timestamp_out_of_tolerance``, ``signature_mismatch``, ``invalid_json``,
    ``invalid_payload``.
    """

    code: str

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class APIStatusError(ChatmaidError):
    """The API answered with a non-2xx status.

    ``error`` is the envelope's short label, ``messages`` its details (always a list), ``body``
    the decoded JSON envelope or, for a non-JSON answer, a snippet of the raw text.
    """

    status_code: int
    error: str
    messages: list[str]
    path: str | None
    timestamp: datetime | None
    request_id: str | None
    headers: Mapping[str, str]
    body: object
    idempotency_key: str | None

    def __init__(
        self,
        status_code: int,
        *,
        error: str | None = None,
        messages: Sequence[str] = (),
        path: str | None = None,
        timestamp: datetime | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: object = None,
        idempotency_key: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error or _reason_phrase(status_code)
        self.messages = list(messages)
        self.path = path
        self.timestamp = timestamp
        self.request_id = request_id
        # HTTP header names ignore case: err.headers["retry-after"] finds "Retry-After".
        self.headers = CIMultiDict(headers or {})
        self.body = body
        self.idempotency_key = idempotency_key
        super().__init__(self._summary())

    def _summary(self) -> str:
        where = f" on {self.path}" if self.path else ""
        # One line, whatever the server put in its messages.
        details = "; ".join(" ".join(message.split()) for message in self.messages)
        text = f"{self.status_code} {self.error}{where}"
        return f"{text}: {details}" if details else text


class BadRequestError(APIStatusError):
    """400 or 422: the server rejected the request's content. Never retried."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or expired. Never retried."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the scope the endpoint needs. Never retried."""


class NotFoundError(APIStatusError):
    """404: no such message, phone number or sender phone in this account."""


class RateLimitError(APIStatusError):
    """429: the key's rate limit was exceeded; ``retry_after`` is the server's hint in seconds."""

    retry_after: float | None

    def __init__(self, status_code: int, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(status_code, **kw)


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried with backoff."""


def error_class_for_status(status_code: int) -> type[APIStatusError]:
    """Return the error class for an HTTP status code (the SDK's one mapping)."""
    exact: dict[int, type[APIStatusError]] = {
        HTTPStatus.BAD_REQUEST: BadRequestError,
        HTTPStatus.UNPROCESSABLE_ENTITY: BadRequestError,
        HTTPStatus.UNAUTHORIZED: AuthenticationError,
        HTTPStatus.FORBIDDEN: PermissionDeniedError,
        HTTPStatus.NOT_FOUND: NotFoundError,
        HTTPStatus.TOO_MANY_REQUESTS: RateLimitError,
    }
    if status_code in exact:
        return exact[status_code]
    if status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return InternalServerError
    return APIStatusError


def _reason_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return f"HTTP {status_code}"
