"""The parts of the Redis-shared rate limiter; ``chatmaid_async.redis_limiter`` is its face.

Only this package imports redis-py, so ``import chatmaid_async`` never does. Importing it
without redis-py raises an ImportError that names the extra to install.
"""

# Every module below needs one of these: check them all once, before any module runs.
try:
    import redis.asyncio.retry
    import redis.backoff
    import redis.exceptions  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "chatmaid_async.redis_limiter needs redis-py's asyncio client: "
        'pip install "chatmaid-async[redis]"'
    )
    raise ImportError(msg, name="redis") from exc
