"""The routes of contract §3, each with the scopes that may call it (§5).

Handlers read the request, ask the store, and write ``{"success": true, "data": ...}``; the
middleware has already authenticated, rate-limited and scope-checked them. Every route is also
served with a trailing slash. Nothing else is served: a client that doubles the prefix
(``/v1/v1/...``) or forgets it gets a 404.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler

from chatmaid_async.sandbox._context import Context
from chatmaid_async.sandbox._errors import ApiError
from chatmaid_async.sandbox._middleware import (
    add_response_headers,
    build_middlewares,
    current_key,
)
from chatmaid_async.sandbox._records import Environment, JsonObject
from chatmaid_async.sandbox._validation import (
    parse_page,
    parse_period,
    parse_send_body,
    parse_status_filter,
)

__all__ = ["SCOPES", "build_app"]

_SEND_SCOPES = frozenset({"messages:send", "messages:write"})
_MESSAGE_SCOPES = frozenset({"messages:read", "messages:send", "messages:write"})
_PHONE_SCOPES = _MESSAGE_SCOPES | {"phone_numbers:read", "phone-numbers:read"}
_ACCOUNT_SCOPES = _MESSAGE_SCOPES | {"account:read"}

# Accepted scopes by route; "messages:*" in the contract means any of the three message scopes.
SCOPES: dict[str, frozenset[str]] = {
    "/v1/messages/send": _SEND_SCOPES,
    "/v1/messages": frozenset({"messages:read"}),
    "/v1/messages/inbound": frozenset({"messages:read"}),
    "/v1/messages/inbound/{message_id}": frozenset({"messages:read"}),
    "/v1/messages/{message_id}": frozenset({"messages:read"}),
    # Undocumented: anyone who may read or send messages may list the groups to send to.
    "/v1/groups": _MESSAGE_SCOPES,
    "/v1/phone-numbers": _PHONE_SCOPES,
    "/v1/phone-numbers/{phone_id}": _PHONE_SCOPES,
    "/v1/phone-numbers/{phone_id}/status": _PHONE_SCOPES,
    "/v1/account": _ACCOUNT_SCOPES,
    "/v1/account/usage": _ACCOUNT_SCOPES,
}


def _ok(data: object, status: HTTPStatus = HTTPStatus.OK) -> web.Response:
    return web.json_response({"success": True, "data": data}, status=status)


def _page(items: Sequence[JsonObject], page: int, limit: int, total: int) -> web.Response:
    pagination = {
        "page": page,
        "limit": limit,
        "total": total,
        "totalPages": math.ceil(total / limit),
    }
    return _ok({"data": list(items), "pagination": pagination})


def _not_found(what: str) -> ApiError:
    return ApiError(HTTPStatus.NOT_FOUND, [f"{what} not found"])


def _environment() -> Environment:
    """The environment of the request's key (``sk_test_`` → test, ``sk_live_`` → live)."""
    return current_key().environment


class _Handlers:
    """One method per endpoint; ``ctx`` is the sandbox they share."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._store = ctx.store

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path, handler); ``inbound`` comes before ``{message_id}`` so the literal
        segment is never read as a message id."""
        return [
            ("POST", "/v1/messages/send", self.send),
            ("GET", "/v1/messages", self.list_messages),
            ("GET", "/v1/messages/inbound", self.list_inbound),
            ("GET", "/v1/messages/inbound/{message_id}", self.get_inbound),
            ("GET", "/v1/messages/{message_id}", self.get_message),
            ("GET", "/v1/groups", self.list_groups),
            ("GET", "/v1/phone-numbers", self.list_phones),
            ("GET", "/v1/phone-numbers/{phone_id}", self.get_phone),
            ("GET", "/v1/phone-numbers/{phone_id}/status", self.get_phone_status),
            ("GET", "/v1/account", self.get_account),
            ("GET", "/v1/account/usage", self.get_usage),
        ]

    async def send(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/messages/send: 201 with a new message, 200 with the original on replay."""
        command = parse_send_body(await _json_body(request))
        key = current_key()

        # A reused idempotency key answers with the original and creates nothing.
        original = self._store.replay(key.environment, command.idempotency_key)
        if original is not None:
            self._ctx.counters.duplicates_prevented += 1
            return _ok(original.to_json(time.time()))

        phone = self._store.find_phone(command.from_phone_id, key.environment)
        if phone is None:
            raise _not_found("Phone number")
        if key.environment == "live":
            self._check_live_send(phone.connection_status)

        now = time.time()
        message = self._store.create_message(key, phone, command, now)
        self._ctx.counters.messages_created += 1
        self._ctx.emit_message_events(message)
        return _ok(message.to_json(now), HTTPStatus.CREATED)

    def _check_live_send(self, connection_status: str) -> None:
        # Undocumented: the status a live key without a subscription gets; 403 is our reading.
        if self._store.account.subscription_status != "active":
            raise ApiError(
                HTTPStatus.FORBIDDEN, ["An active subscription is required to send live messages"]
            )
        if connection_status != "connected":
            raise ApiError(HTTPStatus.BAD_REQUEST, ["Phone number is not connected"])

    async def list_messages(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/messages: newest first, filtered by ``phoneNumberId`` and ``status``."""
        page, limit = parse_page(request.query)
        status = parse_status_filter(request.query)
        environment = _environment()

        # An unknown phone is just a filter that matches nothing.
        phone_ref = request.query.get("phoneNumberId")
        phone = self._store.find_phone(phone_ref, environment) if phone_ref else None
        phone_id = phone.id if phone is not None else phone_ref

        now = time.time()
        messages, total = self._store.message_page(
            environment, phone_id=phone_id, status=status, page=page, limit=limit, now=now
        )
        return _page([message.to_json(now) for message in messages], page, limit, total)

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/messages/{message_id}."""
        message = self._store.message(request.match_info["message_id"], _environment())
        if message is None:
            raise _not_found("Message")
        return _ok(message.to_json(time.time()))

    async def list_inbound(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/messages/inbound: always empty for test keys."""
        page, limit = parse_page(request.query)
        if _environment() == "test":
            return _page([], page, limit, 0)

        phone_ref = request.query.get("phoneNumberId")
        phone = self._store.find_phone(phone_ref, "live") if phone_ref else None
        phone_id = phone.id if phone is not None else phone_ref
        records, total = self._store.inbound_page(phone_id, page, limit)
        return _page([record.to_json() for record in records], page, limit, total)

    async def get_inbound(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/messages/inbound/{message_id}: test keys have none to find."""
        record = self._store.inbound.get(request.match_info["message_id"])
        if record is None or _environment() == "test":
            raise _not_found("Inbound message")
        return _ok(record.to_json())

    async def list_groups(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/groups?fromPhoneId=: a static list plus added groups for test keys."""
        ref = request.query.get("fromPhoneId")
        if not ref:
            raise ApiError(HTTPStatus.BAD_REQUEST, ["fromPhoneId should not be empty"])

        environment = _environment()
        phone = self._store.find_phone(ref, environment)
        if phone is None:
            raise _not_found("Phone number")
        if environment == "live" and phone.connection_status != "connected":
            raise ApiError(HTTPStatus.BAD_REQUEST, ["Phone number is not connected"])
        return _ok([group.to_json() for group in self._store.groups_for(phone, environment)])

    async def list_phones(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/phone-numbers: the phones of the key's environment."""
        environment = _environment()
        phones = self._store.phones_for(environment)
        return _ok([phone.to_json(environment) for phone in phones])

    async def get_phone(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/phone-numbers/{phone_id}: by dashboard id or E.164."""
        environment = _environment()
        phone = self._store.find_phone(request.match_info["phone_id"], environment)
        if phone is None:
            raise _not_found("Phone number")
        return _ok(phone.to_json(environment))

    async def get_phone_status(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/phone-numbers/{phone_id}/status."""
        phone = self._store.find_phone(request.match_info["phone_id"], _environment())
        if phone is None:
            raise _not_found("Phone number")
        return _ok(phone.status_json())

    async def get_account(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/account, in the documented shape."""
        return _ok(self._store.account_json(_environment()))

    async def get_usage(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/account/usage?period=day|week|month (default month)."""
        period = parse_period(request.query)
        return _ok(self._store.usage_json(_environment(), period, time.time()))


async def _json_body(request: web.Request) -> object:
    raw = await request.read()
    if not raw:
        return None
    try:
        body: object = json.loads(raw)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, ["request body must be valid JSON"]) from None
    return body


def build_app(ctx: Context) -> web.Application:
    """The aiohttp application serving the contract's endpoints under ``/v1``."""
    app = web.Application(middlewares=build_middlewares(ctx, SCOPES))
    for method, path, handler in _Handlers(ctx).routes():
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)
    app.on_response_prepare.append(add_response_headers)
    return app
