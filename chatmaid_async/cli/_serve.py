"""``chatmaid sandbox``: serve the sandbox standalone and print a ready test key and phone."""

from __future__ import annotations

from chatmaid_async.cli._output import Output
from chatmaid_async.cli._session import format_rate, parse_rate

__all__ = ["serve_sandbox"]


async def serve_sandbox(host: str, port: int, rate: str) -> None:
    """Serve until SIGINT or SIGTERM; the printed key has the ``rate`` limit (or none)."""
    from chatmaid_async.sandbox import SandboxReady, serve

    rate_limit = parse_rate(rate)
    output = Output(json_output=False)

    def announce(ready: SandboxReady) -> None:
        # serve() makes an unlimited key; the one we hand out carries the requested limit.
        key = ready.sandbox.create_key(rate_limit=rate_limit, window="sliding")

        # Printed in full on purpose: a throwaway sandbox key the user has to copy.
        output.out.print(f"Chatmaid sandbox on {ready.base_url} (API under /v1)", markup=False)
        output.out.print(f"  export CHATMAID_BASE_URL={ready.base_url}", markup=False)
        output.out.print(f"  export CHATMAID_API_KEY={key}", markup=False)
        output.out.print(f"  phone:  {ready.phone_number} (id {ready.phone_id})", markup=False)
        output.out.print(f"  limit:  {format_rate(rate_limit)}, sliding window", markup=False)
        output.out.print("Press Ctrl-C to stop.", markup=False)

    await serve(host, port, on_ready=announce, phone_number="+15550100000")
