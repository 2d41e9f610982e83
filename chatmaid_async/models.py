"""Typed results of the Chatmaid API, decoded by one cattrs converter.

Attributes are the API's camelCase fields in snake_case. Every model keeps the server's
decoded object in ``raw``, so fields the server adds later stay reachable. Only identity
fields are required: the contract treats everything else as possibly absent (§3.1), and a
status or connection state the server adds later is kept as its plain string.
"""

from __future__ import annotations

import enum
import functools
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from chatmaid_async._timestamps import parse_timestamp
from chatmaid_async.errors import DecodingError

# cattrs is imported with the converter, on the first decode: an import of the SDK that never
# decodes (a webhook receiver, the CLI's --help) does not pay for it.
if TYPE_CHECKING:
    import cattrs

__all__ = [
    "Account",
    "AccountStats",
    "ApiRequestCounts",
    "ConnectionStatus",
    "Group",
    "InboundMessage",
    "InboundMessageType",
    "Message",
    "MessageCounts",
    "MessageErrorCode",
    "MessageStatus",
    "Page",
    "Pagination",
    "PhoneNumber",
    "PhoneNumberStatus",
    "Usage",
    "decode",
    "decode_sent",
]

T = TypeVar("T")

_RAW = "__raw__"
_StructureHook = Callable[[Any, Any], Any]


class MessageStatus(str, enum.Enum):
    """Known message statuses; ``Message.status`` is a plain string so new ones never break."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class ConnectionStatus(str, enum.Enum):
    """Known phone connection states (the set is open: the JS SDK adds two more)."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    QR_PENDING = "qr_pending"
    ERROR = "error"


class InboundMessageType(str, enum.Enum):
    """Known inbound message types."""

    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    OTHER = "other"


class MessageErrorCode(str, enum.Enum):
    """Known ``errorCode`` values of failed messages (contract §6.4); the set is open."""

    NOT_CONNECTED = "NOT_CONNECTED"
    INVALID_RECIPIENT = "INVALID_RECIPIENT"
    RECIPIENT_NOT_REACHABLE = "RECIPIENT_NOT_REACHABLE"
    NOT_GROUP_MEMBER = "NOT_GROUP_MEMBER"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_AUTHORIZED = "NOT_AUTHORIZED"
    MEDIA_ERROR = "MEDIA_ERROR"
    TIMEOUT = "TIMEOUT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


TERMINAL_STATUSES = frozenset({"delivered", "read", "failed"})


def _raw_field() -> Any:
    return attrs.field(factory=dict, repr=False, eq=False, kw_only=True)


@attrs.frozen(slots=True)
class Message:
    """An outbound message (``msg_…``).

    ``idempotency_key`` is the key the SDK sent with this message (yours or a generated one);
    sending again with it can never create a second message. It is None on messages that were
    read back rather than sent.
    """

    id: str
    status: str
    from_number: str | None = None
    to: str | None = None
    content: str | None = None
    media_urls: list[str] = attrs.field(factory=list)
    is_group: bool = False
    group_id: str | None = None
    environment: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    idempotency_key: str | None = None
    raw: Mapping[str, Any] = _raw_field()

    @property
    def is_terminal(self) -> bool:
        """True once the status is delivered, read or failed (where polling usually stops)."""
        return self.status in TERMINAL_STATUSES


@attrs.frozen(slots=True)
class InboundMessage:
    """A message one of your numbers received (``inmsg_…``); live keys only."""

    id: str
    from_number: str | None = None
    to: str | None = None
    content: str | None = None
    type: str | None = None
    is_group: bool = False
    group_id: str | None = None
    received_at: datetime | None = None
    created_at: datetime | None = None
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen(slots=True)
class Group:
    """A WhatsApp group a phone can post to; pass ``id`` (the JID) as ``to``."""

    id: str
    name: str | None = None
    is_community_announce: bool = False
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen(slots=True)
class PhoneNumber:
    """A phone number connected to the account (``id`` is its dashboard id)."""

    id: str
    phone_number: str | None = None
    display_name: str | None = None
    connection_status: str | None = None
    environment: str | None = None
    last_connected_at: datetime | None = None
    last_disconnected_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen(slots=True)
class PhoneNumberStatus:
    """The connection state of one phone number."""

    id: str
    phone_number: str | None = None
    connection_status: str | None = None
    last_connected_at: datetime | None = None
    last_disconnected_at: datetime | None = None
    updated_at: datetime | None = None
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen(slots=True)
class AccountStats:
    """Aggregate counts in the documented account shape."""

    api_keys: int | None = None
    phone_numbers: int | None = None
    messages: int | None = None


@attrs.frozen(slots=True)
class Account:
    """The account that owns the key.

    Decodes both shapes of contract §4.6: the docs' (``account_id``, ``stats``) and the JS
    SDK's (``phone_numbers_count``, ``messages_count``, ``created_at``). Absent fields are None.
    """

    account_id: str | None = None
    name: str | None = None
    email: str | None = None
    subscription_status: str | None = None
    stats: AccountStats | None = None
    environment: str | None = None
    phone_numbers_count: int | None = None
    messages_count: int | None = None
    created_at: datetime | None = None
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen(slots=True)
class MessageCounts:
    """Messages that reached at least each state in the period."""

    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0


@attrs.frozen(slots=True)
class ApiRequestCounts:
    """API requests made in the period."""

    total: int = 0
    successful: int = 0
    failed: int = 0


@attrs.frozen(slots=True)
class Usage:
    """Usage counters for a rolling day, week or month."""

    period: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    messages: MessageCounts = attrs.field(factory=MessageCounts)
    api_requests: ApiRequestCounts = attrs.field(factory=ApiRequestCounts)
    raw: Mapping[str, Any] = _raw_field()


@attrs.frozen(slots=True)
class Pagination:
    """Where a page sits in a listing (pages are 1-based)."""

    page: int
    limit: int
    total: int | None = None
    total_pages: int | None = None


@attrs.frozen(slots=True)
class Page(Generic[T]):
    """One page of a paginated listing."""

    data: list[T]
    pagination: Pagination

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Attribute names that differ from the camelCase of the API field.
_RENAMES = {"from_number": "from"}


def _api_name(attribute: str) -> str:
    return _RENAMES.get(attribute, _camel(attribute))


if sys.version_info >= (3, 11):

    def _structure_datetime(value: Any, _: type) -> datetime:
        # fromisoformat reads the API's "Z" and milliseconds itself from 3.11 on; what it
        # rejects or leaves naive goes the long way, so the result is the same either way.
        if type(value) is str:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                if parsed.tzinfo is not None:
                    return parsed
        return parse_timestamp(value)

else:
    # The API's own timestamp shape: UTC, milliseconds, "Z".
    _API_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

    def _structure_datetime(value: Any, _: type) -> datetime:
        # Every message carries several stamps in the API's one shape; for it, this is the
        # exact text parse_timestamp would hand to fromisoformat, without its regex passes.
        if isinstance(value, str) and _API_TIMESTAMP.fullmatch(value):
            return datetime.fromisoformat(value[:23] + "000+00:00")
        return parse_timestamp(value)


def _structure_str(value: Any, _: type) -> str:
    # cattrs would turn 123 or {} into a string; a wrong type is a decoding error instead.
    # type() first: JSON strings are exact str, and isinstance is a call where type() is not.
    if type(value) is not str and not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_str_list(value: Any, _: type) -> list[str]:
    # cattrs would split a lone string into characters, or take a dict's keys.
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [_structure_str(item, str) for item in value]


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _structure_raw(value: Any, _: type) -> dict[str, Any]:
    # The server's object as it came: a shallow copy, not a per-key structuring pass.
    return dict(value)


# Model fields reach their hooks only when present and not null (see _fields), so an
# optional scalar needs no None check: its plain hook skips cattrs' Optional dispatch per call.
_OPTIONAL_SCALAR_HOOKS: dict[Any, _StructureHook] = {
    datetime | None: _structure_datetime,
    str | None: _structure_str,
    int | None: _structure_int,
    bool | None: _structure_bool,
}
_MODELS = (
    Message,
    InboundMessage,
    Group,
    PhoneNumber,
    PhoneNumberStatus,
    AccountStats,
    Account,
    MessageCounts,
    ApiRequestCounts,
    Usage,
    Pagination,
)


def _make_converter() -> cattrs.Converter:
    import cattrs

    converter = cattrs.Converter()
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook_func(lambda t: t == list[str], _structure_str_list)

    for cls in _MODELS:
        _register_model(converter, cls)
    return converter


def _register_model(converter: cattrs.Converter, cls: type) -> None:
    overrides = _field_overrides(cls)
    structure = _structure_fn(converter, cls, overrides)
    keep_raw = "raw" in overrides

    def hook(value: Any, _: type) -> Any:
        return structure(_fields(value, keep_raw=keep_raw), cls)

    converter.register_structure_hook(cls, hook)


def _field_overrides(cls: type) -> dict[str, Any]:
    from cattrs.gen import override

    attrs.resolve_types(cls)
    overrides = {}
    for field in attrs.fields(cls):
        if field.name == "raw":
            overrides[field.name] = override(rename=_RAW, struct_hook=_structure_raw)
            continue
        name = _api_name(field.name)
        hook = _OPTIONAL_SCALAR_HOOKS.get(field.type)
        overrides[field.name] = override(rename=name, struct_hook=hook)
    return overrides


def _structure_fn(
    converter: cattrs.Converter, cls: type, overrides: dict[str, Any]
) -> _StructureHook:
    from cattrs.gen import make_dict_structure_fn

    # Answers that decode cleanly take cattrs' lean function (no per-field error bookkeeping);
    # a failure runs the detailed one, built on first need, for the message naming each field.
    lean: _StructureHook = make_dict_structure_fn(
        cls, converter, _cattrs_detailed_validation=False, **overrides
    )
    detailed: list[_StructureHook] = []

    def structure(fields: dict[str, Any], _: type) -> Any:
        try:
            return lean(fields, cls)
        except Exception:
            if not detailed:
                detailed.append(make_dict_structure_fn(cls, converter, **overrides))
            return detailed[0](fields, cls)

    return structure


def _is_object(value: Any) -> bool:
    # type() first: isinstance against the Mapping ABC is slow, and JSON objects are dicts.
    return type(value) is dict or isinstance(value, Mapping)


def _fields(value: Any, *, keep_raw: bool) -> dict[str, Any]:
    if not _is_object(value):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    # JSON null means absent: drop it so attrs defaults apply, then keep the original.
    present = {k: v for k, v in value.items() if v is not None}
    if keep_raw:
        present[_RAW] = value
    return present


@functools.cache
def _converter() -> cattrs.Converter:
    # Built on first use: generating the structure functions is most of this module's import
    # time, and an import that never decodes (the CLI's --help, a webhook receiver) skips it.
    return _make_converter()


def decode(value: Any, cls: type[T], endpoint: str) -> T:
    """Turn a decoded JSON value into ``cls``; raise :class:`DecodingError` naming the field."""
    try:
        return _converter().structure(value, cls)
    except Exception as exc:
        detail = _describe(exc)
    # Raised outside the handler, so cattrs' error, which holds the answer's values, is not
    # kept as its __context__.
    raise DecodingError(endpoint, detail)


def decode_sent(value: Any, endpoint: str, idempotency_key: str) -> Message:
    """Decode a send's answer into a :class:`Message` carrying the key it was sent with.

    The same as ``attrs.evolve(decode(value, Message, endpoint), idempotency_key=...)``; a
    :class:`DecodingError` carries the key too, as the API accepted the message.
    """
    message = _sent_message_as_is(value, idempotency_key) if type(value) is dict else None
    if message is not None:
        return message

    try:
        # A server that echoes a key gets it checked as any field would be, then replaced.
        message = decode(value, Message, endpoint)
    except DecodingError as exc:
        exc.idempotency_key = idempotency_key
        raise
    return attrs.evolve(message, idempotency_key=idempotency_key)


def _sent_message_as_is(value: dict[str, Any], idempotency_key: str) -> Message | None:
    # Every send decodes its answer, so the usual one, each field of the exact JSON type it
    # takes, skips cattrs' general pass. Anything else returns None: the general pass decides,
    # and names the faulty field.
    plain_fields, required = _plain_fields(Message)
    # The answer's own object is raw: nothing else holds it, so it needs no copy.
    fields: dict[str, Any] = {"idempotency_key": idempotency_key, "raw": value}
    for name, item in value.items():
        if item is None:
            continue
        spec = plain_fields.get(name, _NOT_A_FIELD)
        if spec is _NOT_A_FIELD:
            continue  # unknown to the model: kept in raw only
        if spec is None:
            return None
        attribute, json_type, convert = spec
        if type(item) is not json_type:
            return None
        if convert is not None:
            try:
                item = convert(item)
            except Exception:
                return None
        fields[attribute] = item
    if not required <= fields.keys():
        return None
    return Message(**fields)


# A field's JSON type, and what turns it into the attribute's value (None: taken as it is).
_PlainSpec = tuple[str, type, Callable[[Any], Any] | None]
_NOT_A_FIELD: Any = object()


@functools.cache
def _plain_fields(cls: type) -> tuple[dict[str, _PlainSpec | None], frozenset[str]]:
    # By API name, each field a plain JSON value fills, or None for one that needs the
    # general pass whenever it is present (the echoed idempotency key among them); and the
    # attributes a message cannot lack.
    attrs.resolve_types(cls)
    plain_fields: dict[str, _PlainSpec | None] = {}
    required = set()
    for field in attrs.fields(cls):
        if field.name == "raw":
            continue
        spec = None if field.name == "idempotency_key" else _plain_spec(field)
        plain_fields[_api_name(field.name)] = spec
        if field.default is attrs.NOTHING:
            required.add(field.name)
    return plain_fields, frozenset(required)


def _plain_spec(field: attrs.Attribute[Any]) -> _PlainSpec | None:
    if field.type in (str, str | None):
        return field.name, str, None
    if field.type in (bool, bool | None):
        return field.name, bool, None
    if field.type in (datetime, datetime | None):
        return field.name, str, _time_of
    if field.type == list[str]:
        return field.name, list, _copy_of_str_list
    return None


def _time_of(value: str) -> datetime:
    return _structure_datetime(value, datetime)


def _copy_of_str_list(items: list[Any]) -> list[str]:
    for item in items:
        if type(item) is not str:
            raise TypeError(f"expected a string, got {type(item).__name__}")
    return items[:]


def _describe(exc: Exception) -> str:
    import cattrs

    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, path="data")[:5])
    return str(exc) or type(exc).__name__
