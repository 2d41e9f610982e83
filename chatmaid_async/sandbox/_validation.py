"""Request validation: the send body, pagination and the enum query parameters.

Each parser returns clean values or raises :class:`ApiError` 400 listing every broken rule,
worded the way the API words them (``"to must be in E.164 format"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import urlsplit

import attrs

from chatmaid_async.sandbox._errors import ApiError

__all__ = [
    "MAX_CONTENT_CHARS",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_PAGE_SIZE",
    "SendCommand",
    "is_e164",
    "is_group_jid",
    "parse_page",
    "parse_period",
    "parse_send_body",
    "parse_status_filter",
]

MAX_CONTENT_CHARS = 4096
MAX_IDEMPOTENCY_KEY_CHARS = 64
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MESSAGE_STATUSES = ("pending", "sent", "delivered", "read", "failed")
USAGE_PERIODS = ("day", "week", "month")

# ASCII digits only: ``\d`` would also accept Arabic-Indic and other Unicode digits.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_GROUP_JID = re.compile(r"[0-9]+(-[0-9]+)?@g\.us")
_SEND_FIELDS = frozenset({"fromPhoneId", "to", "content", "mediaUrls", "idempotencyKey"})


def is_e164(value: str) -> bool:
    """Whether ``value`` is an E.164 number (``+`` then 7 to 15 digits)."""
    return _E164.fullmatch(value) is not None


def is_group_jid(value: str) -> bool:
    """Whether ``value`` is a WhatsApp group JID (``<digits>[-<digits>]@g.us``)."""
    return _GROUP_JID.fullmatch(value) is not None


@attrs.frozen(slots=True)
class SendCommand:
    """A validated ``POST /v1/messages/send`` body."""

    from_phone_id: str
    to: str
    content: str | None
    media_urls: tuple[str, ...]
    idempotency_key: str | None

    @property
    def is_group(self) -> bool:
        """Whether the recipient is a group JID."""
        return is_group_jid(self.to)


def _bad_request(problems: list[str]) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, problems)


def parse_send_body(body: object) -> SendCommand:
    """Validate a send body; raises ``ApiError`` 400 naming every broken rule."""
    if not isinstance(body, dict):
        raise _bad_request(["request body must be a JSON object"])

    problems = [f"property {name} should not exist" for name in body if name not in _SEND_FIELDS]
    from_phone_id = _required_string(body, "fromPhoneId", problems)
    to = _recipient(body, problems)
    content = _content(body, problems)
    media_urls = _media_urls(body, problems)
    idempotency_key = _idempotency_key(body, problems)

    if not problems and not content and not media_urls:
        problems.append("content or mediaUrls is required")
    if problems:
        raise _bad_request(problems)
    return SendCommand(str(from_phone_id), str(to), content, media_urls, idempotency_key)


def _required_string(body: Mapping[str, object], name: str, problems: list[str]) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        problems.append(f"{name} should not be empty")
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
        return None
    return value


def _recipient(body: Mapping[str, object], problems: list[str]) -> str | None:
    to = _required_string(body, "to", problems)
    if to is not None and not (is_e164(to) or is_group_jid(to)):
        problems.append("to must be in E.164 format (e.g. +15557654321) or a group JID (…@g.us)")
        return None
    return to


def _content(body: Mapping[str, object], problems: list[str]) -> str | None:
    content = body.get("content")
    if content is None:
        return None
    if not isinstance(content, str):
        problems.append("content must be a string")
        return None

    # The real API runs on JavaScript: length is in UTF-16 code units, so an emoji counts twice.
    if len(content.encode("utf-16-le", "surrogatepass")) // 2 > MAX_CONTENT_CHARS:
        problems.append(f"content must be shorter than or equal to {MAX_CONTENT_CHARS} characters")
    return content


def _media_urls(body: Mapping[str, object], problems: list[str]) -> tuple[str, ...]:
    urls = body.get("mediaUrls")
    if urls is None:
        return ()
    if not isinstance(urls, list):
        problems.append("mediaUrls must be an array")
        return ()
    if not all(isinstance(url, str) and _is_https_url(url) for url in urls):
        problems.append("each value in mediaUrls must be a public HTTPS URL")
        return ()
    return tuple(str(url) for url in urls)


def _is_https_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def _idempotency_key(body: Mapping[str, object], problems: list[str]) -> str | None:
    key = body.get("idempotencyKey")
    if key is None:
        return None
    if not isinstance(key, str):
        problems.append("idempotencyKey must be a string")
        return None
    if not key:
        problems.append("idempotencyKey should not be empty")
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        problems.append(
            f"idempotencyKey must be shorter than or equal to {MAX_IDEMPOTENCY_KEY_CHARS} "
            "characters"
        )
        return None
    return key


def parse_page(query: Mapping[str, str]) -> tuple[int, int]:
    """Read ``page`` (default 1) and ``limit`` (default 20, at most 100) from a query."""
    problems: list[str] = []
    page = _positive_int(query, "page", 1, problems)
    limit = _positive_int(query, "limit", DEFAULT_PAGE_SIZE, problems)
    if limit > MAX_PAGE_SIZE:
        problems.append(f"limit must not be greater than {MAX_PAGE_SIZE}")
    if problems:
        raise _bad_request(problems)
    return page, limit


def _positive_int(query: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    raw = query.get(name)
    if raw is None:
        return default

    # ASCII digits only, as a query-string integer parser would take them.
    text = raw.strip()
    if not re.fullmatch(r"-?[0-9]+", text):
        problems.append(f"{name} must be an integer number")
        return default
    value = int(text)
    if value < 1:
        problems.append(f"{name} must not be less than 1")
        return default
    return value


def parse_status_filter(query: Mapping[str, str]) -> str | None:
    """Read the optional ``status`` filter of the message list."""
    status = query.get("status")
    if status is None:
        return None
    if status not in MESSAGE_STATUSES:
        raise _bad_request(
            [f"status must be one of the following values: {', '.join(MESSAGE_STATUSES)}"]
        )
    return status


def parse_period(query: Mapping[str, str]) -> str:
    """Read the usage ``period`` (default ``month``)."""
    period = query.get("period", "month")
    if period not in USAGE_PERIODS:
        raise _bad_request(
            [f"period must be one of the following values: {', '.join(USAGE_PERIODS)}"]
        )
    return period
