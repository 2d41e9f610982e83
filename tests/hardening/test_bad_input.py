"""Bad input is refused before anything is sent, with a typed error that names what was wrong.

Every case runs against a real sandbox, and the sandbox's request counter must not move: a
``ValidationError`` raised after a request went out would be no protection at all. The limit
check counts UTF-16 code units, as the API (JavaScript) does, so 4096 emoji are 8192 units.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from chatmaid_async import Chatmaid, SendRequest
from chatmaid_async.cli._app import app
from chatmaid_async.errors import ConfigurationError, ValidationError
from chatmaid_async.sandbox import Sandbox

from .conftest import PHONE_NUMBER, RECIPIENT

EMOJI = "\N{GRINNING FACE}"  # one code point, two UTF-16 code units
LONG_KEY = "k" * 65
URL = "https://cdn.example.com/a.png"

Call = Callable[[Chatmaid], object]


def case(call: Call, field: str, name: str) -> Any:
    return pytest.param(call, field, id=name)


def sending(**arguments: Any) -> Call:
    """``messages.send`` with valid arguments, except those given."""
    valid = {"from_phone_id": PHONE_NUMBER, "to": RECIPIENT, "content": "hi"}
    return lambda client: client.messages.send(**{**valid, **arguments})


def media(urls: Any) -> Call:
    return sending(content=None, media_urls=urls)


BAD_CALLS = [
    # messages.send: the sender
    case(sending(from_phone_id=""), "from_phone_id", "send-from-empty"),
    case(sending(from_phone_id="   "), "from_phone_id", "send-from-spaces"),
    case(sending(from_phone_id=None), "from_phone_id", "send-from-none"),
    case(sending(from_phone_id=15550100000), "from_phone_id", "send-from-int"),
    case(sending(from_phone_id="+1555abc0100"), "from_phone_id", "send-from-letters"),
    case(sending(from_phone_id="+0155501000"), "from_phone_id", "send-from-leading-zero"),
    case(sending(from_phone_id="../account"), "from_phone_id", "send-from-path"),
    case(sending(from_phone_id=[PHONE_NUMBER]), "from_phone_id", "send-from-list"),
    # messages.send: the recipient
    case(sending(to=""), "to", "send-to-empty"),
    case(sending(to="  "), "to", "send-to-spaces"),
    case(sending(to="15557654321"), "to", "send-to-no-plus"),
    case(sending(to="+1555CALLME"), "to", "send-to-letters"),
    case(sending(to="+1"), "to", "send-to-too-short"),
    case(sending(to="+1234567890123456"), "to", "send-to-too-long"),
    case(sending(to=RECIPIENT + "\n"), "to", "send-to-newline"),
    case(sending(to="+1 555 765 4321"), "to", "send-to-spaced"),
    case(sending(to="120363@g.us.evil"), "to", "send-to-bad-jid"),
    case(sending(to=15557654321), "to", "send-to-int"),
    case(sending(to=[RECIPIENT]), "to", "send-to-list"),
    case(sending(to={"to": RECIPIENT}), "to", "send-to-dict"),
    case(sending(to=None), "to", "send-to-none"),
    # messages.send: the content and media
    case(sending(content="x" * 4097), "content", "content-4097"),
    case(sending(content=EMOJI * 4096), "content", "content-4096-emoji"),
    case(sending(content=EMOJI * 2049), "content", "content-4098-units"),
    case(sending(content="x" * 4095 + EMOJI), "content", "content-4097-units"),
    case(sending(content=None), "content", "content-missing"),
    case(sending(content=""), "content", "content-empty"),
    case(sending(content=42), "content", "content-int"),
    case(sending(content=["hi"]), "content", "content-list"),
    case(sending(content={"text": "hi"}), "content", "content-dict"),
    case(media(["http://cdn.example.com/a.png"]), "media_urls", "media-http"),
    case(media(["/media/a.png"]), "media_urls", "media-relative"),
    case(media(["cdn.example.com/a.png"]), "media_urls", "media-no-scheme"),
    case(media(["ftp://cdn.example.com/a"]), "media_urls", "media-ftp"),
    case(media(["https://"]), "media_urls", "media-no-host"),
    case(media(["https://cdn.example.com/a b.png"]), "media_urls", "media-space"),
    case(media(URL), "media_urls", "media-lone-string"),
    case(media([None]), "media_urls", "media-none-item"),
    case(media(42), "media_urls", "media-int"),
    case(media({"url": URL}), "media_urls", "media-dict"),
    case(sending(media_urls=[URL, "http://x.io/b"]), "media_urls", "media-second-bad"),
    # messages.send: the idempotency key
    case(sending(idempotency_key=LONG_KEY), "idempotency_key", "key-65"),
    case(sending(idempotency_key=""), "idempotency_key", "key-empty"),
    case(sending(idempotency_key=" "), "idempotency_key", "key-space"),
    case(sending(idempotency_key=123), "idempotency_key", "key-int"),
    # messages.get / get_inbound
    case(lambda c: c.messages.get(""), "message_id", "get-empty"),
    case(lambda c: c.messages.get("   "), "message_id", "get-spaces"),
    case(lambda c: c.messages.get(None), "message_id", "get-none"),
    case(lambda c: c.messages.get(123), "message_id", "get-int"),
    case(lambda c: c.messages.get(["msg_1"]), "message_id", "get-list"),
    case(lambda c: c.messages.get("msg_1/../../account"), "message_id", "get-slash"),
    case(lambda c: c.messages.get(".."), "message_id", "get-dotdot"),
    case(lambda c: c.messages.get("msg_1?status=sent"), "message_id", "get-query"),
    case(lambda c: c.messages.get("msg 1"), "message_id", "get-space"),
    case(lambda c: c.messages.get_inbound(""), "message_id", "inbound-get-empty"),
    case(lambda c: c.messages.get_inbound("inmsg_1#x"), "message_id", "inbound-get-hash"),
    case(lambda c: c.messages.get_inbound({"id": "inmsg_1"}), "message_id", "inbound-get-dict"),
    # messages.list / iterate / list_inbound / iterate_inbound
    case(lambda c: c.messages.list(page=0), "page", "list-page-0"),
    case(lambda c: c.messages.list(page=-1), "page", "list-page-negative"),
    case(lambda c: c.messages.list(page="1"), "page", "list-page-str"),
    case(lambda c: c.messages.list(page=True), "page", "list-page-bool"),
    case(lambda c: c.messages.list(page=1.0), "page", "list-page-float"),
    case(lambda c: c.messages.list(limit=101), "limit", "list-limit-101"),
    case(lambda c: c.messages.list(limit=0), "limit", "list-limit-0"),
    case(lambda c: c.messages.list(limit=None), "limit", "list-limit-none"),
    case(lambda c: c.messages.list(status=""), "status", "list-status-empty"),
    case(lambda c: c.messages.list(status=["sent"]), "status", "list-status-list"),
    case(lambda c: c.messages.list(phone_number_id=" "), "phone_number_id", "list-phone-space"),
    case(lambda c: c.messages.iterate(limit=101), "limit", "iterate-limit-101"),
    case(lambda c: c.messages.iterate(page=0), "page", "iterate-page-0"),
    case(lambda c: c.messages.list_inbound(page=0), "page", "inbound-list-page-0"),
    case(lambda c: c.messages.list_inbound(limit=101), "limit", "inbound-list-limit-101"),
    case(
        lambda c: c.messages.list_inbound(phone_number_id=""), "phone_number_id", "inbound-phone"
    ),
    case(lambda c: c.messages.iterate_inbound(limit=0), "limit", "inbound-iterate-limit-0"),
    # groups, phone numbers, account
    case(lambda c: c.groups.list(""), "from_phone_id", "groups-empty"),
    case(lambda c: c.groups.list(None), "from_phone_id", "groups-none"),
    case(lambda c: c.groups.list("+1555abc"), "from_phone_id", "groups-letters"),
    case(lambda c: c.groups.list(15550100000), "from_phone_id", "groups-int"),
    case(lambda c: c.phone_numbers.get(""), "id_or_e164", "phone-get-empty"),
    case(lambda c: c.phone_numbers.get("+1555-0100"), "id_or_e164", "phone-get-dash"),
    case(lambda c: c.phone_numbers.get(None), "id_or_e164", "phone-get-none"),
    case(lambda c: c.phone_numbers.status("a/b"), "id_or_e164", "phone-status-slash"),
    case(lambda c: c.phone_numbers.status(12), "id_or_e164", "phone-status-int"),
    case(lambda c: c.account.usage("year"), "period", "usage-year"),
    case(lambda c: c.account.usage(""), "period", "usage-empty"),
    case(lambda c: c.account.usage("DAY"), "period", "usage-upper"),
    case(lambda c: c.account.usage(None), "period", "usage-none"),
    case(lambda c: c.account.usage(["day"]), "period", "usage-list"),
    # send_many and wait_for_status
    case(lambda c: c.messages.send_many([], concurrency=0), "concurrency", "batch-concurrency-0"),
    case(lambda c: c.messages.send_many([], concurrency=1025), "concurrency", "batch-too-many"),
    case(lambda c: c.messages.send_many([], concurrency="8"), "concurrency", "batch-str"),
    case(lambda c: c.messages.wait_for_status("msg_1", until=[]), "until", "wait-until-empty"),
    case(lambda c: c.messages.wait_for_status("msg_1", timeout=0), "timeout", "wait-timeout-0"),
]


async def invoke(call: Call, client: Chatmaid) -> None:
    """Make the call and drive what it returns: an awaitable, or the first item of an iterator."""
    outcome = call(client)
    if isinstance(outcome, AsyncIterator):
        await anext(outcome)
    else:
        await outcome  # type: ignore[misc]


@pytest.mark.parametrize(("call", "field"), BAD_CALLS)
async def test_a_bad_argument_raises_a_validation_error_naming_it_and_sends_nothing(
    sandbox: Sandbox, key: str, phone: str, call: Call, field: str
) -> None:
    async with Chatmaid(key, base_url=sandbox.base_url) as client:
        with pytest.raises(ValidationError) as caught:
            await invoke(call, client)
        slots = client.limiter.state() if client.limiter else None

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert sandbox.counters.requests_total == 0
    # Refused before pacing, too: the key's budget is untouched.
    assert slots is not None
    assert slots.in_window == 0


ARABIC_INDIC = "\u0665\u0665\u0665\u0667\u0666\u0665\u0664\u0663\u0662\u0661"  # "5557654321"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        case(sending(to="+1" + ARABIC_INDIC), "to", "to"),
        case(sending(to=ARABIC_INDIC + "@g.us"), "to", "jid"),
        case(lambda c: c.groups.list("+1" + ARABIC_INDIC), "from_phone_id", "groups-from"),
    ],
)
async def test_a_number_with_non_ascii_digits_is_refused_before_sending(
    sandbox: Sandbox, key: str, phone: str, call: Call, field: str
) -> None:
    async with Chatmaid(key, base_url=sandbox.base_url) as client:
        with pytest.raises(ValidationError) as caught:
            await invoke(call, client)

    assert caught.value.field == field
    assert sandbox.counters.requests_total == 0


GOOD_CALLS = [
    pytest.param(sending(content="x" * 4096), id="content-4096"),
    pytest.param(sending(content=EMOJI * 2048), id="emoji-2048"),
    pytest.param(sending(content="x" * 4094 + EMOJI), id="units-4096"),
    pytest.param(media([URL]), id="media-https"),
    pytest.param(sending(idempotency_key="k" * 64), id="key-64"),
    pytest.param(sending(to="+1234567"), id="to-shortest"),
    pytest.param(lambda c: c.messages.list(page=1, limit=100), id="list-limit-100"),
    pytest.param(lambda c: c.messages.list_inbound(page=2, limit=1), id="inbound-page-2"),
    pytest.param(lambda c: c.groups.list(PHONE_NUMBER), id="groups"),
    pytest.param(lambda c: c.phone_numbers.get(PHONE_NUMBER), id="phone-get"),
    pytest.param(lambda c: c.phone_numbers.status(PHONE_NUMBER), id="phone-status"),
    pytest.param(lambda c: c.account.usage("day"), id="usage-day"),
]


@pytest.mark.parametrize("call", GOOD_CALLS)
async def test_the_values_at_each_limit_reach_the_server_and_succeed(
    sandbox: Sandbox, key: str, phone: str, call: Call
) -> None:
    # The control for the catalogue: one step inside each rule is sent, and counted.
    async with Chatmaid(key, base_url=sandbox.base_url) as client:
        await invoke(call, client)

    assert sandbox.counters.requests_total == 1


async def test_bad_batch_items_each_get_a_validation_error_result_and_none_is_sent(
    sandbox: Sandbox, key: str, phone: str
) -> None:
    def item(item_id: str, **fields: Any) -> SendRequest:
        values: dict[str, Any] = {"from_phone_id": PHONE_NUMBER, "to": RECIPIENT, "content": "hi"}
        return SendRequest(id=item_id, **{**values, **fields})

    items: list[SendRequest | Mapping[str, Any]] = [
        item("no-plus", to="15557654321"),
        item("letters", to="+1555CALLME"),
        item("too-long", content="x" * 4097),
        item("emoji", content=EMOJI * 4096),
        item("no-content", content=None),
        item("http-media", content=None, media_urls=["http://cdn.example.com/a.png"]),
        item("long-key", idempotency_key=LONG_KEY),
        item("no-sender", from_phone_id=""),
        {"id": "mapping-no-to", "from_phone_id": PHONE_NUMBER, "content": "hi"},
        {"id": "mapping-none-to", "from_phone_id": PHONE_NUMBER, "to": None, "content": "hi"},
    ]
    expected = {
        "no-plus": "to",
        "letters": "to",
        "too-long": "content",
        "emoji": "content",
        "no-content": "content",
        "http-media": "media_urls",
        "long-key": "idempotency_key",
        "no-sender": "from_phone_id",
        "mapping-no-to": "item",
        "mapping-none-to": "to",
    }

    async with Chatmaid(key, base_url=sandbox.base_url) as client:
        results = [result async for result in client.messages.send_many(items)]

    fields = {r.id: r.error.field for r in results if isinstance(r.error, ValidationError)}
    assert fields == expected
    assert len(results) == len(items)
    assert sandbox.counters.requests_total == 0


async def test_a_batch_item_repeating_an_earlier_id_is_refused_not_reported_as_sent(
    sandbox: Sandbox, key: str, phone: str
) -> None:
    items = [
        SendRequest(id="order-1", from_phone_id=PHONE_NUMBER, to=RECIPIENT, content="first"),
        SendRequest(id="order-1", from_phone_id=PHONE_NUMBER, to="+15550001111", content="other"),
    ]

    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=None) as client:
        results = [result async for result in client.messages.send_many(items, concurrency=1)]

    first, second = results
    assert first.ok
    assert [m.content for m in sandbox.messages.values()] == ["first"]
    # The second item was never sent: it must not be reported as sent.
    assert not second.ok
    assert isinstance(second.error, ValidationError)
    assert second.error.field == "id"


# -- configuration -----------------------------------------------------------------------------

SECRET_PART = "Zq7Xw3Lm9Pk2Rt5Vb8Nc"


@pytest.mark.parametrize(
    "api_key",
    [
        pytest.param(f"sk_test_{SECRET_PART}\nX-Injected: 1", id="newline"),
        pytest.param(f"sk_test_{SECRET_PART}\n", id="trailing-newline"),
        pytest.param(f"sk_test_{SECRET_PART[:10]} {SECRET_PART[10:]}", id="space"),
        pytest.param(f"sk_test_{SECRET_PART}\t", id="tab"),
        pytest.param(f"sk_test_{SECRET_PART}\x00", id="nul"),
        pytest.param(f"pk_test_{SECRET_PART}", id="unknown-prefix"),
        pytest.param(f"SK_TEST_{SECRET_PART}", id="upper-case-prefix"),
        pytest.param(f" sk_test_{SECRET_PART}", id="leading-space"),
        pytest.param(f"Bearer sk_test_{SECRET_PART}", id="bearer-prefix"),
        pytest.param(SECRET_PART, id="no-prefix"),
        pytest.param("sk_test_", id="prefix-only"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_malformed_key_fails_at_construction_without_echoing_it(
    sandbox: Sandbox, api_key: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Chatmaid(api_key, base_url=sandbox.base_url)

    text = str(caught.value)
    assert "key" in text
    assert SECRET_PART not in text
    assert SECRET_PART[:8] not in text
    assert sandbox.counters.requests_total == 0


@pytest.mark.parametrize(
    "api_key", [pytest.param(12345, id="int"), pytest.param(b"sk_test_abc123456789", id="bytes")]
)
def test_a_key_that_is_not_a_string_fails_at_construction(api_key: Any) -> None:
    with pytest.raises(ConfigurationError, match="api_key must be a string"):
        Chatmaid(api_key)


@pytest.mark.parametrize(
    ("options", "word"),
    [
        pytest.param({"base_url": "ftp://api.example.com"}, "base_url", id="ftp-url"),
        pytest.param({"base_url": "api.example.com"}, "base_url", id="url-no-scheme"),
        pytest.param({"base_url": "https://api.example.com/?x=1"}, "base_url", id="url-query"),
        pytest.param({"timeout": 0}, "timeout", id="timeout-0"),
        pytest.param({"timeout": -1}, "timeout", id="timeout-negative"),
        pytest.param({"timeout": float("nan")}, "timeout", id="timeout-nan"),
        pytest.param({"timeout": "5"}, "timeout", id="timeout-str"),
        pytest.param({"deadline": 0}, "deadline", id="deadline-0"),
        pytest.param({"max_retries": -1}, "max_retries", id="retries-negative"),
        pytest.param({"max_retries": 1.5}, "max_retries", id="retries-float"),
    ],
)
def test_bad_client_options_fail_at_construction_naming_the_option(
    options: dict[str, Any], word: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Chatmaid(f"sk_test_{SECRET_PART}", **options)

    assert word in str(caught.value)


def test_a_live_key_over_plain_http_to_a_remote_host_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Chatmaid(f"sk_live_{SECRET_PART}", base_url="http://api.example.com")

    assert "https" in str(caught.value)
    assert SECRET_PART not in str(caught.value)


# -- the command line --------------------------------------------------------------------------


def run_cli(*args: str) -> Result:
    """``chatmaid ARGS`` in this process, without the caller's CHATMAID_* variables."""
    env = {"CHATMAID_API_KEY": None, "CHATMAID_BASE_URL": None}
    return CliRunner().invoke(app, list(args), env=env)


def connection(sandbox: Sandbox, key: str) -> list[str]:
    return ["--api-key", key, "--base-url", sandbox.base_url]


SEND = ["send", "--from", PHONE_NUMBER]
CLI_CASES = [
    pytest.param([*SEND, "--to", "15557654321", "-c", "hi"], "to", id="send-to-no-plus"),
    pytest.param([*SEND, "--to", "+1555CALLME", "-c", "hi"], "to", id="send-to-letters"),
    pytest.param([*SEND, "--to", "", "-c", "hi"], "to", id="send-to-empty"),
    pytest.param([*SEND, "--to", RECIPIENT, "-c", "x" * 4097], "content", id="send-4097"),
    pytest.param([*SEND, "--to", RECIPIENT, "-c", EMOJI * 4096], "content", id="send-emoji"),
    pytest.param([*SEND, "--to", RECIPIENT], "content", id="send-no-content"),
    pytest.param(
        [*SEND, "--to", RECIPIENT, "--media", "http://cdn.example.com/a.png"],
        "media_urls",
        id="send-http-media",
    ),
    pytest.param(
        [*SEND, "--to", RECIPIENT, "--media", "/a.png"], "media_urls", id="send-relative-media"
    ),
    pytest.param(
        [*SEND, "--to", RECIPIENT, "-c", "hi", "--idempotency-key", LONG_KEY],
        "idempotency_key",
        id="send-key-65",
    ),
    pytest.param(["send", "--to", RECIPIENT, "-c", "hi"], "--from", id="send-no-sender"),
    pytest.param(
        [*SEND, "--from", "+1555abc", "--to", RECIPIENT, "-c", "hi"],
        "from_phone_id",
        id="send-from-letters",
    ),
    pytest.param(["messages", "list", "--page", "0"], "--page", id="list-page-0"),
    pytest.param(["messages", "list", "--page", "one"], "--page", id="list-page-word"),
    pytest.param(["messages", "list", "--limit", "101"], "--limit", id="list-limit-101"),
    pytest.param(["messages", "list", "--status", ""], "status", id="list-status-empty"),
    pytest.param(["messages", "get", " "], "message_id", id="get-space"),
    pytest.param(["messages", "get", "msg_1/../x"], "message_id", id="get-slash"),
    pytest.param(["messages", "wait", "msg_1", "--timeout", "0"], "--timeout", id="wait-0"),
    pytest.param(["messages", "wait", "msg_1", "--until", ","], "until", id="wait-no-status"),
    pytest.param(["inbound", "list", "--limit", "0"], "--limit", id="inbound-limit-0"),
    pytest.param(["inbound", "get", "inmsg 1"], "message_id", id="inbound-get-space"),
    pytest.param(["groups", "--from", "+12"], "from_phone_id", id="groups-short"),
    pytest.param(["phones", "get", "+1555-0100"], "id_or_e164", id="phones-get-dash"),
    pytest.param(["phones", "status", "a/b"], "id_or_e164", id="phones-status-slash"),
    pytest.param(["usage", "--period", "year"], "period", id="usage-year"),
    pytest.param(["account", "--rate", "fast"], "--rate", id="rate-word"),
    pytest.param(["account", "--rate", "0/60"], "--rate", id="rate-zero"),
]


@pytest.mark.parametrize(("args", "named"), CLI_CASES)
async def test_a_bad_command_line_exits_2_naming_the_field_and_sends_nothing(
    sandbox: Sandbox, key: str, phone: str, args: list[str], named: str
) -> None:
    result = await asyncio.to_thread(run_cli, *args, *connection(sandbox, key))

    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
    assert sandbox.counters.requests_total == 0


@pytest.mark.parametrize(
    ("api_key", "named"),
    [
        pytest.param(f"sk_test_{SECRET_PART}\n", "key", id="newline"),
        pytest.param(f"sk_test_{SECRET_PART[:10]} {SECRET_PART[10:]}", "key", id="space"),
        pytest.param(f"pk_live_{SECRET_PART}", "sk_test_", id="unknown-prefix"),
    ],
)
async def test_a_malformed_key_on_the_command_line_exits_2_without_echoing_it(
    sandbox: Sandbox, api_key: str, named: str
) -> None:
    args = ["account", "--api-key", api_key, "--base-url", sandbox.base_url]
    result = await asyncio.to_thread(run_cli, *args)

    assert result.exit_code == 2, result.output
    assert named in result.output
    assert SECRET_PART not in result.output
    assert SECRET_PART[:8] not in result.output
    assert sandbox.counters.requests_total == 0


def test_no_key_at_all_exits_2_and_says_how_to_give_one() -> None:
    result = run_cli("account")

    assert result.exit_code == 2, result.output
    assert "CHATMAID_API_KEY" in result.output


async def test_a_batch_of_only_bad_rows_exits_4_records_each_reason_and_sends_nothing(
    sandbox: Sandbox, key: str, phone: str, tmp_path: Path
) -> None:
    rows = [
        {"id": "no-plus", "to": "15557654321", "content": "hi"},
        {"id": "letters", "to": "+1555CALLME", "content": "hi"},
        {"id": "too-long", "to": RECIPIENT, "content": "x" * 4097},
        {"id": "emoji", "to": RECIPIENT, "content": EMOJI * 4096},
        {"id": "no-content", "to": RECIPIENT},
        {"id": "http-media", "to": RECIPIENT, "media_url": "http://cdn.example.com/a.png"},
        {"to": RECIPIENT, "content": "no id"},
    ]
    source = tmp_path / "bad.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "results.jsonl"

    args = ["batch", str(source), "--from", PHONE_NUMBER, "--out", str(out), "--no-progress"]
    result = await asyncio.to_thread(run_cli, *args, *connection(sandbox, key))

    assert result.exit_code == 4, result.output
    header, *records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert header == {"namespace": "bad"}
    assert len(records) == len(rows)
    assert not any(record["ok"] for record in records)
    reasons = {record["id"]: record["error"]["message"] for record in records}
    assert reasons["no-plus"].startswith("to:")
    assert reasons["too-long"].startswith("content:")
    assert reasons["emoji"].startswith("content:")
    assert reasons["http-media"].startswith("media_urls:")
    assert sandbox.counters.requests_total == 0


async def test_a_batch_file_whose_header_lacks_a_column_exits_2_and_sends_nothing(
    sandbox: Sandbox, key: str, phone: str, tmp_path: Path
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("id,content\n1,hello\n", encoding="utf-8")

    args = ["batch", str(source), "--from", PHONE_NUMBER, "--no-progress"]
    result = await asyncio.to_thread(run_cli, *args, *connection(sandbox, key))

    assert result.exit_code == 2, result.output
    assert "to" in result.output
    assert sandbox.counters.requests_total == 0
