"""The options every API command shares, and running a command's coroutine with exit codes.

``@connected`` adds ``--api-key``, ``--base-url``, ``--sandbox``, ``--sandbox-rate``, ``--rate``
and ``--json`` to a command, so they work after the command name
(``chatmaid batch FILE --sandbox``), and hands them to it as one :class:`ConnectOptions`.
:func:`execute` runs the command's coroutine and turns its outcome into the exit code.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn

import typer

from chatmaid_async._limits import redact_key
from chatmaid_async.cli._output import Output
from chatmaid_async.cli._session import (
    ConnectOptions,
    Session,
    UsageProblem,
    open_session,
    parse_rate,
)
from chatmaid_async.errors import ChatmaidError, ConfigurationError, ValidationError

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_BATCH_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "connected",
    "execute",
    "rate_option",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_API_ERROR = 3
EXIT_BATCH_FAILED = 4
EXIT_INTERRUPTED = 130

Work = Callable[[Session, Output], Awaitable[int]]


def rate_option(value: str | None) -> str | None:
    """Typer callback: check an ``N/SECONDS`` or ``off`` value where it is given."""
    if value is not None:
        try:
            parse_rate(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


_COMMON = (
    inspect.Parameter(
        "api_key",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--api-key",
                help="API key (default: $CHATMAID_API_KEY). Never printed.",
                show_default=False,
                rich_help_panel="Connection",
            ),
        ],
    ),
    inspect.Parameter(
        "base_url",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--base-url",
                help="API URL (default: $CHATMAID_BASE_URL, else the production host).",
                show_default=False,
                rich_help_panel="Connection",
            ),
        ],
    ),
    inspect.Parameter(
        "sandbox",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--sandbox",
                help="Run against a sandbox started in this process, with a fresh test key "
                "and phone (the default sender).",
                rich_help_panel="Connection",
            ),
        ],
    ),
    inspect.Parameter(
        "sandbox_rate",
        inspect.Parameter.KEYWORD_ONLY,
        default="100/60",
        annotation=Annotated[
            str,
            typer.Option(
                "--sandbox-rate",
                help="The sandbox key's limit, N/SECONDS (sliding window) or off.",
                callback=rate_option,
                rich_help_panel="Connection",
            ),
        ],
    ),
    inspect.Parameter(
        "rate",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--rate",
                help="Pace requests at the key's limit, N/SECONDS or off "
                "(default 100/60; with --sandbox, the sandbox rate).",
                callback=rate_option,
                show_default=False,
                rich_help_panel="Connection",
            ),
        ],
    ),
    inspect.Parameter(
        "json_output",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option("--json", help="Print JSON for programs instead of tables."),
        ],
    ),
)
_COMMON_NAMES = tuple(parameter.name for parameter in _COMMON)


def connected(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the shared connection options; it receives them as ``conn``.

    Typer reads the returned function's signature: the command's own parameters (without
    ``conn``), then the shared ones.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "conn"]
    parameters = [*own, *_COMMON]

    def wrapper(**kwargs: Any) -> None:
        common = {name: kwargs.pop(name) for name in _COMMON_NAMES}
        command(conn=_connect_options(**common), **kwargs)

    wrapper.__name__ = command.__name__
    wrapper.__qualname__ = command.__qualname__
    wrapper.__doc__ = command.__doc__
    wrapper.__module__ = command.__module__
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def _connect_options(
    *,
    api_key: str | None,
    base_url: str | None,
    sandbox: bool,
    sandbox_rate: str,
    rate: str | None,
    json_output: bool,
) -> ConnectOptions:
    client_rate = None if rate is None else parse_rate(rate)
    return ConnectOptions(
        api_key=api_key,
        base_url=base_url,
        sandbox=sandbox,
        sandbox_rate=parse_rate(sandbox_rate),
        rate=client_rate,
        pacing_off=rate is not None and client_rate is None,
        json=json_output,
    )


def execute(conn: ConnectOptions, work: Work) -> NoReturn:
    """Run ``work`` with an open session and exit with the code it maps to.

    0 ok (or ``work``'s own code), 2 a usage problem, 3 an API error, 130 interrupted. Error
    text goes to stderr, with the API key replaced by its redacted form.
    """
    output = Output(json_output=conn.json)
    try:
        code = asyncio.run(_with_session(conn, output, work))
    except KeyboardInterrupt:
        output.error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (UsageProblem, ConfigurationError, ValidationError) as exc:
        _fail(output, conn, exc, EXIT_USAGE)
    except ChatmaidError as exc:
        _fail(output, conn, exc, EXIT_API_ERROR)
    raise typer.Exit(code)


async def _with_session(conn: ConnectOptions, output: Output, work: Work) -> int:
    async with open_session(conn) as session:
        if session.sandbox_url is not None:
            output.note(f"sandbox at {session.sandbox_url}, sender {session.default_from}")
        return await work(session, output)


def _fail(output: Output, conn: ConnectOptions, exc: Exception, code: int) -> NoReturn:
    output.error(scrub(str(exc), conn.api_key))
    raise typer.Exit(code)


def scrub(text: str, api_key: str | None) -> str:
    """``text`` with the key (given, or from the environment) replaced by its redacted form."""
    for key in (api_key, os.environ.get("CHATMAID_API_KEY")):
        if key:
            text = text.replace(key, redact_key(key))
    return text
