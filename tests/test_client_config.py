"""Client configuration: API key, base URL, environment, and what repr shows (contract §1)."""

from __future__ import annotations

import re

import pytest
from aioresponses import aioresponses
from conftest import BASE, KEY, envelope, sent_requests

from chatmaid_async import DEFAULT_BASE_URL, Chatmaid, ConfigurationError, RateLimit

LIVE_KEY = "sk_live_secretlivekey000000wxyz"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATMAID_API_KEY", raising=False)
    monkeypatch.delenv("CHATMAID_BASE_URL", raising=False)


async def _account_url(client: Chatmaid, mock: aioresponses) -> str:
    mock.get(re.compile(r".*"), payload=envelope({"accountId": "acc_1"}))
    async with client:
        await client.account.get()
    [(_, url, _)] = sent_requests(mock)
    return url


# --- the API key -------------------------------------------------------------------------------


async def test_api_key_argument_is_sent_as_a_bearer_token(mocked: aioresponses) -> None:
    mocked.get(f"{BASE}/v1/account", payload=envelope({}))
    async with Chatmaid(KEY, rate_limit=None) as client:
        await client.account.get()

    [(_, _, kwargs)] = sent_requests(mocked)
    assert kwargs["headers"]["Authorization"] == f"Bearer {KEY}"


async def test_api_key_comes_from_chatmaid_api_key_when_not_given(
    mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATMAID_API_KEY", LIVE_KEY)
    mocked.get(f"{BASE}/v1/account", payload=envelope({}))
    async with Chatmaid(rate_limit=None) as client:
        await client.account.get()

    [(_, _, kwargs)] = sent_requests(mocked)
    assert kwargs["headers"]["Authorization"] == f"Bearer {LIVE_KEY}"
    assert client.environment == "live"


def test_api_key_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMAID_API_KEY", LIVE_KEY)
    assert Chatmaid(KEY, rate_limit=None).environment == "test"


@pytest.mark.parametrize(
    ("key", "environment"),
    [("sk_test_abc123def456", "test"), ("sk_live_abc123def456", "live")],
)
def test_environment_follows_the_key_prefix(key: str, environment: str) -> None:
    assert Chatmaid(key, rate_limit=None).environment == environment


def test_missing_key_raises_configuration_error_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="CHATMAID_API_KEY"):
        Chatmaid(rate_limit=None)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("pk_live_abcdefghijklmnop", id="wrong-prefix"),
        pytest.param("abcdefghijklmnopqrstuvwx", id="no-prefix"),
        pytest.param("SK_TEST_abcdefghijklmnop", id="upper-case-prefix"),
        pytest.param("sk_test_", id="prefix-only"),
        pytest.param("sk_test_abcdefghijklmnop\n", id="trailing-newline"),
        pytest.param("sk_test_abcdefgh\nijklmnop", id="inner-newline"),
        pytest.param("sk_live_abcdefgh ijklmnop", id="inner-space"),
        pytest.param("sk_live_abcdefgh\tijklmnop", id="tab"),
        pytest.param(" sk_test_abcdefghijklmnop", id="leading-space"),
    ],
)
def test_malformed_key_is_refused_without_showing_the_key(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Chatmaid(key, rate_limit=None)

    text = f"{caught.value} {caught.value!r}"
    # At most the last four characters of a key may show, never its body.
    assert "abcdefgh" not in text
    assert "ijkl" not in text
    assert "sk_test_" in text or "sk_live_" in text  # says what a key looks like


@pytest.mark.parametrize("key", [b"sk_test_abcdefghijklmnop", 12345])
def test_a_key_that_is_not_a_string_is_refused(key: object) -> None:
    with pytest.raises(ConfigurationError, match="string"):
        Chatmaid(key, rate_limit=None)  # type: ignore[arg-type]


def test_repr_names_the_environment_but_hides_the_key() -> None:
    client = Chatmaid(LIVE_KEY, rate_limit=None)

    shown = repr(client)

    assert LIVE_KEY not in shown
    assert "secretlivekey" not in shown
    assert "live" in shown
    assert DEFAULT_BASE_URL in shown


# --- the base URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        None,
        "https://developers-api.chatmaid.net",
        "https://developers-api.chatmaid.net/",
        "https://developers-api.chatmaid.net/v1",
        "https://developers-api.chatmaid.net/v1/",
        " https://developers-api.chatmaid.net/v1// ",
    ],
)
async def test_base_url_with_or_without_v1_gives_the_same_request_urls(
    mocked: aioresponses, base_url: str | None
) -> None:
    client = Chatmaid(KEY, base_url=base_url, rate_limit=None)

    assert await _account_url(client, mocked) == "https://developers-api.chatmaid.net/v1/account"
    assert client.base_url == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    "env_url", ["https://proxy.example/chatmaid", "https://proxy.example/chatmaid/v1/"]
)
async def test_base_url_comes_from_chatmaid_base_url_when_not_given(
    mocked: aioresponses, monkeypatch: pytest.MonkeyPatch, env_url: str
) -> None:
    monkeypatch.setenv("CHATMAID_BASE_URL", env_url)
    client = Chatmaid(KEY, rate_limit=None)

    assert await _account_url(client, mocked) == "https://proxy.example/chatmaid/v1/account"


def test_base_url_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMAID_BASE_URL", "https://elsewhere.example")
    client = Chatmaid(KEY, base_url="https://proxy.example/v1", rate_limit=None)
    assert client.base_url == "https://proxy.example"


def test_default_base_url_is_the_documented_host() -> None:
    assert DEFAULT_BASE_URL == "https://developers-api.chatmaid.net"
    assert Chatmaid(KEY, rate_limit=None).base_url == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    "base_url",
    [
        "http://developers-api.chatmaid.net",
        "http://10.0.0.5:8080",
        "http://localhost.evil.example",
    ],
)
def test_live_key_over_plain_http_to_a_remote_host_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="https") as caught:
        Chatmaid(LIVE_KEY, base_url=base_url, rate_limit=None)
    assert LIVE_KEY not in str(caught.value)


@pytest.mark.parametrize(
    "base_url", ["http://localhost:8080", "http://127.0.0.1:9000", "http://[::1]:9000"]
)
def test_live_key_over_plain_http_to_loopback_is_allowed(base_url: str) -> None:
    assert Chatmaid(LIVE_KEY, base_url=base_url, rate_limit=None).base_url == base_url


def test_test_key_over_plain_http_is_allowed() -> None:
    client = Chatmaid(KEY, base_url="http://sandbox.internal:8080/v1", rate_limit=None)
    assert client.base_url == "http://sandbox.internal:8080"


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://developers-api.chatmaid.net",
        "developers-api.chatmaid.net",
        "https://",
        "https://x.example/?a=1",
    ],
)
def test_base_url_that_is_not_a_plain_http_url_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        Chatmaid(KEY, base_url=base_url, rate_limit=None)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://[::1",
        "http://[::1]x",
        "http://[zz]",
        "http://localhost:99999",
        "http://localhost:port",
        f"http://{LIVE_KEY}@[::1",
        f"http://localhost:{LIVE_KEY}",
    ],
)
def test_a_malformed_base_url_is_refused_naming_base_url_but_never_the_key(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url") as caught:
        Chatmaid(LIVE_KEY, base_url=base_url, rate_limit=None)

    assert LIVE_KEY not in str(caught.value)


# --- per-call settings -------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), True, "30"])
def test_timeout_must_be_a_positive_number(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        Chatmaid(KEY, rate_limit=None, timeout=timeout)  # type: ignore[arg-type]


def test_with_options_rejects_a_bad_timeout() -> None:
    client = Chatmaid(KEY, rate_limit=None)
    with pytest.raises(ConfigurationError, match="timeout"):
        client.with_options(timeout=0)


async def test_with_options_view_shares_the_clients_key_and_base_url(
    mocked: aioresponses,
) -> None:
    mocked.get(f"{BASE}/v1/account", payload=envelope({}))
    async with Chatmaid(KEY, rate_limit=None) as client:
        await client.with_options(timeout=5, max_retries=0).account.get()

    [(_, url, kwargs)] = sent_requests(mocked)
    assert url == f"{BASE}/v1/account"
    assert kwargs["headers"]["Authorization"] == f"Bearer {KEY}"
    assert kwargs["timeout"].total == 5


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_connections": "x"}, "max_connections"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": -5}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"retry": "x"}, "retry"),
        ({"session": "x"}, "session"),
        ({"rate_limit": (10, 1)}, "rate_limit"),
        ({"rate_limiter": object()}, "rate_limiter"),
        ({"base_url": "https://user:pw@api.example"}, "base_url"),
    ],
)
def test_wrong_settings_fail_at_construction_naming_the_setting(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named) as caught:
        Chatmaid(KEY, **options)  # type: ignore[arg-type]

    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    "key",
    ["sk_test_caf\u00e9" + "x" * 10, "sk_test_" + "x" * 300],
    ids=["non-ascii", "too-long"],
)
def test_keys_that_cannot_be_real_fail_at_construction(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Chatmaid(key)

    assert key not in str(caught.value)


def test_a_rate_limit_window_must_be_finite() -> None:
    with pytest.raises(ValueError, match="per"):
        RateLimit(10, per=float("inf"))


@pytest.mark.parametrize("key", ["sk_test_abcdefghijklmnop\n", " sk_live_abcdefghijklmnop\r\n"])
def test_a_key_with_surrounding_whitespace_is_refused_on_one_line_saying_so(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Chatmaid(key, rate_limit=None)

    text = str(caught.value)
    assert "whitespace" in text
    assert "\n" not in text
    assert "\r" not in text
    assert "mnop" not in text
