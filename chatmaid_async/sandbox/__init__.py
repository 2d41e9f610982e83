"""An in-memory implementation of the Chatmaid Developers API, for tests and local development.

    from chatmaid_async.sandbox import Sandbox

    async with Sandbox() as sandbox:
        key = sandbox.create_key()
        phone = sandbox.add_phone("+15550100000")
        ...  # point any client at sandbox.base_url

The sandbox does not import the SDK's client or models: it writes the contract's JSON itself,
so it cannot drift to fit a client's mistakes. Names are loaded on first use, so importing this
package (as the pytest plugin does) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatmaid_async.sandbox._counters import Counters
    from chatmaid_async.sandbox._faults import FAULT_KINDS, FaultKind, Faults
    from chatmaid_async.sandbox._records import (
        ALL_SCOPES,
        FAILURE_RECIPIENTS,
        SANDBOX_GROUPS,
        InboundRecord,
        SandboxMessage,
    )
    from chatmaid_async.sandbox._sandbox import Sandbox
    from chatmaid_async.sandbox._serve import SandboxReady, serve
    from chatmaid_async.sandbox._webhooks import WEBHOOK_EVENTS

__all__ = [
    "ALL_SCOPES",
    "FAILURE_RECIPIENTS",
    "FAULT_KINDS",
    "SANDBOX_GROUPS",
    "WEBHOOK_EVENTS",
    "Counters",
    "FaultKind",
    "Faults",
    "InboundRecord",
    "Sandbox",
    "SandboxMessage",
    "SandboxReady",
    "serve",
]

_HOMES = {
    "Counters": "_counters",
    "FAULT_KINDS": "_faults",
    "FaultKind": "_faults",
    "Faults": "_faults",
    "ALL_SCOPES": "_records",
    "FAILURE_RECIPIENTS": "_records",
    "SANDBOX_GROUPS": "_records",
    "InboundRecord": "_records",
    "SandboxMessage": "_records",
    "Sandbox": "_sandbox",
    "SandboxReady": "_serve",
    "serve": "_serve",
    "WEBHOOK_EVENTS": "_webhooks",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
