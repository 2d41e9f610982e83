"""The ``chatmaid`` commands. Each one opens a session, makes its calls, and shows the result.

Exit codes: 0 ok, 2 usage errors, 3 API errors, 4 a batch with failures, 130 interrupted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from chatmaid_async.cli._options import (
    EXIT_BATCH_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    connected,
    execute,
    rate_option,
)
from chatmaid_async.cli._output import Output
from chatmaid_async.cli._session import ConnectOptions, Session, UsageProblem

__all__ = ["app"]

app = typer.Typer(
    name="chatmaid",
    help="Send WhatsApp messages through the Chatmaid API, one at a time or in batches.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    # Tracebacks with locals could show the API key: keep Python's plain ones.
    pretty_exceptions_enable=False,
)
messages_app = typer.Typer(help="Outbound messages: list, get, wait for a status.")
inbound_app = typer.Typer(help="Messages your numbers received (live keys).")
phones_app = typer.Typer(help="The account's phone numbers.")
app.add_typer(messages_app, name="messages", no_args_is_help=True)
app.add_typer(inbound_app, name="inbound", no_args_is_help=True)
app.add_typer(phones_app, name="phones", no_args_is_help=True)

FromOption = Annotated[
    str | None,
    typer.Option(
        "--from", help="Sender phone, E.164 or dashboard id (default with --sandbox: its phone)."
    ),
]
PageOption = Annotated[int, typer.Option(min=1, help="Page number, from 1.")]
LimitOption = Annotated[int, typer.Option(min=1, max=100, help="Items per page, 1 to 100.")]
AllOption = Annotated[
    bool, typer.Option("--all", help="Walk every page, one line per item (JSON Lines)")
]


def _sender(session: Session, given: str | None) -> str:
    sender = given or session.default_from
    if sender is None:
        raise UsageProblem("give the sender with --from (an E.164 number or a phone id)")
    return sender


# -- send --------------------------------------------------------------------------------------


@app.command()
@connected
def send(
    to: Annotated[str, typer.Option("--to", help="Recipient: E.164 number or group id.")],
    conn: ConnectOptions,
    content: Annotated[str | None, typer.Option("--content", "-c", help="Text.")] = None,
    media: Annotated[
        list[str] | None, typer.Option("--media", help="https URL of a media file (repeat).")
    ] = None,
    sender: FromOption = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Reuse to never send twice.")
    ] = None,
) -> None:
    """Send one message and show it."""

    async def work(session: Session, output: Output) -> int:
        message = await session.client.messages.send(
            _sender(session, sender),
            to,
            content=content,
            media_urls=media or None,
            idempotency_key=idempotency_key,
        )
        output.item(message)
        return EXIT_OK

    execute(conn, work)


# -- messages ----------------------------------------------------------------------------------


@messages_app.command("list")
@connected
def messages_list(
    conn: ConnectOptions,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    phone: Annotated[str | None, typer.Option(help="Only from this phone id.")] = None,
    page: PageOption = 1,
    limit: LimitOption = 20,
    walk_all: AllOption = False,
) -> None:
    """List outbound messages, newest first."""

    async def work(session: Session, output: Output) -> int:
        messages = session.client.messages
        if walk_all:
            async for message in messages.iterate(status, phone, limit, page=page):
                output.stream_item(message)
            return EXIT_OK
        output.page(await messages.list(status, phone, page=page, limit=limit), "messages")
        return EXIT_OK

    execute(conn, work)


@messages_app.command("get")
@connected
def messages_get(
    message_id: Annotated[str, typer.Argument(help="Message id (msg_…).")],
    conn: ConnectOptions,
) -> None:
    """Show one outbound message."""

    async def work(session: Session, output: Output) -> int:
        output.item(await session.client.messages.get(message_id))
        return EXIT_OK

    execute(conn, work)


@messages_app.command("wait")
@connected
def messages_wait(
    message_id: Annotated[str, typer.Argument(help="Message id (msg_…).")],
    conn: ConnectOptions,
    until: Annotated[
        str, typer.Option(help="Comma-separated statuses to wait for.")
    ] = "delivered,read,failed",
    timeout: Annotated[float, typer.Option(min=0.001, help="Give up after seconds.")] = 300.0,
) -> None:
    """Poll a message until it reaches a status (exit 3 on timeout, with the last status)."""
    statuses = {status.strip() for status in until.split(",") if status.strip()}

    async def work(session: Session, output: Output) -> int:
        message = await session.client.messages.wait_for_status(
            message_id, statuses, timeout=timeout
        )
        output.item(message)
        return EXIT_OK

    execute(conn, work)


# -- inbound -----------------------------------------------------------------------------------


@inbound_app.command("list")
@connected
def inbound_list(
    conn: ConnectOptions,
    phone: Annotated[str | None, typer.Option(help="Only to this phone id.")] = None,
    page: PageOption = 1,
    limit: LimitOption = 20,
    walk_all: AllOption = False,
) -> None:
    """List received messages, newest first (test keys always get none)."""

    async def work(session: Session, output: Output) -> int:
        messages = session.client.messages
        if walk_all:
            async for message in messages.iterate_inbound(phone, limit, page=page):
                output.stream_item(message)
            return EXIT_OK
        output.page(await messages.list_inbound(phone, page=page, limit=limit), "inbound")
        return EXIT_OK

    execute(conn, work)


@inbound_app.command("get")
@connected
def inbound_get(
    message_id: Annotated[str, typer.Argument(help="Inbound message id (inmsg_…).")],
    conn: ConnectOptions,
) -> None:
    """Show one received message."""

    async def work(session: Session, output: Output) -> int:
        output.item(await session.client.messages.get_inbound(message_id))
        return EXIT_OK

    execute(conn, work)


# -- groups, phones, account -------------------------------------------------------------------


@app.command()
@connected
def groups(conn: ConnectOptions, sender: FromOption = None) -> None:
    """List the WhatsApp groups a phone can post to."""

    async def work(session: Session, output: Output) -> int:
        found = await session.client.groups.list(_sender(session, sender))
        output.items(found, "groups")
        return EXIT_OK

    execute(conn, work)


@phones_app.command("list")
@connected
def phones_list(conn: ConnectOptions) -> None:
    """List the phone numbers of the key's environment."""

    async def work(session: Session, output: Output) -> int:
        output.items(await session.client.phone_numbers.list(), "phone numbers")
        return EXIT_OK

    execute(conn, work)


@phones_app.command("get")
@connected
def phones_get(
    phone: Annotated[str, typer.Argument(help="Phone id or E.164 number.")],
    conn: ConnectOptions,
) -> None:
    """Show one phone number."""

    async def work(session: Session, output: Output) -> int:
        output.item(await session.client.phone_numbers.get(phone))
        return EXIT_OK

    execute(conn, work)


@phones_app.command("status")
@connected
def phones_status(
    phone: Annotated[str, typer.Argument(help="Phone id or E.164 number.")],
    conn: ConnectOptions,
) -> None:
    """Show a phone's connection status."""

    async def work(session: Session, output: Output) -> int:
        output.item(await session.client.phone_numbers.status(phone))
        return EXIT_OK

    execute(conn, work)


@app.command()
@connected
def account(conn: ConnectOptions) -> None:
    """Show the account that owns the key."""

    async def work(session: Session, output: Output) -> int:
        output.item(await session.client.account.get())
        return EXIT_OK

    execute(conn, work)


@app.command()
@connected
def usage(
    conn: ConnectOptions,
    period: Annotated[str, typer.Option(help="day, week or month (rolling).")] = "month",
) -> None:
    """Show usage counters for a rolling period."""

    async def work(session: Session, output: Output) -> int:
        output.item(await session.client.account.usage(period))
        return EXIT_OK

    execute(conn, work)


# -- batch -------------------------------------------------------------------------------------


@app.command()
@connected
def batch(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV (with header) or JSON Lines."
        ),
    ],
    conn: ConnectOptions,
    out: Annotated[
        Path | None,
        typer.Option(help="Append one JSON line per result here (needed for --resume)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip ids already recorded in --out.")
    ] = False,
    input_format: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl (default: by extension).")
    ] = None,
    sender: FromOption = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Sends in flight.")] = 32,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="Idempotency namespace: keys derive from it and each row's id "
            "(default: the file name without extension). Keep it to resume; change it to "
            "send the same ids again as a new campaign."
        ),
    ] = None,
    fsync: Annotated[
        bool, typer.Option("--fsync", help="Also sync each record to disk (survives power loss).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Send every row of FILE (columns id, to, content, media_url, from), paced by the limit.

    Each row's idempotency key derives from its id, so rerunning, or resuming after a crash,
    never sends a row twice. Exit 4 when any row failed; bad rows are recorded, never sent.
    """
    from chatmaid_async.cli._batch import BatchOptions, BatchTally, check_out_file, run_batch
    from chatmaid_async.cli._input import InputError, detect_format
    from chatmaid_async.cli._summary import show_summary

    async def work(session: Session, output: Output) -> int:
        try:
            fmt = detect_format(file, input_format)
        except InputError as exc:
            raise UsageProblem(str(exc)) from None
        options = BatchOptions(
            path=file,
            fmt=fmt,
            out=out,
            resume=resume,
            concurrency=concurrency,
            namespace=file.stem if namespace is None else namespace,
            default_from=sender or session.default_from,
            fsync=fsync,
            progress=progress,
        )
        check_out_file(options)

        tally = BatchTally(rate_limit=session.rate_limit)
        try:
            await run_batch(session, options, output, tally)
        except InputError as exc:
            raise UsageProblem(str(exc)) from None
        except asyncio.CancelledError:
            # Ctrl-C: what finished is recorded; say so before the exit code says 130.
            show_summary(tally, output)
            raise
        show_summary(tally, output)
        return EXIT_BATCH_FAILED if tally.failed else EXIT_OK

    execute(conn, work)


# -- sandbox -----------------------------------------------------------------------------------


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8787,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    rate: Annotated[
        str, typer.Option(help="The test key's limit, N/SECONDS or off.", callback=rate_option)
    ] = "100/60",
) -> None:
    """Serve the sandbox API until Ctrl-C, printing a ready test key and phone."""
    from chatmaid_async.cli._serve import serve_sandbox

    try:
        asyncio.run(serve_sandbox(host, port, rate))
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_OK) from None
    except OSError as exc:
        Output(json_output=False).error(f"cannot listen on {host}:{port}: {exc.strerror}")
        raise typer.Exit(EXIT_USAGE) from None
