"""Time and ids as the metadata store keeps them: naive UTC, random hex."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, without a zone (what the store's DATETIME columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex
