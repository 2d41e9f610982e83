"""Argument checks that run before anything is sent (contract §3.1 and §12).

Each check raises :class:`ValidationError` naming the argument and the rule. They are no
stricter than the server: a group JID is a valid recipient, and a dashboard phone id has no
documented format beyond being a non-empty token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from chatmaid_async.errors import ValidationError

__all__ = [
    "MAX_CONTENT_LENGTH",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_PAGE_SIZE",
    "PERIODS",
    "check_content",
    "check_id",
    "check_idempotency_key",
    "check_media_urls",
    "check_page",
    "check_page_size",
    "check_period",
    "check_phone_ref",
    "check_recipient",
]

MAX_CONTENT_LENGTH = 4096
MAX_IDEMPOTENCY_KEY_LENGTH = 64
MAX_PAGE_SIZE = 100
PERIODS = ("day", "week", "month")

# ASCII digits only: \d would let Arabic-Indic and other digits through to a 400.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
GROUP_JID = re.compile(r"[0-9]+(?:-[0-9]+)?@g\.us")
# A dashboard id or message id: printable, no whitespace; the API defines no stricter format.
_TOKEN = re.compile(r"[^\s/?#]+")


def check_id(field: str, value: object) -> str:
    """A message or phone id: non-empty, without whitespace, ``/``, ``?``, ``#``; not ``..``."""
    text = _check_str(field, value)
    if not _TOKEN.fullmatch(text):
        raise ValidationError(field, "must be an id without spaces, '/', '?' or '#'")
    if text in (".", ".."):
        # A dot segment would move the request to another path once URLs are normalised.
        raise ValidationError(field, "must be an id, not '.' or '..'")
    return text


def check_phone_ref(field: str, value: object) -> str:
    """A sender phone: an E.164 number (``+15551234567``) or a dashboard phone id."""
    text = _check_str(field, value)
    # Only a leading "+" marks a number: dashboard ids may start with a digit (507f1f77…).
    if text.startswith("+"):
        if not E164.fullmatch(text):
            raise ValidationError(field, "must be an E.164 number like +15551234567 or a phone id")
        return text
    return check_id(field, text)


def check_recipient(field: str, value: object) -> str:
    """A recipient: an E.164 number or a WhatsApp group JID (``…@g.us``)."""
    text = _check_str(field, value)
    if not (E164.fullmatch(text) or GROUP_JID.fullmatch(text)):
        raise ValidationError(
            field, "must be an E.164 number like +15551234567 or a group id ending in @g.us"
        )
    return text


def check_content(content: object, media_urls: object) -> tuple[str | None, list[str] | None]:
    """``content`` and ``media_urls``: at least one given, text within 4096 characters."""
    urls = check_media_urls(media_urls)
    if content is not None:
        if not isinstance(content, str):
            raise ValidationError("content", f"must be a string, not {type(content).__name__}")
        if _utf16_length(content) > MAX_CONTENT_LENGTH:
            raise ValidationError("content", f"must be at most {MAX_CONTENT_LENGTH} characters")
    if not content and not urls:
        raise ValidationError("content", "give content or media_urls (neither was given)")
    return content, urls


def check_media_urls(value: object) -> list[str] | None:
    """Absolute ``https`` URLs, as a list (a lone string is refused, not split into letters)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValidationError("media_urls", "must be a list of https URLs")
    urls = list(value)
    for url in urls:
        if not isinstance(url, str) or not _is_https_url(url):
            raise ValidationError("media_urls", "each must be an absolute https:// URL")
    return urls


def check_idempotency_key(value: object) -> str:
    """A caller's idempotency key: 1 to 64 characters."""
    text = _check_str("idempotency_key", value)
    if len(text) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationError(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    return text


def check_page(value: object) -> int:
    """A 1-based page number."""
    number = _check_int("page", value)
    if number < 1:
        raise ValidationError("page", "must be 1 or more")
    return number


def check_page_size(value: object) -> int:
    """A page size from 1 to 100."""
    number = _check_int("limit", value)
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise ValidationError("limit", f"must be from 1 to {MAX_PAGE_SIZE}")
    return number


def check_period(value: object) -> str:
    """A usage period: day, week or month."""
    if value not in PERIODS:
        raise ValidationError("period", "must be one of day, week, month")
    return str(value)


def check_optional_filter(field: str, value: object) -> str | None:
    """An optional list filter: None (not sent) or a non-empty string."""
    return None if value is None else check_id(field, value)


def _check_str(field: str, value: object) -> str:
    if type(value) is not str:
        if not isinstance(value, str):
            raise ValidationError(field, f"must be a string, not {type(value).__name__}")
        # A str subclass such as a MessageStatus member travels as its text, not
        # "Class.MEMBER".
        value = str.__str__(value)
    if not value.strip():
        raise ValidationError(field, "must not be empty")
    return value


def _check_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, not {type(value).__name__}")
    return value


def _utf16_length(text: str) -> int:
    # The server counts UTF-16 code units (JavaScript string length), so an emoji counts twice.
    if len(text) <= MAX_CONTENT_LENGTH // 2:
        return len(text)
    # surrogatepass: a lone surrogate (valid in JSON and JS) is one code unit, not an error.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _is_https_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and not any(c.isspace() for c in url)
