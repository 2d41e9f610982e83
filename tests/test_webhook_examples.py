"""The webhook receivers in examples/ work as their docstrings say (issue 6)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatmaid_async.errors import ConfigurationError
from chatmaid_async.webhooks import MessageStatusEvent, WebhookEvent, sign, verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECRET = "whsec_example_secret"
HEADER = "X-Chatmaid-Signature"


def _load(name: str) -> ModuleType:
    """Import an example file itself, not a copy of it."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fastapi_example = _load("fastapi_webhook")
aiohttp_example = _load("aiohttp_webhook")


def _delivery(event: str = "message.delivered", message_id: str = "msg_1") -> bytes:
    data = {"messageId": message_id, "from": "+15550100000", "to": "+15550100001"}
    return json.dumps({"event": event, "timestamp": "2026-01-01T00:00:00Z", "data": data}).encode()


class Recorder:
    """A handler that remembers what it was given."""

    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []

    async def __call__(self, event: WebhookEvent) -> None:
        self.events.append(event)


# --- FastAPI -------------------------------------------------------------------------------


async def _post_fastapi(app: object, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[HEADER] = signature
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        return await client.post(fastapi_example.PATH, content=body, headers=headers)


async def test_fastapi_receiver_verifies_handles_once_and_acknowledges_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATMAID_WEBHOOK_SECRET", SECRET)
    handled = Recorder()
    app = fastapi_example.create_app(handle=handled)
    body = _delivery()

    first = await _post_fastapi(app, body, sign(body, SECRET))
    # A retry may be re-signed with a later timestamp; it is still the same event.
    repeat = await _post_fastapi(app, body, sign(body, SECRET, int(time.time()) + 5))
    other = await _post_fastapi(app, _delivery(message_id="msg_2"), None)

    assert (first.status_code, repeat.status_code) == (200, 200)
    assert [e.data.message_id for e in handled.events if isinstance(e, MessageStatusEvent)] == [
        "msg_1"
    ]
    assert other.status_code == 400
    assert other.json() == {"error": "missing_signature"}


async def test_fastapi_receiver_rejects_a_bad_signature_with_400() -> None:
    handled = Recorder()
    app = fastapi_example.create_app(SECRET, handle=handled)
    body = _delivery()

    response = await _post_fastapi(app, body, sign(body, "whsec_someone_else"))

    assert response.status_code == 400
    assert response.json() == {"error": "signature_mismatch"}
    assert handled.events == []


async def test_fastapi_receiver_verifies_the_raw_bytes_of_escaped_unicode() -> None:
    handled = Recorder()
    app = fastapi_example.create_app(SECRET, handle=handled)
    body = b'{"event":"message.received","data":{"content":"caf\\u00e9 \\ud83d\\ude00"} }\n'

    response = await _post_fastapi(app, body, sign(body, SECRET))

    assert response.status_code == 200
    assert handled.events[0].raw["data"] == {"content": "café 😀"}


def test_fastapi_receiver_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATMAID_WEBHOOK_SECRET", raising=False)

    with pytest.raises(ConfigurationError, match="CHATMAID_WEBHOOK_SECRET"):
        fastapi_example.create_app()


# --- aiohttp -------------------------------------------------------------------------------


async def test_aiohttp_receiver_verifies_queues_once_and_rejects_bad_deliveries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATMAID_WEBHOOK_SECRET", SECRET)
    handled = Recorder()
    app = aiohttp_example.create_app(handle=handled)
    body = _delivery("message.read")

    async with TestClient(TestServer(app)) as client:
        first = await client.post(
            aiohttp_example.PATH, data=body, headers={HEADER: sign(body, SECRET)}
        )
        repeat = await client.post(
            aiohttp_example.PATH, data=body, headers={HEADER: sign(body, SECRET)}
        )
        forged = await client.post(
            aiohttp_example.PATH, data=body, headers={HEADER: sign(body, "whsec_forger")}
        )
        stale = await client.post(
            aiohttp_example.PATH, data=body, headers={HEADER: sign(body, SECRET, 1_000_000)}
        )
        await app[aiohttp_example.EVENTS].join()

        assert (first.status, repeat.status) == (200, 200)
        assert await forged.json() == {"error": "signature_mismatch"}
        assert (stale.status, await stale.json()) == (400, {"error": "timestamp_out_of_tolerance"})
        assert [e.event for e in handled.events] == ["message.read"]


async def test_aiohttp_worker_survives_a_failing_handler(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    async def flaky(event: WebhookEvent) -> None:
        calls.append(event.event)
        if len(calls) == 1:
            raise RuntimeError("database down")

    app = aiohttp_example.create_app(SECRET, handle=flaky)

    async with TestClient(TestServer(app)) as client:
        for message_id in ("msg_1", "msg_2"):
            body = _delivery(message_id=message_id)
            response = await client.post(
                aiohttp_example.PATH, data=body, headers={HEADER: sign(body, SECRET)}
            )
            assert response.status == 200
        await app[aiohttp_example.EVENTS].join()

    assert calls == ["message.delivered", "message.delivered"]
    assert "handling chatmaid event message.delivered failed" in caplog.text


# --- the README snippet --------------------------------------------------------------------

README = EXAMPLES.parent / "README.md"


def _webhooks_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Webhooks")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _snippet_block(marker: str) -> dict[str, Any]:
    """Run the README's webhooks python block that contains ``marker``; return its namespace."""
    blocks = re.findall(r"```python\n(.*?)```", _webhooks_section(), re.DOTALL)
    (code,) = [block for block in blocks if marker in block]
    namespace: dict[str, Any] = {"__name__": "webhooks_snippet"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


async def test_snippet_fastapi_receiver_handles_each_event_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATMAID_WEBHOOK_SECRET", SECRET)
    app = _snippet_block("app = FastAPI()")["app"]
    body = _delivery()

    first = await _post_fastapi(app, body, sign(body, SECRET))
    repeat = await _post_fastapi(app, body, sign(body, SECRET))
    forged = await _post_fastapi(app, body, sign(body, "whsec_forger"))

    assert (first.status_code, repeat.status_code) == (204, 204)
    assert (forged.status_code, forged.text) == (400, "signature_mismatch")
    assert capsys.readouterr().out.count("message.delivered") == 1


def test_snippet_dedupe_key_is_stable_across_repeats() -> None:
    dedupe_key = _snippet_block("def dedupe_key")["dedupe_key"]
    status_body = _delivery()
    other_body = b'{"event":"phone.connected","data":{"id":"ph_1"}}'

    def key(body: bytes, t: int) -> str:
        return str(dedupe_key(verify(body, sign(body, SECRET, t), SECRET, now=t), body))

    assert key(status_body, 1_800_000_000) == key(status_body, 1_800_000_300)
    assert key(status_body, 1) == "message.delivered:msg_1"
    assert key(other_body, 1) == key(other_body, 2) != key(b" " + other_body, 1)


def test_snippet_sign_builds_a_header_that_verifies() -> None:
    namespace = _snippet_block("headers = {")

    event = verify(namespace["body"], namespace["headers"][HEADER], "whsec_test_secret")

    assert event.event == "message.delivered"
