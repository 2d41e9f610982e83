"""Idempotency keys for sends that bring none: random (version 4) UUIDs in canonical text.

Random bytes come from the OS a few kilobytes at a time. Each read is a system call, and on a
busy client one call per send costs several times what writing the key out does. The keys
written from one read wait in a deque, whose ``popleft`` is atomic, so threads sharing this
module never get the same key.

A forked child must drop the keys it inherited, as its parent will hand those out too, and not
every fork runs Python's fork hooks (uWSGI's prefork workers are forked from C). So each draw
first asks whether this process is a fork of the one that read the keys: on Linux, through a
page the kernel zeroes in every child (``MADV_WIPEONFORK``), which costs a memory read;
elsewhere, by comparing process ids.

A snapshot of a process cannot be noticed that way: every restore of it would hold the same
keys. Under AWS Lambda SnapStart, the one such platform that says so in the environment, no key
is read ahead; elsewhere, a process that will be snapshotted should draw no key before it is.
"""

from __future__ import annotations

import collections
import mmap
import os
import platform
import sys

__all__ = ["new_idempotency_key"]

# Every restore of one snapshot (AWS Lambda SnapStart) would hand out the keys read ahead
# before it was taken, so there each key is read on its own.
RESTORED_FROM_SNAPSHOTS = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"
KEYS_PER_READ = 1 if RESTORED_FROM_SNAPSHOTS else 128
# Linux's value on every architecture but PA-RISC; Python's mmap module does not name it.
_MADV_WIPEONFORK = 18

_spare_keys: collections.deque[str] = collections.deque()


def new_idempotency_key() -> str:
    """A random (version 4) UUID in canonical text, as ``str(uuid.uuid4())`` gives."""
    _drop_keys_inherited_by_fork()
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


def _wipe_on_fork_page() -> mmap.mmap | None:
    # A private page marked MADV_WIPEONFORK reads as zeros in any child, however it was forked.
    if sys.platform != "linux" or platform.machine().startswith("parisc"):
        return None
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE)
        page.madvise(_MADV_WIPEONFORK)
    except (OSError, ValueError, AttributeError):
        # A kernel before 4.14 refuses the advice; the process id check serves instead.
        return None
    page[0] = 1
    return page


_marker = _wipe_on_fork_page()
_owner_pid = os.getpid()


def _drop_keys_if_marker_wiped() -> None:
    assert _marker is not None
    if not _marker[0]:
        # Keys first, then the mark: no thread of the child may see the mark set while the
        # inherited keys are still there.
        _spare_keys.clear()
        _marker[0] = 1


def _drop_keys_if_pid_changed() -> None:
    global _owner_pid
    pid = os.getpid()
    if pid != _owner_pid:
        _spare_keys.clear()
        _owner_pid = pid


_drop_keys_inherited_by_fork = (
    _drop_keys_if_pid_changed if _marker is None else _drop_keys_if_marker_wiped
)
