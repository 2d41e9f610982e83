"""Webhook verification and typed events (issue 6, contract §10, field reports F16 and F18)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmaid_async.errors import WebhookVerificationError
from chatmaid_async.webhooks import (
    DEFAULT_TOLERANCE,
    InboundMessageData,
    MessageOutgoingEvent,
    MessageReceivedEvent,
    MessageStatusData,
    MessageStatusEvent,
    PhoneEvent,
    UnknownEvent,
    WebhookEvent,
    sign,
    verify,
)

SECRET = "whsec_test_secret"
T = 1767225600  # 2026-01-01T00:00:00Z, the frozen clock of F16 and F18

DELIVERED = (
    b'{"event":"message.delivered","timestamp":"2026-01-01T00:00:00.000Z","data":'
    b'{"messageId":"msg_1","from":"+15550100000","to":"+15550100001","status":"delivered"}}'
)
# Computed outside this code base: printf '1767225600.<DELIVERED>' |
#   openssl dgst -sha256 -hmac whsec_test_secret
DELIVERED_OPENSSL_HEX = "f1a812e180eaca3725139fc24ad3c727730fcf8213a627b250c095ad98a1c37e"

F16_RAW = (
    b'{"event":"message.received","data":{"content":"caf\\u00e9 \\ud83d\\ude00 a@b.example",'
    b'"to":"+15550100001"} ,"n":1.0}\n'
)
# The same openssl command over b"1767225600." + F16_RAW.
F16_OPENSSL_HEX = "75a001d13f9b39048fa2a426c48957611116d692fccf69a6119be9e2d52f0223"


def _hmac_header(t: int | str, body: bytes, secret: str = SECRET) -> str:
    """A header computed with the standard library only, independent of ``sign``."""
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _envelope(event: str, data: dict[str, Any]) -> bytes:
    envelope = {"event": event, "timestamp": "2026-01-01T00:00:00Z", "data": data}
    return json.dumps(envelope).encode()


def _signed(body: bytes) -> tuple[bytes, str]:
    return body, _hmac_header(T, body)


def _code(
    body: bytes | str,
    header: str | None,
    secret: str | None = SECRET,
    *,
    now: float | None = T,
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> str:
    """The code of the WebhookVerificationError that ``verify`` raises (fails if none)."""
    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, header, secret, now=now, tolerance=tolerance)
    return caught.value.code


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- independent vectors -------------------------------------------------------------------


def test_verify_accepts_a_vector_computed_by_openssl() -> None:
    event = verify(DELIVERED, f"t={T},v1={DELIVERED_OPENSSL_HEX}", SECRET, now=T)

    assert isinstance(event, MessageStatusEvent)
    assert event.event == "message.delivered"
    assert event.data.message_id == "msg_1"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("body", [DELIVERED, F16_RAW, "héllo ✓ 😀\n".encode()])
def test_sign_agrees_with_openssl_hmac(body: bytes) -> None:
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET],
        input=f"{T}.".encode() + body,
        capture_output=True,
        check=True,
    )
    openssl_hex = result.stdout.decode().split()[-1]

    assert sign(body, SECRET, T) == f"t={T},v1={openssl_hex}"


def test_sign_defaults_to_the_current_time_and_verifies() -> None:
    header = sign(DELIVERED, SECRET)

    assert isinstance(verify(DELIVERED, header, SECRET), MessageStatusEvent)


@pytest.mark.parametrize(
    ("timestamp", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_sign_refuses_timestamps_verify_could_never_accept(timestamp: Any, error: type) -> None:
    with pytest.raises(error):
        sign(DELIVERED, SECRET, timestamp)


def test_sign_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(DELIVERED, "", T)


# --- tampering -----------------------------------------------------------------------------


def test_flipping_any_byte_of_the_body_fails() -> None:
    body = b'{"event":"message.read","data":{"messageId":"msg_1"}}'
    header = _hmac_header(T, body)

    for index in range(len(body)):
        assert _code(_flip(body, index), header) == "signature_mismatch", index


def test_flipping_any_byte_of_the_timestamp_fails() -> None:
    body = b'{"event":"message.read","data":{}}'
    header = _hmac_header(T, body).encode()
    start = len(b"t=")

    # No tolerance, so only the HMAC can reject the changed (still all-digit) t.
    for index in range(start, start + len(str(T))):
        assert _code(body, _flip(header, index).decode(), tolerance=None) == (
            "signature_mismatch"
        ), index


def test_flipping_any_byte_of_the_signature_fails() -> None:
    body = b'{"event":"message.read","data":{}}'
    header = _hmac_header(T, body).encode()
    start = header.index(b"v1=") + len(b"v1=")

    for index in range(start, len(header)):
        assert _code(body, _flip(header, index).decode()) == "signature_mismatch", index


def test_a_wrong_secret_fails() -> None:
    body, header = _signed(DELIVERED)

    assert _code(body, header, secret="whsec_other_secret") == "signature_mismatch"


def test_a_live_secret_cannot_verify_a_test_delivery() -> None:
    body = DELIVERED
    header = _hmac_header(T, body, secret="whsec_live_0000")

    assert _code(body, header, secret="whsec_test_0000") == "signature_mismatch"


def test_the_body_is_decoded_only_after_the_signature_matches() -> None:
    body = b"not json"

    assert _code(body, _hmac_header(T, b"something else")) == "signature_mismatch"
    assert _code(body, _hmac_header(T, body)) == "invalid_json"


# --- field reports -------------------------------------------------------------------------


def test_f16_raw_bytes_verify_and_reserialised_json_does_not() -> None:
    header = f"t={T},v1={F16_OPENSSL_HEX}"
    redumped = json.dumps(json.loads(F16_RAW)).encode()

    event = verify(F16_RAW, header, SECRET, now=T)

    assert isinstance(event, MessageReceivedEvent)
    assert event.data.content == "café 😀 a@b.example"
    assert event.data.to == "+15550100001"
    assert event.data.message_id is None
    assert event.timestamp is None
    assert event.raw["n"] == 1.0
    assert _code(redumped, header) == "signature_mismatch"


def test_f16_a_parsed_dict_is_refused_with_type_error() -> None:
    header = f"t={T},v1={F16_OPENSSL_HEX}"

    with pytest.raises(TypeError, match="raw request body"):
        verify(json.loads(F16_RAW), header, SECRET, now=T)


def test_f16_a_str_body_is_encoded_as_utf8_without_stripping() -> None:
    header = f"t={T},v1={F16_OPENSSL_HEX}"

    assert isinstance(verify(F16_RAW.decode(), header, SECRET, now=T), MessageReceivedEvent)
    # The trailing newline is part of the signed bytes.
    assert _code(F16_RAW.decode().strip(), header) == "signature_mismatch"


@pytest.mark.parametrize("offset", [-299, -300, 30, 300])
def test_f18_small_skew_either_way_is_accepted(offset: int) -> None:
    body = DELIVERED

    event = verify(body, _hmac_header(T + offset, body), SECRET, now=T)

    assert event.event == "message.delivered"


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_f18_timestamps_outside_the_tolerance_are_rejected(offset: int) -> None:
    body = DELIVERED

    # A distinct code: the signature itself is valid.
    assert _code(body, _hmac_header(T + offset, body)) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    "header",
    [
        "t=abc,v1=" + "0" * 64,
        "v1=" + "0" * 64,
        "t=1767225600.5,v1=" + "0" * 64,
        "t=,v1=" + "0" * 64,
        "t=-1767225600,v1=" + "0" * 64,
        "t=1767225600",
        "t=1767225600,v1=",
        "t=1767225600,t=1767225600,v1=" + "0" * 64,
        "t=" + "1" * 5000 + ",v1=" + "0" * 64,
        "garbage",
    ],
)
def test_f18_a_missing_or_non_integer_t_is_a_malformed_signature(header: str) -> None:
    assert _code(DELIVERED, header) == "malformed_signature"


def test_f18_the_header_t_is_signed_exactly_as_received() -> None:
    body = DELIVERED
    padded = f"0{T}"

    assert verify(body, _hmac_header(padded, body), SECRET, now=T).event == "message.delivered"
    assert _code(body, f"t={padded},v1={_hmac_header(T, body).split('v1=')[1]}") == (
        "signature_mismatch"
    )


def test_tolerance_can_be_widened_or_disabled_for_late_retries() -> None:
    body = DELIVERED
    header = _hmac_header(T - 15 * 60, body)

    assert _code(body, header) == "timestamp_out_of_tolerance"
    assert verify(body, header, SECRET, now=T, tolerance=20 * 60).event == "message.delivered"
    assert verify(body, header, SECRET, now=T, tolerance=None).event == "message.delivered"
    assert DEFAULT_TOLERANCE == 300


def test_tolerance_is_checked_against_the_real_clock_by_default() -> None:
    body = DELIVERED

    assert _code(body, _hmac_header(T, body), now=None) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize("tolerance", [-1, float("nan")])
def test_a_negative_or_nan_tolerance_is_a_caller_error(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify(DELIVERED, _hmac_header(T, DELIVERED), SECRET, now=T, tolerance=tolerance)


# --- header parsing ------------------------------------------------------------------------


def test_header_parts_in_any_order_with_spaces_verify() -> None:
    body = DELIVERED
    digest = _hmac_header(T, body).split("v1=")[1]

    for header in [f"v1={digest},t={T}", f"  t = {T} ,  v1={digest}  ", f"t={T},x=y,v1={digest}"]:
        assert verify(body, header, SECRET, now=T).event == "message.delivered", header


def test_any_matching_v1_passes_during_secret_rotation() -> None:
    body = DELIVERED
    good = _hmac_header(T, body).split("v1=")[1]
    old = _hmac_header(T, body, secret="whsec_old").split("v1=")[1]

    assert verify(body, f"t={T},v1={old},v1={good}", SECRET, now=T).event == "message.delivered"
    assert verify(body, f"t={T},v1={good},v1=zz", SECRET, now=T).event == "message.delivered"
    assert _code(body, f"t={T},v1={old},v1=zz") == "signature_mismatch"


def test_a_part_splits_on_its_first_equals_sign() -> None:
    body = DELIVERED
    digest = _hmac_header(T, body).split("v1=")[1]

    assert _code(body, f"t={T},v1={digest}=") == "signature_mismatch"


@pytest.mark.parametrize("header", [None, ""])
def test_an_absent_header_is_a_missing_signature(header: str | None) -> None:
    assert _code(DELIVERED, header) == "missing_signature"


@pytest.mark.parametrize("secret", [None, "", "\ud800"])
def test_an_unusable_secret_is_reported_before_anything_else(secret: str | None) -> None:
    assert _code(DELIVERED, None, secret=secret) == "missing_secret"


def test_no_error_text_contains_the_secret() -> None:
    secret = "whsec_very_private_value_1234"
    body = DELIVERED

    for header in [None, "t=1", _hmac_header(T - 999, body, secret), _hmac_header(T, body)]:
        with pytest.raises(WebhookVerificationError) as caught:
            verify(body, header, secret, now=T)
        assert "very_private" not in str(caught.value)
        assert "very_private" not in repr(caught.value)


# --- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", ["héllo", "日本語のテキスト", "emoji 😀👍🏽", "rtl مرحبا", "nul \x00 and \u2028"]
)
def test_unicode_bodies_verify_as_bytes_and_as_str(content: str) -> None:
    text = json.dumps(
        {"event": "message.received", "data": {"content": content}}, ensure_ascii=False
    )
    header = _hmac_header(T, text.encode("utf-8"))

    for body in (text.encode("utf-8"), text, bytearray(text.encode("utf-8"))):
        event = verify(body, header, SECRET, now=T)
        assert isinstance(event, MessageReceivedEvent)
        assert event.data.content == content


def test_a_str_with_lone_surrogates_is_a_mismatch_not_a_crash() -> None:
    assert _code("{\ud800}", _hmac_header(T, b"{}")) == "signature_mismatch"


@pytest.mark.parametrize("body", [{"event": "x"}, 12, None, ["a"], memoryview(b"{}")])
def test_bodies_that_are_not_bytes_or_str_raise_type_error(body: Any) -> None:
    with pytest.raises(TypeError):
        verify(body, _hmac_header(T, b"{}"), SECRET, now=T)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b"[1, 2]", "invalid_payload"),
        (b'"message.sent"', "invalid_payload"),
        (b'{"data": {}}', "invalid_payload"),
        (b'{"event": 5, "data": {}}', "invalid_payload"),
        (b'{"event": "message.sent"}', "invalid_payload"),
        (b'{"event": "message.sent", "data": []}', "invalid_payload"),
        (b'{"event": "message.sent", "data": {}, "timestamp": 5}', "invalid_payload"),
        (b'{"event": "message.sent", "data": {}, "timestamp": "yesterday"}', "invalid_payload"),
    ],
)
def test_signed_bodies_that_are_not_events_have_their_own_codes(body: bytes, code: str) -> None:
    assert _code(body, _hmac_header(T, body)) == code


# --- typed events --------------------------------------------------------------------------


def test_message_failed_event_carries_every_documented_field() -> None:
    data = {
        "messageId": "msg_9",
        "from": "+15550100000",
        "to": "120363000000000000@g.us",
        "isGroup": True,
        "groupId": "120363000000000000@g.us",
        "status": "failed",
        "source": "api",
        "environment": "test",
        "sentAt": "2026-01-01T00:00:01Z",
        "deliveredAt": None,
        "readAt": None,
        "failedAt": "2026-01-01T00:00:02.1234567Z",
        "errorCode": "NOT_GROUP_MEMBER",
        "errorMessage": "not a member",
    }
    body, header = _signed(_envelope("message.failed", data))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, MessageStatusEvent)
    assert event.timestamp == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert event.data == MessageStatusData(
        message_id="msg_9",
        from_number="+15550100000",
        to="120363000000000000@g.us",
        status="failed",
        is_group=True,
        group_id="120363000000000000@g.us",
        source="api",
        environment="test",
        content=None,
        sent_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=timezone.utc),
        delivered_at=None,
        read_at=None,
        failed_at=datetime(2026, 1, 1, 0, 0, 2, 123456, tzinfo=timezone.utc),
        error_code="NOT_GROUP_MEMBER",
        error_message="not a member",
    )
    assert event.raw["data"] == data


@pytest.mark.parametrize("name", ["message.sent", "message.delivered", "message.read"])
def test_each_message_status_event_is_typed(name: str) -> None:
    body, header = _signed(_envelope(name, {"messageId": "msg_1", "status": name[8:]}))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, MessageStatusEvent)
    assert (event.event, event.data.status) == (name, name[8:])


def test_the_sdk_0_1_0_message_shape_still_parses() -> None:
    data = {"id": "msg_old", "from": "+1", "to": "+2", "content": "hi", "mediaUrls": []}
    body, header = _signed(_envelope("message.sent", {**data, "status": "sent"}))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, MessageStatusEvent)
    assert (event.data.message_id, event.data.content) == ("msg_old", "hi")


def test_missing_optional_fields_and_unknown_values_pass_through() -> None:
    data = {"messageId": "msg_1", "status": "archived", "errorCode": "NEW_CODE", "extra": {}}
    body, header = _signed(_envelope("message.sent", data))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, MessageStatusEvent)
    assert (event.data.status, event.data.error_code) == ("archived", "NEW_CODE")
    assert event.data.from_number is None
    assert event.data.sent_at is None
    assert event.data.is_group is None


def test_message_received_event() -> None:
    data = {
        "messageId": "inmsg_1",
        "from": "+2",
        "to": "+1",
        "content": "hello",
        "type": "hologram",
        "isGroup": False,
        "groupId": None,
        "receivedAt": "2026-01-01T00:00:00+02:00",
    }
    body, header = _signed(_envelope("message.received", data))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, MessageReceivedEvent)
    assert event.data == InboundMessageData(
        message_id="inmsg_1",
        from_number="+2",
        to="+1",
        content="hello",
        type="hologram",
        is_group=False,
        group_id=None,
        received_at=datetime(2025, 12, 31, 22, tzinfo=timezone.utc),
    )


def test_message_outgoing_event_has_no_message_id() -> None:
    data = {"from": "+1", "to": "+2", "content": "taking over", "type": "text", "source": "manual"}
    body, header = _signed(_envelope("message.outgoing", {**data, "sentAt": "2026-01-01T00:00Z"}))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, MessageOutgoingEvent)
    assert (event.data.source, event.data.content) == ("manual", "taking over")
    assert event.data.sent_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert not hasattr(event.data, "message_id")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "phone.connected",
            {
                "phoneId": "ph_1",
                "phoneNumber": "+1",
                "displayName": "Front desk",
                "status": "connected",
                "lastConnectedAt": "2026-01-01T00:00:00Z",
                "lastDisconnectedAt": None,
            },
        ),
        ("phone.connected", {"id": "ph_1", "phoneNumber": "+1", "connectionStatus": "connected"}),
        ("phone.disconnected", {"id": "ph_1", "phoneNumber": "+1", "status": "disconnected"}),
    ],
)
def test_phone_events_in_every_known_shape(name: str, data: dict[str, Any]) -> None:
    body, header = _signed(_envelope(name, data))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, PhoneEvent)
    assert (event.event, event.data.phone_id, event.data.phone_number) == (name, "ph_1", "+1")
    assert event.data.status == name.split(".")[1]


def test_an_unknown_event_name_becomes_an_unknown_event_with_its_data() -> None:
    body, header = _signed(_envelope("group.created", {"groupId": "g@g.us", "n": 3}))

    event = verify(body, header, SECRET, now=T)

    assert isinstance(event, UnknownEvent)
    assert event.event == "group.created"
    assert event.data == {"groupId": "g@g.us", "n": 3}


@pytest.mark.parametrize(
    ("name", "data", "field"),
    [
        ("message.sent", {"messageId": 7}, "data.messageId"),
        ("message.read", {"isGroup": "yes"}, "data.isGroup"),
        ("message.failed", {"failedAt": 1767225600}, "data.failedAt"),
        ("message.delivered", {"deliveredAt": "soon"}, "data.deliveredAt"),
        ("message.received", {"content": ["a"]}, "data.content"),
        ("message.outgoing", {"to": {"n": 1}}, "data.to"),
        ("phone.connected", {"id": None, "phoneId": 1}, "data.phoneId"),
    ],
)
def test_a_field_of_the_wrong_type_is_an_invalid_payload_naming_it(
    name: str, data: dict[str, Any], field: str
) -> None:
    body, header = _signed(_envelope(name, data))

    with pytest.raises(WebhookVerificationError) as caught:
        verify(body, header, SECRET, now=T)

    assert caught.value.code == "invalid_payload"
    assert field in str(caught.value)


def test_events_are_immutable_and_usable_as_dedupe_keys() -> None:
    body, header = _signed(_envelope("message.read", {"messageId": "msg_1"}))
    first = verify(body, header, SECRET, now=T)
    again = verify(body, header, SECRET, now=T)
    unknown_body, unknown_header = _signed(_envelope("x.y", {"a": 1}))

    assert {first, again} == {first}
    assert isinstance(hash(verify(unknown_body, unknown_header, SECRET, now=T)), int)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.event = "message.sent"  # type: ignore[misc]


def test_importing_webhooks_pulls_in_no_web_framework() -> None:
    code = (
        "import sys, chatmaid_async; before = set(sys.modules); "
        "import chatmaid_async.webhooks; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}))"
    )
    added = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, text=True
    ).stdout

    for framework in ("aiohttp", "fastapi", "starlette", "httpx"):
        assert f"'{framework}'" not in added


# --- property: nothing but WebhookVerificationError escapes --------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
_data_keys = st.sampled_from(
    ["messageId", "id", "phoneId", "from", "to", "status", "isGroup", "sentAt", "receivedAt",
     "lastConnectedAt", "connectionStatus", "content", "type"]
)  # fmt: skip
_events = st.sampled_from(
    ["message.sent", "message.failed", "message.received", "message.outgoing",
     "phone.connected", "phone.disconnected", "other"]
)  # fmt: skip
_payloads = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"event": _events | _json, "data": st.dictionaries(_data_keys, _json) | _json},
        optional={"timestamp": st.text() | _json},
    ),
)


# Any code point, lone surrogates included (and made frequent): a str body may come from a
# lenient decoder.
_any_text = st.text(st.characters(exclude_categories=())) | st.text('{}"é\ud800\udc00', max_size=8)


@settings(database=None, max_examples=300, deadline=None)
@given(body=st.binary() | _any_text, header=st.none() | _any_text)
def test_any_header_and_body_raise_only_verification_errors(
    body: bytes | str, header: str | None
) -> None:
    # Any other exception fails the test.
    with contextlib.suppress(WebhookVerificationError):
        verify(body, header, SECRET, now=T)


# Near-valid headers reach the later steps: a fresh t, hex-like or arbitrary v1 values.
_t_values = st.one_of(
    st.integers(T - 400, T + 400).map(str),
    st.text("0123456789\u0663", min_size=1, max_size=30),  # U+0663: an Arabic-Indic digit
    st.text("0123456789.-+ eE", max_size=25),
)
_v1_values = st.text(max_size=70) | st.text("0123456789abcdefABCDEF", min_size=63, max_size=65)


@settings(database=None, max_examples=500, deadline=None)
@given(
    t=_t_values,
    v1s=st.lists(_v1_values, max_size=3),
    extra=st.lists(st.text(), max_size=2),
    body=st.binary(max_size=64) | _any_text,
    tolerance=st.sampled_from([None, DEFAULT_TOLERANCE]),
    data=st.data(),
)
def test_headers_close_to_valid_raise_only_verification_errors(
    t: str,
    v1s: list[str],
    extra: list[str],
    body: bytes | str,
    tolerance: float | None,
    data: st.DataObject,
) -> None:
    parts = data.draw(st.permutations([f"t={t}", *(f"v1={v}" for v in v1s), *extra]))

    with contextlib.suppress(WebhookVerificationError):
        verify(body, ",".join(parts), SECRET, now=T, tolerance=tolerance)


@settings(database=None, max_examples=500, deadline=None)
@given(payload=_payloads)
def test_any_signed_payload_is_an_event_or_a_verification_error(payload: object) -> None:
    body = json.dumps(payload).encode()

    outcome: WebhookEvent | str
    try:
        outcome = verify(body, sign(body, SECRET, T), SECRET, now=T)
    except WebhookVerificationError as exc:
        outcome = exc.code

    # The body is valid JSON, so only its shape or a field type can be wrong.
    if isinstance(outcome, str):
        assert outcome == "invalid_payload"
    else:
        assert outcome.raw == json.loads(body)
