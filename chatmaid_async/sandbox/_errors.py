"""The error envelope (contract §6.1) and the exception handlers raise to produce it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from http import HTTPStatus

from aiohttp import web

from chatmaid_async.sandbox._records import JsonObject, iso

__all__ = ["ApiError", "envelope", "error_response"]


class ApiError(Exception):
    """Answer the request with the error envelope.

    ``messages`` become the envelope's ``message`` list; ``retry_after`` (whole seconds) adds
    ``retryAfter`` to the body and a ``Retry-After`` header.
    """

    status: HTTPStatus
    messages: list[str]
    error: str
    retry_after: int | None

    def __init__(
        self,
        status: HTTPStatus,
        messages: Sequence[str] | str,
        *,
        error: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.status = status
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        self.error = error or status.phrase
        self.retry_after = retry_after
        super().__init__(f"{int(status)} {self.error}: {'; '.join(self.messages)}")


def envelope(
    status: int, error: str, messages: Sequence[str], path: str, retry_after: int | None = None
) -> JsonObject:
    """Build the error body exactly as the contract lays it out."""
    body: JsonObject = {
        "success": False,
        "error": error,
        "message": list(messages),
        "statusCode": status,
        "timestamp": iso(time.time()),
        "path": path,
    }
    if retry_after is not None:
        body["retryAfter"] = retry_after
    return body


def error_response(exc: ApiError, path: str) -> web.Response:
    """Turn an :class:`ApiError` into the JSON response the client sees."""
    body = envelope(exc.status, exc.error, exc.messages, path, exc.retry_after)
    response = web.json_response(body, status=exc.status)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
