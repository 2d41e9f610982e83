"""Idempotency keys for sends that bring none: random (version 4) UUIDs in canonical text.

Random bytes come from the OS a few kilobytes at a time. Each read is a system call, and on a
busy client one call per send costs several times what writing the key out does. The keys
written from one read wait in a deque, whose ``popleft`` is atomic, so threads sharing this
module never get the same key; a forked child drops the keys it inherited, as its parent will
hand those out too.
"""

from __future__ import annotations

import collections
import os

__all__ = ["new_idempotency_key"]

KEYS_PER_READ = 128

_spare_keys: collections.deque[str] = collections.deque()


def new_idempotency_key() -> str:
    """A random (version 4) UUID in canonical text, as ``str(uuid.uuid4())`` gives."""
    while True:
        try:
            return _spare_keys.popleft()
        except IndexError:
            # Another thread may take some of these first: hence the loop.
            _spare_keys.extend(_random_uuid4_texts(KEYS_PER_READ))


def _random_uuid4_texts(count: int) -> list[str]:
    digits = os.urandom(16 * count).hex()
    return [_uuid4_text(digits[start : start + 32]) for start in range(0, 32 * count, 32)]


def _uuid4_text(digits: str) -> str:
    # The version nibble becomes 4; the variant's two top bits become 10 (8, 9, a or b).
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_spare_keys.clear)
