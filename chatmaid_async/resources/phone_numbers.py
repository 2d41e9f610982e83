"""``client.phone_numbers``: the account's phones and their connection state."""

from __future__ import annotations

from chatmaid_async._validation import check_phone_ref
from chatmaid_async.models import PhoneNumber, PhoneNumberStatus, decode
from chatmaid_async.resources._base import Resource

__all__ = ["PhoneNumbersResource"]

PHONES = "/v1/phone-numbers"
PHONE = "/v1/phone-numbers/{}"
PHONE_STATUS = "/v1/phone-numbers/{}/status"


class PhoneNumbersResource(Resource):
    """List phones, read one, or read its connection status."""

    __slots__ = ()

    async def list(self) -> list[PhoneNumber]:
        """Return every phone of the key's environment."""
        envelope = await self._client._request("GET", PHONES)
        return decode(envelope.data, list[PhoneNumber], PHONES)

    async def get(self, id_or_e164: str) -> PhoneNumber:
        """Return one phone by dashboard id or E.164 number (``+`` is sent as ``%2B``)."""
        phone = check_phone_ref("id_or_e164", id_or_e164)
        envelope = await self._client._request("GET", PHONE, (phone,))
        return decode(envelope.data, PhoneNumber, PHONE)

    async def status(self, id_or_e164: str) -> PhoneNumberStatus:
        """Return the connection status of one phone."""
        phone = check_phone_ref("id_or_e164", id_or_e164)
        envelope = await self._client._request("GET", PHONE_STATUS, (phone,))
        return decode(envelope.data, PhoneNumberStatus, PHONE_STATUS)
