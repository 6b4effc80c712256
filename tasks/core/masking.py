"""Credential masking for everything that leaves the process: logs, artifacts, reports, the ledger.

Pure functions, no I/O. Masking is deliberately greedy: over-masking costs a little readability,
under-masking leaks a customer password into a log store that is kept for weeks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from urllib.parse import quote, quote_plus

MASK = "***"

# A quoted SQL literal. Backslash escapes and doubled quotes stay inside the literal; an unterminated
# literal (truncated statement) runs to the end of the text so its tail is still masked.
_SQ = r"'(?:[^'\\]|\\.|'')*+(?:'|\Z)"  # possessive: one way to read a literal, so matching stays linear
_DQ = r'"(?:[^"\\]|\\.|"")*+(?:"|\Z)'
_LIT = rf"(?P<lit>{_SQ}|{_DQ})"
_SECRET_KEYS = r"[\w.\-]*(?:password|passwd|pwd|secret|token)|api_?key"
_WORD = r"(?:[\w$]+|`[^`]*`|'[^']*'|\"[^\"]*\")"  # plugin name, possibly quoted

_SQL_SECRET_RES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE | re.DOTALL)
    for p in (
        # IDENTIFIED BY 'x' / IDENTIFIED BY PASSWORD 'hash'
        rf"(?P<pre>\bIDENTIFIED\s+BY\s+(?:PASSWORD\s+)?){_LIT}",
        # IDENTIFIED VIA ed25519 USING 'x' (MariaDB) / IDENTIFIED WITH plugin BY|AS 'x' (MySQL, ClickHouse)
        rf"(?P<pre>\bIDENTIFIED\s+(?:VIA|WITH)\s+{_WORD}\s+(?:USING|BY|AS)\s+){_LIT}",
        # ... OR unix_socket USING 'x' (MariaDB chained authentication)
        rf"(?P<pre>\bOR\s+{_WORD}\s+USING\s+){_LIT}",
        # PASSWORD('x'), OLD_PASSWORD('x')
        rf"(?P<pre>\b(?:OLD_)?PASSWORD\s*\(\s*){_LIT}",
        # SET PASSWORD [FOR 'u'@'h'] = 'x'
        rf"(?P<pre>\bSET\s+PASSWORD\b(?>[^=;'\"`]++|{_SQ}|{_DQ}|`[^`]*+`)*+=\s*){_LIT}",
        # ... REPLACE 'current_password' (MySQL 8 password change clause)
        rf"(?P<pre>\bREPLACE\s+){_LIT}",
        # CHANGE MASTER TO MASTER_PASSWORD='x' / CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD='x'
        rf"(?P<pre>\b(?:MASTER|SOURCE)_PASSWORD\s*=\s*){_LIT}",
        # OPTIONS (PASSWORD 'x') of CREATE SERVER
        rf"(?P<pre>\bPASSWORD\s+){_LIT}",
        # any password='x' / api_key = "x" assignment with a literal value (DML, engine settings)
        rf"(?P<pre>(?<![\w.\-])(?:{_SECRET_KEYS})\s*=\s*){_LIT}",
    )
)

# Every pattern above and the URL pattern below needs one of these words: text without any of them
# (nearly every statement of a data script) skips the nine substitutions.
_TRIGGERS = re.compile(r"identified|using|password|passwd|pwd|secret|token|api_?key|replace|://", re.IGNORECASE)

# scheme://[user[:password]@]host... ; the userinfo ends at the last '@' before the query string so that
# unencoded '@', '/' or '#' inside a password are still covered.
_URL_RE = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<rest>[^\s'\"<>]*)")
_PARAM_RE = re.compile(
    rf"(?P<pre>(?<![\w.\-])(?:{_SECRET_KEYS})\s*=\s*)(?P<val>'[^']*'|\"[^\"]*\"|\{{[^}}]*\}}|[^&;\s'\"]*)",
    re.IGNORECASE,
)


def _mask_literal(literal: str) -> str:
    """Replace a (possibly quoted) secret with ``***``, keeping its quote style."""
    if len(literal) >= 2 and literal[0] in "'\"{" and literal[-1] == {"{": "}"}.get(literal[0], literal[0]):
        return f"{literal[0]}{MASK}{literal[-1]}"
    if literal[:1] in ("'", '"'):  # unterminated literal
        return f"{literal[0]}{MASK}{literal[0]}"
    return MASK


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _mask_extra(text: str, pattern: re.Pattern[str]) -> str:
    group = 1 if pattern.groups else 0

    def repl(m: re.Match[str]) -> str:
        if m.group(group) is None:
            return m.group(0)
        start, end = m.start(group) - m.start(0), m.end(group) - m.start(0)
        whole = m.group(0)
        return whole[:start] + _mask_literal(m.group(group)) + whole[end:]

    return pattern.sub(repl, text)


def mask_sql(text: str, extra_patterns: Sequence[str] = ()) -> str:
    """Mask passwords in SQL text, plus credentials of any URL embedded in it.

    ``extra_patterns`` are regexes from the site config, compiled case-insensitively; each one's
    group 1 (or the whole match when it has no group) is replaced with ``***`` (``'***'`` when the
    replaced text is a quoted literal). An invalid pattern raises ``re.error``: a broken masking
    config must fail loudly rather than leak.
    """
    if not text:
        return text
    if _TRIGGERS.search(text):
        for pattern in _SQL_SECRET_RES:
            text = pattern.sub(lambda m: m.group("pre") + _mask_literal(m.group("lit")), text)
        text = _URL_RE.sub(_mask_one_url, text)
    for extra in extra_patterns:
        text = _mask_extra(text, _compile(extra))
    return text


def secret_literals(text: str, extra_patterns: Sequence[str] = ()) -> set[str]:
    """The secret values a statement carries (``IDENTIFIED BY 'x'`` → ``x``), as written and unescaped.

    A server error may quote the statement (``… near 'BY 'x''``) where no keyword is left to mask by:
    these values are then masked wherever they appear (:func:`mask_text`).
    """
    found: set[str] = set()
    if text and _TRIGGERS.search(text):
        for pattern in _SQL_SECRET_RES:
            for m in pattern.finditer(text):
                found.update(_literal_values(m.group("lit")))
    for extra in extra_patterns:
        pattern = _compile(extra)
        group = 1 if pattern.groups else 0
        for m in pattern.finditer(text or ""):
            if m.group(group):
                found.update(_literal_values(m.group(group)))
    return {v for v in found if len(v) >= 3}


def _literal_values(literal: str) -> set[str]:
    quote_char = literal[:1]
    if quote_char not in ("'", '"'):
        return {literal}
    inner = literal[1:-1] if len(literal) >= 2 and literal.endswith(quote_char) else literal[1:]
    return {inner, inner.replace(quote_char * 2, quote_char).replace("\\" + quote_char, quote_char)}


def _mask_params(text: str) -> str:
    return _PARAM_RE.sub(
        lambda m: m.group("pre") + (_mask_literal(m.group("val")) if m.group("val") else ""), text
    )


def _mask_one_url(m: re.Match[str]) -> str:
    scheme, rest = m.group("scheme"), m.group("rest")
    if scheme.lower().startswith("chdb"):
        return m.group(0)  # in-process engine, no credentials
    query_at = rest.find("?")
    authority_end = len(rest) if query_at < 0 else query_at
    at = rest.rfind("@", 0, authority_end)
    if at >= 0:
        userinfo = rest[:at]
        colon = userinfo.find(":")
        if colon >= 0:
            rest = f"{userinfo[: colon + 1]}{MASK}{rest[at:]}"
            authority_end = len(rest) if query_at < 0 else rest.find("?")
    if query_at >= 0:
        rest = rest[:authority_end] + _mask_params(rest[authority_end:])
    return scheme + rest


def mask_url(url: str) -> str:
    """Hide the password of DB URLs and DSNs (every URL in the text, plus ``password=`` style pairs).

    ``mysql+pymysql://u:secret@h/db`` becomes ``mysql+pymysql://u:***@h/db``; ``chdb://`` URLs are left
    untouched because the embedded engine has no credentials.
    """
    if not url:
        return url
    masked = _URL_RE.sub(_mask_one_url, url)
    if "://" not in url:  # libpq / ODBC style "host=h password=x" or "Server=h;Pwd=x;"
        masked = _mask_params(masked)
    return masked


#: A quoted text this long that begins a known secret is masked where a secret may be echoed cut short: a
#: server cuts the statement it quotes in an error (80 characters on MariaDB), so a long password's echo is
#: a prefix of it, closed by the server's quote.
PREFIX_MIN = 4
_BEFORE_SECRET = r"(?i:\b(?:BY|USING)\s+|\bPASSWORD\s*\(\s*)"


def mask_text(text: str, secrets: Iterable[str], *, echoed: Iterable[str] = ()) -> str:
    """Replace every known secret value (length >= 3) anywhere in ``text`` with ``***``.

    URL-encoded spellings are masked too, since a password often reappears inside a DSN.
    Longer secrets win so a secret containing another one is masked as a whole. A quoted prefix of a
    secret (a quote, at least :data:`PREFIX_MIN` of its first characters, then a quote, ``...`` or the end
    of the text) is masked after ``BY '``, ``USING '`` and ``PASSWORD('``; for the ``echoed`` secrets (those of
    the statement whose server error ``text`` is) it is masked wherever it stands.
    """
    if not text:
        return text
    known = tuple(s for s in secrets if isinstance(s, str) and len(s) >= 3)
    pattern = _secrets_pattern(known)
    if pattern is not None:
        text = pattern.sub(MASK, text)
    cut = tuple(s for s in echoed if isinstance(s, str) and len(s) > PREFIX_MIN)
    if cut or (_KEYWORD.search(text) and any(len(s) > PREFIX_MIN for s in known)):
        prefixes = _prefix_pattern(known, cut)
        text = prefixes.sub(_masked, text) if prefixes is not None else text
    return text


_KEYWORD = re.compile(_BEFORE_SECRET + "['\"]")  # texts without it (nearly all) skip the prefixes


def _masked(m: re.Match[str]) -> str:
    groups = m.groupdict()
    return (groups.get("pre") or "") + (groups.get("quote") or "") + MASK


def _prefixes(secrets: Iterable[str]) -> str:
    found = {secret[:n] for secret in secrets for n in range(PREFIX_MIN, len(secret))}
    return "|".join(re.escape(p) for p in sorted(found, key=len, reverse=True))


@lru_cache(maxsize=64)
def _prefix_pattern(secrets: tuple[str, ...], echoed: tuple[str, ...]) -> re.Pattern[str] | None:
    """Quoted prefixes: of the secrets after a keyword, of the echoed ones anywhere (the longest first)."""
    branches = []
    after_keyword = _prefixes(s for s in secrets if len(s) > PREFIX_MIN)
    anywhere = _prefixes(echoed)
    end = "(?=['\"]|\\.\\.\\.|\u2026|\\Z)"  # MariaDB's echo ends a cut statement with "..."
    if after_keyword:
        branches.append(f"(?P<pre>{_BEFORE_SECRET})(?P<quote>['\"])(?:{after_keyword}){end}")
    if anywhere:
        branches.append(f"(?<=['\"])(?:{anywhere}){end}")
    return re.compile("|".join(branches)) if branches else None


@lru_cache(maxsize=64)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """One alternation of the secrets and their URL-encoded spellings, longest first."""
    variants: set[str] = set()
    for secret in secrets:
        variants.update({secret, quote(secret, safe=""), quote_plus(secret, safe="")})
    if not variants:
        return None
    return re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)))
