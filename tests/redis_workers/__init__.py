"""Worker processes and a private Redis server for the Redis limiter tests and benchmark."""
