"""Saying whose time limit stopped a statement, and after how long.

Three limits can stop a statement: the step's ``statement_timeout`` (the tool sets the session's
``max_statement_time`` / ``max_execution_time`` to it and a watchdog kills what overruns it), the
script's own (``SET STATEMENT max_statement_time=N FOR …``, a ``/*+ MAX_EXECUTION_TIME(N) */`` hint, or
a ``SET max_statement_time`` earlier in the file), or someone's ``KILL QUERY``. The operator needs to
know which one fired to know what to fix. Pure: the caller gives the session's limit it read back.
"""

from __future__ import annotations

import re

#: max_statement_time exceeded (MariaDB), max_execution_time exceeded (MySQL), query interrupted (KILL QUERY)
TIMEOUT_CODES = {"1969", "3024", "1317"}

_OWN_STATEMENT = re.compile(r"^\s*SET\s+STATEMENT\b.*?\bmax_statement_time\s*=\s*(?P<v>[0-9.]+)[^;]*?\bFOR\b",
                            re.IGNORECASE | re.DOTALL)
_OWN_HINT = re.compile(r"/\*\+[^*]*\bMAX_EXECUTION_TIME\s*\(\s*(?P<v>\d+)\s*\)", re.IGNORECASE)


def own_limit(text: str) -> float | None:
    """Seconds of the statement's own limit (``SET STATEMENT max_statement_time=N FOR``, a MySQL hint)."""
    m = _OWN_STATEMENT.match(text)
    if m:
        return float(m["v"])
    m = _OWN_HINT.search(text)
    return int(m["v"]) / 1000 if m else None


def timeout_message(code: str | None, message: str, text: str, *, elapsed_ms: int, step_timeout: float,
                    session_limit: float | None) -> str:
    """The failure's message with whose limit fired and the real duration (unchanged for other errors).

    ``session_limit``: the session's ``max_statement_time`` in seconds when the error came (None: unknown).
    """
    if code not in TIMEOUT_CODES:
        return message
    ran = f" after {elapsed_ms / 1000:.1f}s" if elapsed_ms > 0 else ""
    server = f"server error {code}: {message}"
    own = own_limit(text)
    if code in ("1969", "3024"):
        if own is not None and own > 0:
            return (f"stopped by the statement's own limit (max_statement_time={own:g}s in the statement){ran}, "
                    f"not by the step's timeout of {step_timeout:g}s ({server})")
        if session_limit is not None and session_limit > 0 and abs(session_limit - step_timeout) > 1e-6:
            return (f"stopped by the session's max_statement_time={session_limit:g}s (set by the script, not the "
                    f"step's timeout of {step_timeout:g}s){ran} ({server})")
        return (f"timed out: the step's timeout of {step_timeout:g}s was exceeded (the server stopped it){ran} "
                f"({server})")
    if step_timeout and elapsed_ms >= step_timeout * 1000:
        return f"timed out: the step's timeout of {step_timeout:g}s was exceeded (the tool killed it){ran} ({server})"
    return (f"interrupted{ran} by a KILL from another connection, before the step's timeout of {step_timeout:g}s "
            f"({server})")
