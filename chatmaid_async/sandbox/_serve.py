"""Run the sandbox as a standalone server until asked to stop (the CLI's entry point)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

import attrs

from chatmaid_async._limits import redact_key
from chatmaid_async.sandbox._lifecycle import DEFAULT_STATUS_DELAYS
from chatmaid_async.sandbox._sandbox import Sandbox

__all__ = ["DEFAULT_PHONE_NUMBER", "DEFAULT_PORT", "SandboxReady", "serve"]

DEFAULT_PORT = 8787
DEFAULT_PHONE_NUMBER = "+15550100000"


@attrs.frozen(repr=False)
class SandboxReady:
    """What a standalone sandbox hands its caller once it serves: where, and with what."""

    base_url: str
    api_key: str
    phone_id: str
    phone_number: str
    sandbox: Sandbox = attrs.field(eq=False)

    def __repr__(self) -> str:
        return (
            f"<SandboxReady {self.base_url} key={redact_key(self.api_key)} "
            f"phone={self.phone_number}>"
        )


async def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    on_ready: Callable[[SandboxReady], None] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    seed: int | None = None,
    status_delays: tuple[float | None, float | None] = DEFAULT_STATUS_DELAYS,
    phone_number: str = DEFAULT_PHONE_NUMBER,
) -> None:
    """Serve a sandbox with one all-scopes test key and one connected phone until stopped.

    ``on_ready`` gets the base URL, key and phone once the port is bound (the library never
    prints). The server stops when ``stop`` is set, when the task is cancelled, or, with
    ``handle_signals``, on SIGINT or SIGTERM; it always closes cleanly.
    """
    stop = stop or asyncio.Event()
    async with Sandbox(host, port, seed=seed, status_delays=status_delays) as sandbox:
        ready = SandboxReady(
            base_url=sandbox.base_url,
            api_key=sandbox.create_key(),
            phone_id=sandbox.add_phone(phone_number, connected=True),
            phone_number=phone_number,
            sandbox=sandbox,
        )
        if on_ready is not None:
            on_ready(ready)
        with _stop_on_signals(stop, enabled=handle_signals):
            await stop.wait()


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event, *, enabled: bool) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while inside; restore the default handlers after."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if enabled:
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Windows event loops cannot take signal handlers; Ctrl-C then cancels the run.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
