"""The ``chatmaid`` command (``pip install 'chatmaid-async[cli]'``).

Importing ``chatmaid_async`` never imports this package, typer or rich; :func:`main` loads
the commands when the command runs.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Run the ``chatmaid`` command line (the console script and ``python -m chatmaid_async``).

    Exit codes: 0 ok, 2 usage error, 3 API error, 4 a batch with failures, 130 interrupted.
    """
    try:
        from chatmaid_async.cli._app import app
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise SystemExit(
            f"the chatmaid command needs the cli extra: pip install 'chatmaid-async[cli]' ({exc})"
        ) from None
    app(prog_name="chatmaid")
