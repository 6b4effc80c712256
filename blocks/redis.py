"""The FT system's Redis (the cache rebuilt after an upgrade) as a Prefect block."""

from __future__ import annotations

import os

import redis
from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class RedisConnection(Block):
    """Connection to the site's Redis.

    Attributes:
        host: Redis host.
        port: Redis port.
        db: Database number.
        username: ACL user, if any.
        password: Password, stored encrypted by Prefect.

    Example:
        ```python
        from blocks.redis import RedisConnection

        client = RedisConnection.load("us-redis").get_client()
        ```
    """

    _block_type_name = "FT Redis Connection"
    _description = "The FT system's Redis, used by cache rebuild and health checks."

    host: str = Field(default="127.0.0.1", description="Redis host.")
    port: int = Field(default=6379, description="Redis port.")
    db: int = Field(default=0, description="Database number.")
    username: str | None = Field(default=None, description="ACL user name, if any.")
    password: SecretStr | None = Field(default=None, description="Password; never printed.")

    def get_client(self, **kwargs: object) -> redis.Redis:
        """A client; the password is unwrapped only here."""
        return redis.Redis(host=self.host, port=self.port, db=self.db, username=self.username,
                           password=self.password.get_secret_value() if self.password else None,
                           socket_timeout=10, **kwargs)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"

    @classmethod
    def from_url(cls, url: str) -> RedisConnection:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        db = int(parsed.path.lstrip("/") or 0)
        return cls(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379, db=db,
                   username=parsed.username or None,
                   password=SecretStr(parsed.password) if parsed.password else None)

    @classmethod
    def from_env(cls) -> RedisConnection | None:
        url = os.environ.get("FT_UPGRADE_REDIS_URL")
        return cls.from_url(url) if url else None
