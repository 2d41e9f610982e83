"""Generated idempotency keys: never the same key twice, across threads or a fork."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from chatmaid_async import _idempotency_keys
from chatmaid_async._idempotency_keys import KEYS_PER_READ, new_idempotency_key


def test_threads_drawing_keys_at_once_never_share_one() -> None:
    per_thread = 3 * KEYS_PER_READ
    drawn: list[list[str]] = []
    start = threading.Barrier(8)

    def draw() -> None:
        start.wait()
        drawn.append([new_idempotency_key() for _ in range(per_thread)])

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    keys = [key for batch in drawn for key in batch]
    assert len(keys) == 8 * per_thread
    assert len(set(keys)) == len(keys)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_does_not_reuse_the_keys_its_parent_will_send() -> None:
    new_idempotency_key()  # the parent now holds keys read ahead
    assert _idempotency_keys._spare_keys

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next keys to the parent and leave at once
        try:
            os.close(read_end)
            os.write(write_end, " ".join(new_idempotency_key() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_keys = pipe.read().split()
    os.waitpid(pid, 0)

    parent_keys = [new_idempotency_key() for _ in range(KEYS_PER_READ)]
    assert len(child_keys) == 5
    assert all(uuid.UUID(key).version == 4 for key in child_keys)
    assert not set(child_keys) & set(parent_keys)


def test_keys_are_read_ahead_in_blocks_not_one_system_call_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[int] = []
    real_urandom = os.urandom

    def counting_urandom(size: int) -> bytes:
        reads.append(size)
        return real_urandom(size)

    _idempotency_keys._spare_keys.clear()
    monkeypatch.setattr(os, "urandom", counting_urandom)

    keys = [new_idempotency_key() for _ in range(2 * KEYS_PER_READ + 1)]

    # One read of the OS's random source per block of keys, not one per key.
    assert reads == [16 * KEYS_PER_READ] * 3
    assert len(set(keys)) == len(keys)
