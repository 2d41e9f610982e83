"""Asyncio-native SDK for the Chatmaid Developers API."""

from chatmaid_async._limits import RateLimit
from chatmaid_async._version import __version__
from chatmaid_async.errors import *  # noqa: F403
from chatmaid_async.errors import __all__ as _errors_all

__all__ = ["RateLimit", "__version__", *_errors_all]
