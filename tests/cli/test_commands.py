"""The ``chatmaid`` commands, run in-process against the embedded or a fixture sandbox."""

from __future__ import annotations

import json

import pytest

from chatmaid_async import Chatmaid
from chatmaid_async.cli._options import EXIT_API_ERROR, EXIT_USAGE
from chatmaid_async.sandbox import Sandbox

from .conftest import PHONE, invoke, invoke_async

# -- each command, with --sandbox -------------------------------------------------------------


def test_account_prints_a_table_for_people_and_json_for_programs() -> None:
    table = invoke("account", "--sandbox")
    document = invoke("account", "--sandbox", "--json")

    assert table.exit_code == 0, table.output
    assert "Sandbox Account" in table.stdout
    assert json.loads(document.stdout)["name"] == "Sandbox Account"


def test_send_uses_the_sandbox_phone_as_sender() -> None:
    result = invoke("send", "--sandbox", "--to", "+15557654321", "-c", "hello", "--json")

    assert result.exit_code == 0, result.output
    message = json.loads(result.stdout)
    assert message["from"] == PHONE
    assert message["status"] == "sent"
    assert message["idempotencyKey"]


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (["phones", "list"], lambda doc: doc[0]["phoneNumber"] == PHONE),
        (["phones", "get", PHONE], lambda doc: doc["phoneNumber"] == PHONE),
        (["phones", "status", PHONE], lambda doc: doc["connectionStatus"] == "connected"),
        (["groups"], lambda doc: all(g["id"].endswith("@g.us") for g in doc) and doc),
        (["usage", "--period", "day"], lambda doc: doc["period"] == "day"),
        (["messages", "list"], lambda doc: doc["data"] == [] and "pagination" in doc),
        (["inbound", "list"], lambda doc: doc["data"] == []),
    ],
)
def test_read_commands_answer_in_json(args: list[str], check: object) -> None:
    result = invoke(*args, "--sandbox", "--json")

    assert result.exit_code == 0, result.output
    assert check(json.loads(result.stdout))  # type: ignore[operator]


@pytest.mark.parametrize(
    "args",
    [
        ["phones", "list"],
        ["phones", "status", PHONE],
        ["groups"],
        ["usage"],
        ["messages", "list"],
        ["inbound", "list"],
    ],
)
def test_read_commands_print_tables(args: list[str]) -> None:
    result = invoke(*args, "--sandbox")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


# -- commands on a sandbox of the test (messages written beforehand) ---------------------------


async def test_messages_get_list_and_wait_read_what_was_sent(
    sandbox: Sandbox, key: str, client: Chatmaid
) -> None:
    sent = await client.messages.send(PHONE, "+15557654321", content="hi")
    conn = ["--api-key", key, "--base-url", sandbox.base_url, "--json"]

    got = await invoke_async("messages", "get", sent.id, *conn)
    waited = await invoke_async("messages", "wait", sent.id, "--until", "read", *conn)
    listed = await invoke_async("messages", "list", "--all", *conn)

    assert json.loads(got.stdout)["id"] == sent.id
    assert json.loads(waited.stdout)["status"] == "read"
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [sent.id]


async def test_the_environment_supplies_the_key_and_the_url(sandbox: Sandbox, key: str) -> None:
    env = {"CHATMAID_API_KEY": key, "CHATMAID_BASE_URL": sandbox.base_url}

    result = await invoke_async("account", "--json", env=env)

    assert result.exit_code == 0, result.output
    assert sandbox.counters.requests_by_key[key] == 1


async def test_a_wait_that_times_out_exits_3_with_the_last_status() -> None:
    async with Sandbox(status_delays=(None, None)) as quiet:
        quiet.add_phone(PHONE)
        key = quiet.create_key()
        async with Chatmaid(key, base_url=quiet.base_url, rate_limit=None) as client:
            sent = await client.messages.send(PHONE, "+15557654321", content="hi")

        result = await invoke_async(
            "messages", "wait", sent.id, "--timeout", "0.3", "--api-key", key,
            "--base-url", quiet.base_url,
        )  # fmt: skip

    assert result.exit_code == EXIT_API_ERROR
    assert "still sent" in result.stderr


# -- exit codes and secrets -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["send", "--sandbox"],
        ["send", "--sandbox", "--to", "not-a-number", "-c", "hi"],
        ["messages", "list", "--sandbox", "--limit", "500"],
        ["account", "--sandbox", "--sandbox-rate", "fast"],
        ["account", "--sandbox", "--api-key", "sk_test_0123456789abcdef"],
        ["account"],
        ["groups", "--api-key", "sk_test_0123456789abcdef"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = invoke(*args)

    assert result.exit_code == EXIT_USAGE, result.output


def test_a_missing_key_says_where_to_put_one() -> None:
    result = invoke("account")

    assert "CHATMAID_API_KEY" in result.stderr


def test_api_errors_exit_3() -> None:
    result = invoke("messages", "get", "msg_doesnotexist", "--sandbox")

    assert result.exit_code == EXIT_API_ERROR
    assert "404" in result.stderr


async def test_the_key_is_never_printed_even_in_errors(sandbox: Sandbox) -> None:
    unknown = "sk_test_" + "f00d" * 10
    env = {"CHATMAID_API_KEY": unknown, "CHATMAID_BASE_URL": sandbox.base_url}

    rejected = await invoke_async("account", env=env)
    helped = await invoke_async("account", "--help", env=env)
    flagged = await invoke_async("account", "--api-key", unknown, "--base-url", sandbox.base_url)

    assert rejected.exit_code == flagged.exit_code == EXIT_API_ERROR
    assert "401" in rejected.stderr
    for result in (rejected, helped, flagged):
        assert unknown not in result.output
        assert "f00d" * 10 not in result.output
