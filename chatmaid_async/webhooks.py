"""Verify Chatmaid webhook deliveries and turn them into typed events.

Chatmaid signs each delivery with ``X-Chatmaid-Signature: t=<unix seconds>,v1=<hex>``, where
``v1`` is the HMAC-SHA256, keyed with your endpoint's secret, of ``"<t>." + raw body``. Pass
:func:`verify` the body exactly as received (``await request.body()``, ``await
request.read()``): parsed and re-dumped JSON differs from the signed bytes, so a dict is refused.

Deliveries repeat (retries after 1, 5 and 15 minutes, and no delivery id), so receivers must be
idempotent. Whether a retry is re-signed with a fresh ``t`` is undocumented: if it is not, the
default 300 s tolerance rejects late retries; widen ``tolerance`` or pass ``None`` to accept them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time

from chatmaid_async._limits import redact_key
from chatmaid_async._webhook_events import (
    InboundMessageData,
    MessageOutgoingEvent,
    MessageReceivedEvent,
    MessageStatusData,
    MessageStatusEvent,
    MessageStatusEventName,
    OutgoingMessageData,
    PhoneData,
    PhoneEvent,
    PhoneEventName,
    UnknownEvent,
    WebhookEvent,
    parse_event,
)
from chatmaid_async.errors import WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "InboundMessageData",
    "MessageOutgoingEvent",
    "MessageReceivedEvent",
    "MessageStatusData",
    "MessageStatusEvent",
    "MessageStatusEventName",
    "OutgoingMessageData",
    "PhoneData",
    "PhoneEvent",
    "PhoneEventName",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookVerificationError",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Chatmaid-Signature"
# Not signed: dispatch on the ``event`` field of the verified body instead.
EVENT_HEADER = "X-Chatmaid-Event"
# Seconds |now - t| may reach, as in the official JS SDK.
DEFAULT_TOLERANCE = 300

# ASCII digits only; 18 digits keep int() far from its huge-string guard.
_UNIX_SECONDS = re.compile(r"[0-9]{1,18}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def verify(
    body: bytes | bytearray | str,
    signature: str | None,
    secret: str | None,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """Check a delivery's signature and freshness, then return it as a typed event.

    ``body`` is the raw request body: ``bytes`` (or ``bytearray``) as received, or a ``str``
    that is encoded as UTF-8 unchanged. ``signature`` is the ``X-Chatmaid-Signature`` header
    (None or ``""`` when absent). ``tolerance`` bounds ``|now - t|`` in seconds, both ways;
    ``None`` turns the check off. ``now`` replaces ``time.time()``, for tests.

    Every problem with the delivery raises :class:`WebhookVerificationError`; its ``code`` is
    ``missing_secret`` (empty or None secret), ``missing_signature``, ``malformed_signature``,
    ``timestamp_out_of_tolerance``, ``signature_mismatch``, ``invalid_json`` or
    ``invalid_payload``. The body is decoded only after the signature matches. Mistakes in the
    call itself raise instead: ``TypeError`` for a body that is not bytes or str (a parsed dict
    cannot be verified: never re-serialise) or a non-str signature or secret, ``ValueError``
    for a negative or NaN ``tolerance`` or a non-finite ``now``.
    """
    _check_argument_types(body, signature, secret)
    _check_clock_arguments(tolerance, now)
    key = _secret_key(secret)
    if not signature:
        raise WebhookVerificationError("missing_signature", f"no {SIGNATURE_HEADER} header")

    timestamp, candidates = _parse_signature_header(signature)
    if tolerance is not None:
        _check_tolerance(int(timestamp), tolerance, time.time() if now is None else now)

    raw = _body_bytes(body)
    expected = _hex_digest(key, timestamp, raw)
    # compare_digest on every candidate: the time taken must not depend on where they differ.
    if not any([hmac.compare_digest(expected, candidate) for candidate in candidates]):
        raise WebhookVerificationError(
            "signature_mismatch",
            f"no v1 signature matches this body with secret {redact_key(secret)}; pass the raw "
            "request body as received and the secret of this endpoint (test and live differ)",
        )

    return parse_event(_decode_json(raw))


def sign(body: bytes | bytearray | str, secret: str, timestamp: int | None = None) -> str:
    """Build an ``X-Chatmaid-Signature`` value for ``body``, as Chatmaid would.

    For tests and local simulations. ``timestamp`` defaults to ``int(time.time())``; a ``str``
    body is signed as its UTF-8 encoding. Raises ``TypeError`` for a body that is not bytes or
    str and ``ValueError`` for an empty secret, a negative timestamp or text that cannot be
    encoded (lone surrogates).
    """
    _check_argument_types(body, None, secret)
    if not secret:
        raise ValueError("secret must be a non-empty string")
    t = int(time.time()) if timestamp is None else timestamp
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"timestamp must be an int, got {type(t).__name__}")
    if t < 0:
        raise ValueError("timestamp must not be negative")

    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    digest = _hex_digest(secret.encode("utf-8"), str(t), raw)
    return f"t={t},v1={digest}"


def _check_argument_types(body: object, signature: object, secret: object) -> None:
    # A dict here means the JSON was parsed already; re-dumping it cannot reproduce the
    # signed bytes (F16), so refuse loudly instead of failing as a bad signature.
    if not isinstance(body, (bytes, bytearray, str)):
        raise TypeError(
            f"body must be the raw request body as bytes or str, not {type(body).__name__}; "
            "use e.g. `await request.body()` and never re-serialise parsed JSON"
        )
    if signature is not None and not isinstance(signature, str):
        raise TypeError(f"signature must be a str or None, not {type(signature).__name__}")
    if secret is not None and not isinstance(secret, str):
        raise TypeError(f"secret must be a str, not {type(secret).__name__}")


def _secret_key(secret: str | None) -> bytes:
    try:
        key = (secret or "").encode("utf-8")
    except UnicodeEncodeError:
        key = b""
    if not key:
        raise WebhookVerificationError(
            "missing_secret",
            "no usable webhook secret: it is empty or not valid text; set the endpoint's "
            "secret from the dashboard",
        )
    return key


def _parse_signature_header(header: str) -> tuple[str, list[str]]:
    """Split ``t=...,v1=...`` into the timestamp text and the ``v1`` values.

    Parts may come in any order with spaces around them; each splits on its first ``=``.
    Unknown keys are ignored (room for a future scheme), so are ``v1`` values that are not
    SHA-256 hex: they can never match.
    """
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and value:
            candidates.append(value)

    if len(timestamps) != 1 or not _UNIX_SECONDS.fullmatch(timestamps[0]):
        raise WebhookVerificationError(
            "malformed_signature",
            "expected exactly one t=<integer unix seconds> in the signature header",
        )
    if not candidates:
        raise WebhookVerificationError(
            "malformed_signature", "no v1=<hex> signature in the signature header"
        )
    return timestamps[0], [c for c in candidates if _SHA256_HEX.fullmatch(c)]


def _check_clock_arguments(tolerance: float | None, now: float | None) -> None:
    # NaN would make every comparison false and so accept any timestamp.
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"tolerance must be None or >= 0 seconds, got {tolerance!r}")
    if now is not None and not math.isfinite(now):
        raise ValueError(f"now must be a finite unix time, got {now!r}")


def _check_tolerance(timestamp: int, tolerance: float, now: float) -> None:
    # Both directions: a sender clock running ahead is as suspect as an old capture (F18).
    skew = now - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "in the future"
        raise WebhookVerificationError(
            "timestamp_out_of_tolerance",
            f"signature timestamp is {abs(skew):.0f}s {direction}, tolerance is {tolerance}s; "
            "retries may keep their first timestamp, widen tolerance to accept them",
        )


def _body_bytes(body: bytes | bytearray | str) -> bytes:
    if not isinstance(body, str):
        return bytes(body)
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: no received body decodes to this, so nothing signed can match.
        raise WebhookVerificationError(
            "signature_mismatch", "body str is not valid Unicode text; pass the raw bytes"
        ) from None


def _hex_digest(key: bytes, timestamp: str, body: bytes) -> str:
    # The header's t exactly as received: "0012" and "12" sign different strings.
    signed = timestamp.encode("ascii") + b"." + body
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def _decode_json(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError covers UnicodeDecodeError and JSONDecodeError.
        raise WebhookVerificationError("invalid_json", "the body is not UTF-8 JSON") from None
