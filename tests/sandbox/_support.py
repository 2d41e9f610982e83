"""Raw HTTP helpers for the sandbox tests (never the SDK client)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

PHONE_NUMBER = "+15550100000"
RECIPIENT = "+15557654321"


class Api:
    """Raw HTTP calls against the sandbox, returning (status, json body, headers)."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def request(
        self,
        method: str,
        path: str,
        key: str | None = None,
        *,
        json: object = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        async with self.http.request(
            method, path, json=json, params=params, headers=all_headers
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body, response.headers

    async def get(self, path: str, key: str | None = None, **params: str) -> tuple[int, Any]:
        status, body, _ = await self.request("GET", path, key, params=params or None)
        return status, body

    async def send(self, key: str, **fields: object) -> tuple[int, Any]:
        status, body, _ = await self.request("POST", "/v1/messages/send", key, json=fields)
        return status, body
