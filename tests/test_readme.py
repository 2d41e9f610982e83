"""The README's own examples run as written, against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatmaid_async.sandbox import Sandbox

README = Path(__file__).resolve().parents[1] / "README.md"
SENDER = "+15550100000"


def quickstart_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Quickstart")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.DOTALL)


@pytest.fixture
async def sandbox_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    async with Sandbox(status_delays=(0.0, 0.0)) as sandbox:
        sandbox.add_phone(SENDER)
        monkeypatch.setenv("CHATMAID_API_KEY", sandbox.create_key())
        monkeypatch.setenv("CHATMAID_BASE_URL", sandbox.base_url)
        yield sandbox


async def test_the_quickstart_sends_and_lists(
    sandbox_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = quickstart_blocks()[0].replace("asyncio.run(main())", "")
    namespace: dict[str, Any] = {"__name__": "readme_quickstart"}
    exec(compile(code, str(README), "exec"), namespace)

    await namespace["main"]()

    [message] = sandbox_env.messages.values()
    assert message.to == "+15557654321"
    assert capsys.readouterr().out.startswith(message.id)


async def test_the_one_client_per_process_example_serves_requests(sandbox_env: Sandbox) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_fastapi"}
    exec(compile(quickstart_blocks()[1], str(README), "exec"), namespace)
    app = namespace["app"]

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post("/notify", params={"phone": "+15557654321"})

    assert response.status_code == 200
    assert response.json()["id"] in sandbox_env.messages
