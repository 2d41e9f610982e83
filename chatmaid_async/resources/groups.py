"""``client.groups``: the WhatsApp groups a phone can post to."""

from __future__ import annotations

from chatmaid_async._validation import check_phone_ref
from chatmaid_async.models import Group, decode
from chatmaid_async.resources._base import Resource

__all__ = ["GroupsResource"]

GROUPS = "/v1/groups"


class GroupsResource(Resource):
    """List groups; a group's ``id`` (its JID) is a valid ``to`` for a send."""

    __slots__ = ()

    async def list(self, from_phone_id: str) -> list[Group]:
        """Return the groups ``from_phone_id`` (E.164 or dashboard id) can post to.

        Test keys get the sandbox's static list.
        """
        phone = check_phone_ref("from_phone_id", from_phone_id)
        envelope = await self._client._request("GET", GROUPS, query={"fromPhoneId": phone})
        return decode(envelope.data, list[Group], GROUPS)
