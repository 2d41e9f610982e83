"""What every resource needs from the client: one way to make a request."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from chatmaid_async._transport import Envelope

__all__ = ["Requester", "Resource"]


class Requester(Protocol):
    """The client side of a resource: sends one API call with the client's options."""

    def _request(
        self,
        method: str,
        endpoint: str,
        path_params: tuple[str, ...] = (),
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Awaitable[Envelope]: ...


class Resource:
    """Base of the thin resource classes: they validate, build a request, decode a model."""

    __slots__ = ("_client",)

    def __init__(self, client: Requester) -> None:
        self._client = client
