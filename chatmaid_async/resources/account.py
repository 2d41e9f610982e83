"""``client.account``: the account that owns the key, and its usage counters."""

from __future__ import annotations

from chatmaid_async._validation import check_period
from chatmaid_async.models import Account, Usage, decode
from chatmaid_async.resources._base import Resource

__all__ = ["AccountResource"]

ACCOUNT = "/v1/account"
USAGE = "/v1/account/usage"


class AccountResource(Resource):
    """Read the account profile and usage."""

    __slots__ = ()

    async def get(self) -> Account:
        """Return the account profile (both documented shapes decode; absent fields are None)."""
        envelope = await self._client._request("GET", ACCOUNT)
        return decode(envelope.data, Account, ACCOUNT)

    async def usage(self, period: str = "month") -> Usage:
        """Return usage counters for a rolling ``day``, ``week`` or ``month`` (the default)."""
        period = check_period(period)
        envelope = await self._client._request("GET", USAGE, query={"period": period})
        return decode(envelope.data, Usage, USAGE)
