"""Faults on demand: the pure choice, then each fault as a client sees it."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from chatmaid_async import RateLimit
from chatmaid_async.sandbox import Faults, Sandbox
from chatmaid_async.sandbox._faults import FaultInjector

from ._support import RECIPIENT, Api

SEND = "/v1/messages/send"


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (0.0, "error_503"),
        (0.0999, "error_503"),
        (0.1, "html_502"),
        (0.35, "drop_before"),
        (0.65, "drop_after"),
        (0.75, "slow_body"),
        (0.85, None),
        (0.99, None),
    ],
)
def test_a_draw_maps_to_one_fault_by_share(draw: float, expected: str | None) -> None:
    faults = Faults(error_503=0.1, html_502=0.2, drop_before=0.3, drop_after=0.1, slow_body=0.1)

    assert faults.kind_for(draw) == expected


@pytest.mark.parametrize(
    "knobs",
    [
        {"error_503": 1.5},
        {"html_502": -0.1},
        {"error_503": 0.6, "drop_after": 0.6},
        {"latency": -1.0},
        {"latency": (0.5, 0.1)},
        {"times": -1},
    ],
)
def test_bad_fault_knobs_are_rejected(knobs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        Faults(**knobs)  # type: ignore[arg-type]


def test_same_seed_gives_the_same_faults() -> None:
    faults = Faults(error_503=0.3, drop_after=0.2, latency=(0.0, 0.1))

    def decisions() -> list[object]:
        injector = FaultInjector(faults, seed=7)
        return [injector.decide(SEND, SEND) for _ in range(50)]

    assert decisions() == decisions()


def test_shares_are_honoured_over_many_draws() -> None:
    injector = FaultInjector(Faults(error_503=0.25), seed=1)

    hits = sum(injector.decide(SEND, SEND).kind == "error_503" for _ in range(10_000))

    assert 2300 < hits < 2700


def test_paths_limit_the_faults_by_path_or_template() -> None:
    injector = FaultInjector(Faults(error_503=1.0, paths={SEND, "/v1/messages/{message_id}"}))

    assert injector.decide(SEND, SEND).kind == "error_503"
    assert injector.decide("/v1/messages/msg_1", "/v1/messages/{message_id}").kind == "error_503"
    assert injector.decide("/v1/account", "/v1/account").kind is None


def test_times_caps_the_number_of_faults() -> None:
    injector = FaultInjector(Faults(error_503=1.0, times=2))

    kinds = [injector.decide(SEND, SEND).kind for _ in range(4)]

    assert kinds == ["error_503", "error_503", None, None]


def _send_body(phone: str) -> dict[str, str]:
    return {"fromPhoneId": phone, "to": RECIPIENT, "content": "x"}


async def test_503_share_answers_the_json_envelope(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.set_faults(error_503=1.0)

    status, body, headers = await api.request("POST", SEND, key, json=_send_body(phone))

    assert status == 503
    assert body["success"] is False
    assert body["statusCode"] == 503
    assert body["error"] == "Service Unavailable"
    assert "x-request-id" in headers
    assert len(sandbox.messages) == 0
    assert sandbox.counters.faults_injected == 1
    assert sandbox.counters.faults_by_kind == {"error_503": 1}
    assert sandbox.counters.requests_by_key == {key: 1}


async def test_html_502_body(http: aiohttp.ClientSession, sandbox: Sandbox, key: str) -> None:
    sandbox.set_faults(html_502=1.0)

    async with http.get("/v1/account", headers={"Authorization": f"Bearer {key}"}) as response:
        text = await response.text()

    assert response.status == 502
    assert response.content_type == "text/html"
    assert text == "<html><body>502 Bad Gateway</body></html>"


async def test_drop_before_creates_nothing_and_disconnects(
    http: aiohttp.ClientSession, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.set_faults(drop_before=1.0, paths=[SEND])

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.post(SEND, json=_send_body(phone), headers={"Authorization": f"Bearer {key}"})

    assert len(sandbox.messages) == 0
    assert sandbox.counters.faults_by_kind == {"drop_before": 1}


async def test_drop_after_creates_the_message_but_the_client_sees_a_disconnect(
    http: aiohttp.ClientSession, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.set_faults(drop_after=1.0, paths=[SEND], times=1)
    body = {**_send_body(phone), "idempotencyKey": "retry-me"}
    headers = {"Authorization": f"Bearer {key}"}

    with pytest.raises(aiohttp.ClientConnectionError):
        await http.post(SEND, json=body, headers=headers)
    async with http.post(SEND, json=body, headers=headers) as retry:
        replay = await retry.json()

    assert len(sandbox.messages) == 1
    assert retry.status == 200
    assert replay["data"]["id"] == next(iter(sandbox.messages))
    assert sandbox.counters.duplicates_prevented == 1


async def test_slow_body_streams_the_answer_over_the_configured_time(
    api: Api, sandbox: Sandbox, key: str
) -> None:
    sandbox.set_faults(slow_body=1.0, slow_body_seconds=0.3)

    started = time.monotonic()
    status, body, _ = await api.request("GET", "/v1/account", key)
    elapsed = time.monotonic() - started

    assert status == 200
    assert body["success"] is True
    assert elapsed >= 0.28


async def test_slow_body_times_out_a_client_with_a_short_read_timeout(
    http: aiohttp.ClientSession, sandbox: Sandbox, key: str
) -> None:
    sandbox.set_faults(slow_body=1.0, slow_body_seconds=1.0)
    timeout = aiohttp.ClientTimeout(sock_read=0.05)

    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            "/v1/account", headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        ) as response:
            await response.read()


@pytest.mark.parametrize("latency", [0.15, (0.15, 0.2)])
async def test_latency_is_added_before_the_answer(
    api: Api, sandbox: Sandbox, key: str, latency: float | tuple[float, float]
) -> None:
    sandbox.set_faults(latency=latency)

    started = time.monotonic()
    status, _ = await api.get("/v1/account", key)

    assert status == 200
    assert time.monotonic() - started >= 0.15
    assert sandbox.counters.faults_injected == 0


async def test_faults_limited_to_send_leave_other_paths_alone(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.set_faults(error_503=1.0, paths=[SEND])

    send_status, _ = await api.send(key, **_send_body(phone))
    read_status, _ = await api.get("/v1/account", key)

    assert (send_status, read_status) == (503, 200)


async def test_seeded_faults_repeat_exactly(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    async def run() -> list[int]:
        sandbox.set_faults(error_503=0.5, seed=42, paths=["/v1/account"])
        return [(await api.get("/v1/account", key))[0] for _ in range(12)]

    first, second = await run(), await run()

    assert first == second
    assert set(first) == {200, 503}


async def test_clear_faults_and_the_faults_property(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(error_503=0.5)
    assert sandbox.faults.error_503 == 0.5

    sandbox.clear_faults()

    assert sandbox.faults == Faults()


async def test_injected_faults_take_no_rate_limit_capacity(
    api: Api, sandbox: Sandbox, phone: str
) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(2, per=5.0))
    sandbox.set_faults(error_503=1.0, times=3)
    for _ in range(3):
        await api.get("/v1/account", key)

    statuses = [(await api.get("/v1/account", key))[0] for _ in range(3)]

    assert statuses == [200, 200, 429]
