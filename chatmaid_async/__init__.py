"""Asyncio-native SDK for the Chatmaid Developers API.

``Chatmaid`` is the client; models live in ``chatmaid_async.models`` and errors in
``chatmaid_async.errors`` (both re-exported here). The sandbox server, the webhook helpers,
the CLI and the Redis limiter are imported only when used.
"""

from chatmaid_async._client import DEFAULT_BASE_URL, Chatmaid
from chatmaid_async._limits import RateLimit
from chatmaid_async._retry import RetryPolicy
from chatmaid_async._version import __version__
from chatmaid_async.batch import SendRequest, SendResult
from chatmaid_async.errors import *  # noqa: F403
from chatmaid_async.errors import __all__ as _errors_all
from chatmaid_async.models import (
    Account,
    ConnectionStatus,
    Group,
    InboundMessage,
    Message,
    MessageErrorCode,
    MessageStatus,
    Page,
    Pagination,
    PhoneNumber,
    PhoneNumberStatus,
    Usage,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "Account",
    "Chatmaid",
    "ConnectionStatus",
    "Group",
    "InboundMessage",
    "Message",
    "MessageErrorCode",
    "MessageStatus",
    "Page",
    "Pagination",
    "PhoneNumber",
    "PhoneNumberStatus",
    "RateLimit",
    "RetryPolicy",
    "SendRequest",
    "SendResult",
    "Usage",
    "__version__",
    *_errors_all,
]
