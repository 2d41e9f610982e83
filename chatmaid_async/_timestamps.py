"""ISO 8601 timestamps as the API writes them, always timezone-aware.

``datetime.fromisoformat`` before Python 3.11 rejects ``Z`` and more than six fractional
digits (F21), so the string is normalised first.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

__all__ = ["parse_timestamp"]

_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: str) -> datetime:
    """Parse an API timestamp into an aware datetime (UTC when no offset is given).

    Raises ``ValueError`` for anything that is not an ISO 8601 date-time.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed
