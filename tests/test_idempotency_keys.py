"""Generated idempotency keys: never the same key twice, across threads or a fork."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable

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


def _fork_with_python_hooks() -> int:
    return os.fork()


def _fork_from_c() -> int:
    # As uWSGI forks its workers: libc's fork(), which runs none of Python's fork hooks.
    # PyDLL keeps the GIL held across the call, so the child wakes up holding it.
    return int(ctypes.PyDLL(None).fork())


def _keys_drawn_in_a_child(fork: Callable[[], int], count: int) -> list[str]:
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:  # the child: send its next keys to the parent and leave at once
        try:
            os.close(read_end)
            os.write(write_end, " ".join(new_idempotency_key() for _ in range(count)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        keys = pipe.read().split()
    os.waitpid(pid, 0)
    return keys


FORKS = [
    pytest.param(_fork_with_python_hooks, id="os.fork"),
    pytest.param(
        _fork_from_c,
        id="libc-fork",
        marks=pytest.mark.skipif(sys.platform != "linux", reason="libc fork() via ctypes"),
    ),
]
DETECTIONS = [
    pytest.param(None, id="default"),
    pytest.param(_idempotency_keys._drop_keys_if_pid_changed, id="process-id-check"),
]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.parametrize("detection", DETECTIONS)
@pytest.mark.parametrize("fork", FORKS)
def test_a_forked_child_does_not_reuse_the_keys_its_parent_will_send(
    monkeypatch: pytest.MonkeyPatch,
    fork: Callable[[], int],
    detection: Callable[[], None] | None,
) -> None:
    if detection is not None:
        monkeypatch.setattr(_idempotency_keys, "_drop_keys_inherited_by_fork", detection)
    new_idempotency_key()  # the parent now holds keys read ahead
    assert _idempotency_keys._spare_keys

    child_keys = _keys_drawn_in_a_child(fork, 5)

    parent_keys = [new_idempotency_key() for _ in range(KEYS_PER_READ)]
    assert len(child_keys) == 5
    assert all(uuid.UUID(key).version == 4 for key in child_keys)
    assert not set(child_keys) & set(parent_keys)


@pytest.mark.skipif(sys.platform != "linux", reason="MADV_WIPEONFORK is Linux's")
def test_on_linux_a_fork_is_noticed_without_a_system_call_per_key() -> None:
    # The process id check costs a system call per send; the wiped page, a memory read.
    assert _idempotency_keys._marker is not None
    assert (
        _idempotency_keys._drop_keys_inherited_by_fork
        is _idempotency_keys._drop_keys_if_marker_wiped
    )


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


def test_under_lambda_snapstart_no_key_is_read_ahead() -> None:
    # Every restore of one snapshot would hand out the keys read ahead before it was taken,
    # and the API would answer the second send with the first one's message.
    script = (
        "import json, os\n"
        "reads = []\n"
        "real = os.urandom\n"
        "os.urandom = lambda size: reads.append(size) or real(size)\n"
        "from chatmaid_async._idempotency_keys import new_idempotency_key, _spare_keys\n"
        "keys = [new_idempotency_key() for _ in range(3)]\n"
        "print(json.dumps([reads, len(_spare_keys), len(set(keys))]))\n"
    )
    env = {**os.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}

    shown = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    reads, spare, distinct = json.loads(shown)

    assert reads == [16, 16, 16]
    assert (spare, distinct) == (0, 3)
