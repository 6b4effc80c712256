"""Configured read-only queries (cache datasets, probes, smoke assertions): checked at plan time, run as written."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlalchemy is imported by literal_sql(): validating parameters needs only check_select
    from sqlalchemy import TextClause

_SELECT = re.compile(r"^\s*(select|with)\b", re.I)


def check_select(query: str) -> str:
    """One SELECT (or WITH … SELECT) statement, without a trailing ';'.

    Raises:
        ValueError: another kind of statement, or several statements.
    """
    body = query.strip().rstrip(";").strip()
    if not _SELECT.match(body):
        raise ValueError("query must be a SELECT (or WITH … SELECT) statement")
    if ";" in body:
        raise ValueError("query must be a single statement (no ';' inside)")
    return body


def literal_sql(query: str) -> TextClause:
    """A query run as written: colons are not bind parameters (``'a:b'``, ``::`` casts)."""
    from sqlalchemy import text

    return text(query.replace(":", "\\:"))
