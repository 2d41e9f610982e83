"""Test helpers: worker processes, a Redis server of the test's own, and the run's figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[2]
# Seconds to wait for a worker or a Redis server to come up.
STARTUP_TIMEOUT = 20.0


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """True if a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def in_ci() -> bool:
    """True when the CI environment variable says so (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server of the test's own on a free port; never the machine's main Redis."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self._process: asyncio.subprocess.Process | None = None

    @staticmethod
    def available() -> bool:
        """True if a redis-server binary is on PATH."""
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start the server and wait until it answers."""
        self._process = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(int(STARTUP_TIMEOUT / 0.02)):
            if redis_answers(port=self.port):
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    async def stop(self) -> None:
        """Stop the server (its data is gone: no persistence)."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()


class Worker:
    """One worker process (see ``worker.py``), started and waiting for ``go``."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, config: dict[str, Any]) -> Worker:
        """Start a worker and wait until it says it is ready."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-W",
            "error",
            str(WORKER),
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        worker = cls(process)
        line = await worker._readline()
        if line != "ready":
            raise RuntimeError(f"worker did not start: {line!r}\n{await worker._stderr()}")
        return worker

    async def go(self) -> None:
        """Let the worker run."""
        assert self._process.stdin is not None
        self._process.stdin.write(b"go\n")
        await self._process.stdin.drain()

    async def result(self) -> dict[str, Any]:
        """The worker's JSON result, once it has exited cleanly."""
        result = await self.read_result()
        await self.finish()
        return result

    async def read_result(self) -> dict[str, Any]:
        """The worker's JSON result as soon as it prints it (it may still be closing)."""
        line = await self._readline()
        if not line.startswith("{"):
            await self._process.wait()
            raise RuntimeError(f"worker failed: {line!r}\n{await self._stderr()}")
        result: dict[str, Any] = json.loads(line)
        return result

    async def finish(self) -> None:
        """Wait for the worker to exit; raise with its stderr if it failed."""
        code = await self._process.wait()
        if code != 0:
            raise RuntimeError(f"worker exited with {code}\n{await self._stderr()}")

    async def kill(self) -> None:
        """Stop a worker that is still running (cleanup after a failure)."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()

    async def _readline(self) -> str:
        assert self._process.stdout is not None
        raw = await asyncio.wait_for(self._process.stdout.readline(), STARTUP_TIMEOUT * 3)
        return raw.decode().strip()

    async def _stderr(self) -> str:
        assert self._process.stderr is not None
        return (await self._process.stderr.read()).decode(errors="replace")[-4000:]


async def run_workers(configs: Sequence[dict[str, Any]]) -> list[Worker]:
    """Start every worker, then let them all go at once."""
    workers = list(await asyncio.gather(*(Worker.start(config) for config in configs)))
    await asyncio.gather(*(worker.go() for worker in workers))
    return workers


def utilization(times: Sequence[float], limit: int, per: float) -> float:
    """Achieved rate after the first burst of ``limit``, as a share of ``limit / per``.

    1.0 means ``limit`` at once and then ``limit`` per window, no time lost.
    """
    ordered = sorted(times)
    span = ordered[-1] - ordered[0] if ordered else 0.0
    if len(ordered) <= limit or span <= 0:
        return math.nan
    return (len(ordered) - limit) * per / (limit * span)
