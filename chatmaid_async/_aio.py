"""Small asyncio helpers shared by the limiters, which wake futures across loops and threads."""

from __future__ import annotations

import asyncio

__all__ = ["resolve", "running_loop"]


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop, or None outside one (e.g. in another thread)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def resolve(future: asyncio.Future[None]) -> None:
    """Complete ``future`` unless it is already done (a timer and a wake-up may race)."""
    if not future.done():
        future.set_result(None)
