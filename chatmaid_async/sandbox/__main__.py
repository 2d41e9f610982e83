"""``python -m chatmaid_async.sandbox --port 8787``: a local Chatmaid API until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

from chatmaid_async.sandbox._serve import DEFAULT_PHONE_NUMBER, DEFAULT_PORT, SandboxReady, serve


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chatmaid_async.sandbox",
        description="Serve an in-memory Chatmaid API for local development and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=None, help="seed for repeatable ids/faults")
    parser.add_argument("--phone", default=DEFAULT_PHONE_NUMBER, help="the ready phone number")
    return parser.parse_args(argv)


def _announce(ready: SandboxReady) -> None:
    # The key is printed in full on purpose: it is a throwaway sandbox key the user must copy.
    print(f"Chatmaid sandbox listening on {ready.base_url} (API under /v1)", flush=True)
    print(f"  test key:  {ready.api_key}", flush=True)
    print(f"  phone:     {ready.phone_number} (id {ready.phone_id})", flush=True)
    print(
        f"  try:       curl -H 'Authorization: Bearer {ready.api_key}' "
        f"{ready.base_url}/v1/phone-numbers",
        flush=True,
    )
    print("Press Ctrl-C to stop.", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGINT or SIGTERM; returns the exit status."""
    args = _parse_args(argv)
    run = serve(args.host, args.port, on_ready=_announce, seed=args.seed, phone_number=args.phone)

    # Where the loop cannot take signal handlers (Windows), Ctrl-C arrives as KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run)
    print("Chatmaid sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
