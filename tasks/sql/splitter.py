"""Split FT upgrade SQL scripts into statements exactly as the ``mariadb`` command-line client does.

Pure module: text in, records out (no I/O). The scanner is a port of the MariaDB 10.11 client's
``read_and_execute()`` / ``add_line()`` / ``find_command()`` / ``get_arg()`` (client/mysql.cc) for the
way the upgrade runs scripts: batch mode (``mariadb < file``), default ``--skip-comments``,
``--default-character-set=utf8mb4`` and a server ``sql_mode`` without ANSI_QUOTES / NO_BACKSLASH_ESCAPES.
What the client does, and therefore what ``Statement.text`` is (checked against the real client, byte
for byte on the wire and through the server's general log, see tests/tasks/sql/test_splitter_vs_client.py):

* Ordinary comments never reach the server: ``-- `` (dash dash + whitespace/end of line, or ``--`` first
  in a statement) and ``#`` drop the rest of the line but its newline stays when the statement goes on;
  ``/* … */`` is dropped, including the newlines it spans, and one space is put in front of the next
  non-space character of the line (``SELECT 1/* c */+2`` -> ``SELECT 1 +2``; ``/* c */SELECT 2`` ->
  `` SELECT 2``, even across a delimiter). ``/*! … */``, ``/*!40101 … */``, ``/*M! … */`` are kept.
* The delimiter ends a statement wherever it is outside quotes and ordinary comments - also inside a
  ``/*! … */`` conditional comment, as in the client.
* Leading whitespace of a statement is skipped, trailing whitespace/control characters are removed, a CR
  before LF is dropped (also inside strings), a backslash at the very end of a line is dropped.
* Lines are joined with LF; ``\\g`` / ``\\G`` outside strings end a statement too; ``\\N`` is kept.
* ``USE db`` and ``DELIMITER x`` are client commands when they start a statement (see ``_find_command``);
  the client sends ``USE`` as COM_INIT_DB (preceded by ``SELECT DATABASE()``), so it is returned with
  ``is_use=True``.
* ``SOURCE name`` / ``\\. name`` (``com_source()``) run the named file's statements in place: the file name is
  what the client reads (after the first space, to the end of the command; for ``\\.`` to the end of the
  line, delimiter included), the DELIMITER carries over both ways (the client keeps one global delimiter),
  ``-- @database:`` lines of the included file stay in it. Reading the file is the caller's job (an
  ``include`` resolver, see :func:`split_script`): this module does no I/O. A cycle is refused here.
  Other client commands (``quit``, ``system``, ``\\!``…) are refused.

Where the client would do something silently broken or send a half-parsed text (unterminated quote or
comment, a custom DELIMITER still open at end of file with text pending, a DELIMITER glued after a
statement, an empty DELIMITER, text before ``\\.`` that the client drops) we report a ``SqlSplitError``
naming ``file:line[:column]`` instead - every such problem of the script and its included files, not only
the first (:func:`split_script`); :func:`split_statements` raises them.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Include", "ScriptSplit", "SqlSplitError", "SqlSplitErrors", "Statement", "decode_sql_bytes",
           "split_script", "split_statements", "where"]

# my_isspace() of the utf8mb4 charset: 0x09-0x0D and the space (NOT Python's str.isspace()).
_SPACE = " \t\n\v\f\r"
# remove_cntrl() strips trailing characters that are not my_isgraph(): controls, space and DEL.
_CNTRL = "".join(map(chr, range(0x21))) + "\x7f"
_LEADING_SPACE = re.compile(r"[ \t\n\v\f\r]*")
_WORD_END = re.compile(r"[ \t]")  # find_command() cuts the command word at a space or a tab only
# Inside an ordinary /* comment only these matter: "/*" (re-opens; "/*!" flags a server-side comment)
# and "*/" (closes, unless that flag is up - the client's ss_comment quirk).
_ML_COMMENT_EVENT = re.compile(r"/\*|\*/")
_STRING_EVENT = {"'": re.compile(r"['\\]"), '"': re.compile(r'["\\]'), "`": re.compile(r"`")}
_ANNOTATION = re.compile(r"[ \t]*@database\b")
_ANNOTATION_FULL = re.compile(r"[ \t]*@database:[ \t]*([A-Za-z0-9_$]+)[ \t]*\Z")
_STRING_KIND = {"'": "single-quoted string", '"': "double-quoted string", "`": "backtick identifier"}

# Named client commands of MariaDB 10.11 (client/mysql.cc ``commands[]``): name -> takes parameters.
_CLIENT_COMMANDS: dict[str, bool] = {
    "?": True, "charset": True, "clear": False, "connect": True, "delimiter": True, "edit": False,
    "ego": False, "exit": False, "go": False, "help": True, "nopager": False, "notee": False,
    "nowarning": False, "pager": True, "print": False, "prompt": True, "quit": False, "rehash": False,
    "sandbox": False, "source": True, "status": False, "system": True, "tee": True, "use": True,
    "warnings": False,
}


@dataclass(frozen=True)
class Statement:
    """One unit the client executes: a query sent with COM_QUERY, or a ``USE`` (COM_INIT_DB)."""

    file: str  # the source name given by the caller (path relative to the SQL root)
    line: int  # 1-based line number where the statement's text starts
    sequence: int  # 1-based index among statements of this file (USE commands count too)
    text: str  # exactly what the client sends (for USE: the command as written, comments removed)
    sha256: str  # hex sha256 of text (utf-8)
    database: str  # logical database: nearest preceding `-- @database: NAME` line, else the default
    is_use: bool  # True for the client command `USE db` (client switches database; not sent as a query)
    use_schema: str | None  # for USE: the schema name (backticks removed)
    #: the SOURCE commands this statement was included through, outermost first: (including file, line)
    via: tuple[tuple[str, int], ...] = ()

    @property
    def source_name(self) -> str:
        """The file as reports name it: ``main.sql:12 > inc.sql`` for an included one (its own path otherwise)."""
        return where(self.file, None, self.via)

    @property
    def where(self) -> str:
        """``file:line``, preceded by the including files and lines (``main.sql:12 > inc.sql:3``)."""
        return where(self.file, self.line, self.via)


def where(file: str, line: int | None, via: tuple[tuple[str, int], ...] = (), column: int | None = None) -> str:
    """A place in a script, through the SOURCE commands that included it: ``main.sql:12 > inc.sql:3[:col]``."""
    here = file if line is None else f"{file}:{line}" if column is None else f"{file}:{line}:{column}"
    return " > ".join([*(f"{f}:{n}" for f, n in via), here])


class SqlSplitError(ValueError):
    """A script the client would reject or run differently than written; str() is ``file:line[:col]: why``."""

    def __init__(self, file: str, line: int, reason: str, column: int | None = None,
                 via: tuple[tuple[str, int], ...] = ()) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
        self.via = via
        super().__init__(f"{where(file, line, via, column)}: {reason}")


class SqlSplitErrors(SqlSplitError):
    """Several problems of one script (and the files it includes); str() lists them, one a line.

    ``file``, ``line``, ``reason`` are the first one's; ``errors`` holds them all.
    """

    def __init__(self, errors: list[SqlSplitError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.reason, first.column, first.via)
        self.errors = tuple(errors)
        self.args = ("\n".join(str(e) for e in errors),)


@dataclass(frozen=True)
class Include:
    """A ``SOURCE``/``\\.`` command: the name the client would open, and where it was written."""

    name: str  # exactly as the client reads it (not resolved)
    file: str  # the including file's source name
    line: int
    via: tuple[tuple[str, int], ...] = ()  # how the including file itself was included

    def error(self, reason: str) -> SqlSplitError:
        """A problem of this command, named at the SOURCE line."""
        return SqlSplitError(self.file, self.line, reason, via=self.via)


#: Reads an included file for the splitter: ``(source name, text)``, or raises :class:`SqlSplitError`
#: (``Include.error``) when it may not or cannot be read. The source name identifies the file (cycle check).
IncludeResolver = Callable[[Include], tuple[str, str]]


@dataclass(frozen=True)
class ScriptSplit:
    """What :func:`split_script` found: the statements (sound where no problem touches them) and every problem."""

    statements: list[Statement]
    problems: list[SqlSplitError]
    included: tuple[str, ...] = ()  # source names of the files included, in the order they were read

    def raise_problems(self) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise SqlSplitErrors(self.problems)


def decode_sql_bytes(data: bytes, *, source: str) -> str:
    """Decode a script as strict UTF-8 (a leading BOM is dropped, as the client skips it)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        bad = data[exc.start]
        raise SqlSplitError(source, line, f"invalid UTF-8 byte 0x{bad:02x} (scripts must be UTF-8)",
                            column) from None


def split_statements(text: str, *, source: str, default_database: str = "ft_db",
                     known_databases: frozenset[str] | None = None,
                     include: IncludeResolver | None = None) -> list[Statement]:
    """Return the statements the ``mariadb`` client would execute for ``text``, in order.

    Raises:
        SqlSplitError: the script's problem (:class:`SqlSplitErrors` when there are several).
    """
    found = split_script(text, source=source, default_database=default_database, known_databases=known_databases,
                         include=include)
    found.raise_problems()
    return found.statements


def split_script(text: str, *, source: str, default_database: str = "ft_db",
                 known_databases: frozenset[str] | None = None,
                 include: IncludeResolver | None = None) -> ScriptSplit:
    """Split ``text`` and the files its ``SOURCE`` commands name (read through ``include``); never raises.

    Every problem is collected (the splitter goes on after each), so that ``validate`` can list them all.
    Without ``include``, a ``SOURCE`` is a problem. Statements of included files carry their own file and
    line, and ``via`` the SOURCE commands that led there; ``sequence`` counts across all of them.

    Example:
        ```python
        files = {"a.sql": "SELECT 1;\\nSOURCE b.sql;\\n", "b.sql": "SELECT 2;\\n"}
        found = split_script(files["a.sql"], source="a.sql", include=lambda i: (i.name, files[i.name]))
        [s.where for s in found.statements]  # ['a.sql:1', 'a.sql:2 > b.sql:1']
        ```
    """
    state = _Shared(include, known_databases)
    _Splitter(source, default_database, state).run(text)
    return ScriptSplit(state.statements, state.problems, tuple(state.included))


def _get_arg(text: str) -> str | None:
    """The client's ``get_arg()``: first argument after the command word, quotes/escapes resolved."""
    n = len(text)
    i = 0
    while i < n and text[i] in _SPACE:
        i += 1
    while i < n and text[i] not in _SPACE:  # the command word
        i += 1
    if i >= n:
        return None
    while i < n and text[i] in _SPACE:
        i += 1
    quote = ""
    if i < n and text[i] in "'\"`":
        quote = text[i]
        i += 1
    start = i
    chars: list[str] = []
    while i < n:
        c = text[i]
        escaped = c == "\\" and i + 1 < n and quote != "`"
        if escaped or (quote and c == quote and text[i + 1 : i + 2] == quote):
            chars.append(text[i + 1])  # escaped character or doubled quote
            i += 2
        elif c == (quote or " "):  # an unquoted argument ends at a space (not a tab!)
            quote = ""
            break
        else:
            chars.append(c)
            i += 1
    return "".join(chars) if i != start and not quote else None


def _find_command(text: str, delimiter: str) -> str | None:
    """The client's ``find_command(char*)``: the named client command ``text`` starts with, if any."""
    name = text.lstrip(_SPACE)
    if "\\g" in name or (delimiter in name and name[:9].lower() != "delimiter"):
        return None
    cut = _WORD_END.search(name)
    word, has_args = (name[: cut.start()], bool(name[cut.start() :].lstrip(_SPACE))) if cut else (name, False)
    if not word.isascii():
        return None
    command = word.lower()
    takes_params = _CLIENT_COMMANDS.get(command)
    if takes_params is None or (has_args and not (takes_params and _get_arg(name) is not None)):
        return None
    return command


@functools.lru_cache(maxsize=64)
def _special_chars(delimiter: str) -> re.Pattern[str]:
    """Characters that can change the scanner state outside strings and comments."""
    chars = set("'\"`\\#-/*")
    if delimiter[0].isascii():  # the client consumes a multi-byte character before testing the delimiter
        chars.add(delimiter[0])
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")


class _Shared:
    """What the splitters of a script and of the files it includes share: output, problems, the resolver."""

    def __init__(self, include: IncludeResolver | None, known_databases: frozenset[str] | None) -> None:
        self.include = include
        self.known_databases = known_databases
        self.statements: list[Statement] = []
        self.problems: list[SqlSplitError] = []
        self.included: list[str] = []


class _Splitter:
    """Line-by-line state machine mirroring the client (state: buffer, in_string, ml_comment, delimiter).

    One per file; a ``SOURCE`` runs a child splitter for the included file, which takes the delimiter over
    and hands it back (the client's delimiter is global), and adds to the same statements and problems.
    """

    def __init__(self, source: str, default_database: str, shared: _Shared,
                 via: tuple[tuple[str, int], ...] = ()) -> None:
        self.source = source
        self.shared = shared
        self.via = via
        self.known_databases = shared.known_databases
        self.database = default_database
        self.delimiter = ";"
        self.delimiter_set: tuple[str, int, tuple[tuple[str, int], ...]] = (source, 0, via)  # where, for errors
        self.buf: list[str] = []  # the client's glob_buffer, in pieces (never empty strings)
        self.in_string = ""  # the open quote character, or ""
        self.string_open = (0, 0)
        self.ml_comment = False  # inside an ordinary /* */ comment
        self.comment_open = (0, 0)
        self.stmt_line = 0
        self.stmt_database = default_database
        self.statements = shared.statements

    def problem(self, line: int, reason: str, column: int | None = None) -> None:
        """Note a problem and go on (every problem of every file is listed, not only the first)."""
        self.shared.problems.append(SqlSplitError(self.source, line, reason, column, self.via))

    def run(self, text: str) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.split("\n")
        if lines[-1] == "":  # "a\n" is one line, not two
            lines.pop()
        for lineno, raw in enumerate(lines, 1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if "\0" in line:
                self.problem(lineno, "NUL character (the client refuses it without --binary-mode)",
                             line.index("\0") + 1)
                continue
            if not self.buf and not self.ml_comment:
                command = _find_command(line, self.delimiter)
                if command is not None:
                    self.client_command(command, line, lineno, self.database)
                    continue
            self.add_line(line, lineno)
        self.finish()

    def add_line(self, line: str, lineno: int) -> None:
        """One input line of the client's ``add_line()``; the hot loop jumps between special characters."""
        buf = self.buf
        if not line and not buf:
            return
        n = len(line)
        out: list[str] = []  # characters of this line not yet flushed into buf
        pos = 0
        need_space = False  # a /* */ comment just ended: space before the next plain ASCII character
        ss_comment = False  # inside /*! on this line (the client resets it for every line)
        delimiter = self.delimiter
        special = _special_chars(delimiter)
        while pos < n:
            if self.ml_comment:
                m = _ML_COMMENT_EVENT.search(line, pos)
                if m is None:
                    break
                i = m.start()
                if line[i] == "/":
                    if line[i + 2 : i + 3] == "!":
                        ss_comment, pos = True, i + 1
                    else:
                        pos = i + 1 if line[i + 2 : i + 4] == "M!" else i + 2
                elif ss_comment:
                    ss_comment, pos = False, i + 1
                else:
                    self.ml_comment, need_space, pos = False, True, i + 2
                continue
            quote = self.in_string
            if quote:
                m = _STRING_EVENT[quote].search(line, pos)
                if m is None:
                    out.append(line[pos:])
                    break
                i = m.start()
                if line[i] == "\\":
                    if i + 1 == n:  # backslash at end of line: the client drops it
                        if i > pos:
                            out.append(line[pos:i])
                        break
                    out.append(line[pos : i + 2])
                    pos = i + 2
                else:
                    out.append(line[pos : i + 1])
                    self.in_string = ""
                    pos = i + 1
                continue
            if not out and not buf:  # start of a statement: skip whitespace
                pos = _LEADING_SPACE.match(line, pos).end()
                if pos >= n:
                    break
            m = special.search(line, pos)
            i = n if m is None else m.start()
            if i > pos:  # plain run: ordinary characters
                chunk = line[pos:i]
                if need_space:
                    chunk, need_space = _space_after_comment(chunk)
                if not out and not buf:
                    self.start_statement(lineno)
                out.append(chunk)
            if m is None:
                break
            c = line[i]
            if c == "\\":
                if i + 1 == n:
                    break
                command = line[i + 1]
                if command == "N":  # \N is NULL; copied as is (need_space untouched, like the client)
                    if not out and not buf:
                        self.start_statement(lineno)
                    out.append("\\N")
                    pos = i + 2
                    continue
                if command == ".":
                    self.backslash_source(line, i, bool(out or buf), ss_comment, lineno)
                    out.clear()
                    buf.clear()
                    break  # the client takes the rest of the line as the file name
                if command not in "gG":
                    reason = "(a backslash outside quotes is a mariadb client command)"
                    self.problem(lineno, f"client command '\\{command}' is not supported {reason}", i + 1)
                    pos = i + 2
                    continue
                buf.extend(out)
                out.clear()
                self.go()
                pos = i + 2
                continue
            if line.startswith(delimiter, i):
                buf.extend(out)
                out.clear()
                pos = i + len(delimiter)
                self.end_statement()
                if self.delimiter != delimiter:
                    delimiter = self.delimiter
                    special = _special_chars(delimiter)
                continue
            nxt = line[i + 1 : i + 2]
            if c == "#" or (
                c == "-" and nxt == "-" and (i + 2 == n or line[i + 2] in _SPACE or (not out and not buf))
            ):
                buf.extend(out)  # flushed first, as the client does (matters for the end-of-line test below)
                out.clear()
                if c == "-" and not line[:i].strip(_SPACE):
                    self.annotation(line[i + 2 :], lineno, i + 1)
                break
            if c == "/" and nxt == "*" and line[i + 2 : i + 3] != "!" and line[i + 2 : i + 4] != "M!":
                buf.extend(out)
                out.clear()
                self.ml_comment = True
                self.comment_open = (lineno, i + 1)
                pos = i + 2
                continue
            # An ordinary character that the client copies (it may open a string or a /*! comment).
            if c == "/" and line[i + 1 : i + 3] == "*!":
                ss_comment = True
            elif c == "*" and ss_comment and nxt == "/":
                ss_comment = False
            elif c in "'\"`":
                self.in_string = c
                self.string_open = (lineno, i + 1)
            if need_space:  # c is a special character, never a space
                c, need_space = " " + c, False
            if not out and not buf:
                self.start_statement(lineno)
            out.append(c)
            pos = i + 1
        if out or buf:
            tail = "".join(out)
            # The client adds no newline after a line whose pending part starts with "delimiter".
            if self.in_string or self.ml_comment or tail[:9].lower() != "delimiter":
                tail += "\n"
            if not self.ml_comment:
                buf.append(tail)

    def start_statement(self, lineno: int) -> None:
        self.stmt_line = lineno
        self.stmt_database = self.database

    def end_statement(self) -> None:
        """Delimiter seen: the buffer is a client command or a query (``add_line()`` after is_prefix)."""
        text = "".join(self.buf)
        command = _find_command(text, self.delimiter)
        if command is None:
            self.go()
            return
        self.buf.clear()
        if command == "delimiter":
            self.problem(self.stmt_line, "DELIMITER must start its own line (the client glues it to the "
                                         "text around it and silently runs something else)")
            return
        self.client_command(command, text, self.stmt_line, self.stmt_database)

    def go(self) -> None:
        """The client's ``com_go()``: send the buffer unless it is blank after removing trailing controls."""
        text = "".join(self.buf).rstrip(_CNTRL)
        self.buf.clear()
        if text:
            self.emit(text, self.stmt_line, self.stmt_database)

    def emit(self, text: str, line: int, database: str, use_schema: str | None = None) -> None:
        self.statements.append(Statement(
            file=self.source, line=line, sequence=len(self.statements) + 1, text=text,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), database=database,
            is_use=use_schema is not None, use_schema=use_schema, via=self.via))

    def client_command(self, command: str, text: str, line: int, database: str) -> None:
        """Run a named client command found at the start of a line or of a delimited statement."""
        if command == "delimiter":
            token = _get_arg(text)
            if not token:
                self.problem(line, "empty DELIMITER: DELIMITER must be followed by a delimiter token")
            elif "\\" in token:
                self.problem(line, f"DELIMITER {token!r} contains a backslash (the client refuses it)")
            else:
                self.delimiter, self.delimiter_set = token, (self.source, line, self.via)
        elif command == "use":
            schema = _get_arg(text)
            if not schema:
                self.problem(line, "USE must be followed by a database name")
                return
            self.emit(text.lstrip(_SPACE).rstrip(_CNTRL), line, database, use_schema=schema)
        elif command == "source":
            # com_source(): the name follows the first space after the command word, to the end of the command
            name = text.lstrip(_SPACE)
            space = name.find(" ")
            if space < 0:
                self.problem(line, "SOURCE needs a file name after a space (the client reads it there)")
                return
            self.source_file(name[space:].lstrip(_SPACE).rstrip(_CNTRL), line, database)
        else:
            self.problem(line, f"mariadb client command {command!r} is not supported "
                               "(only USE, DELIMITER and SOURCE are)")

    def backslash_source(self, line: str, i: int, pending: bool, in_conditional: bool, lineno: int) -> None:
        """``\\. name`` where ``add_line()`` meets it: the rest of the line is the name (delimiter included)."""
        if in_conditional:
            self.problem(lineno, "\\. inside a /*! */ comment is not supported", i + 1)
            return
        if pending:
            self.problem(lineno, "text before \\. on its statement would be dropped by the client (\\. empties the "
                                 "statement being typed): end that statement first", i + 1)
            return
        rest = line[i + 2 :]
        if not rest.startswith(" "):
            self.problem(lineno, "\\. needs a space before the file name (the client reads it there)", i + 1)
            return
        name = rest.lstrip(_SPACE).rstrip(_CNTRL)
        if self.delimiter in name:
            meant = name.split(self.delimiter)[0].rstrip()
            self.problem(lineno, f"\\. takes the rest of the line as the file name ({name!r}, delimiter included), "
                                 f"which the client fails to open: write '\\. {meant}' alone on its line, or "
                                 f"'SOURCE {meant};'", i + 1)
            return
        self.source_file(name, lineno, self.database)

    def source_file(self, name: str, line: int, database: str) -> None:
        """Run the included file's statements here, as ``com_source()`` does (same delimiter, same connection)."""
        if not name:
            self.problem(line, "SOURCE needs a file name")
            return
        resolver = self.shared.include
        if resolver is None:
            self.problem(line, f"SOURCE {name}: included files can only be read from a script under the SQL root")
            return
        try:
            included, text = resolver(Include(name, self.source, line, self.via))
        except SqlSplitError as exc:
            self.shared.problems.append(exc)
            return
        chain = [*(f for f, _ in self.via), self.source]
        if included in chain:
            loop = " > ".join([*(f"{f}:{n}" for f, n in self.via), f"{self.source}:{line}", included])
            self.problem(line, f"SOURCE cycle: {loop} (the client would include it again and again)")
            return
        self.shared.included.append(included)
        child = _Splitter(included, database, self.shared, (*self.via, (self.source, line)))
        child.delimiter, child.delimiter_set = self.delimiter, self.delimiter_set
        child.run(text)
        self.delimiter, self.delimiter_set = child.delimiter, child.delimiter_set

    def annotation(self, comment: str, lineno: int, column: int) -> None:
        """``-- @database: NAME`` sets the logical database of the statements that start after it."""
        if not _ANNOTATION.match(comment):
            return
        m = _ANNOTATION_FULL.match(comment)
        if m is None:
            self.problem(lineno, "malformed annotation, expected '-- @database: NAME'", column)
            return
        name = m.group(1)
        if self.known_databases is not None and name not in self.known_databases:
            known = ", ".join(sorted(self.known_databases)) or "none"
            self.problem(lineno, f"unknown database {name!r} in @database annotation (known: {known})", column)
        self.database = name

    def finish(self) -> None:
        """End of file: the client sends what is pending; refuse the cases where that is surely a mistake."""
        if self.in_string:
            line, column = self.string_open
            self.problem(line, f"unterminated {_STRING_KIND[self.in_string]} "
                               f"(opening {self.in_string} is never closed)", column)
        elif self.ml_comment:
            line, column = self.comment_open
            self.problem(line, "unterminated /* comment", column)
        elif "".join(self.buf).rstrip(_CNTRL) and self.delimiter != ";":
            file, line, via = self.delimiter_set
            set_at = f"line {line}" if (file, via) == (self.source, self.via) else where(file, line, via)
            reason = f"is still in force at end of file and this statement never ends with {self.delimiter}"
            self.problem(self.stmt_line, f"DELIMITER {self.delimiter} (set at {set_at}) {reason}")
        else:
            self.go()
        self.buf.clear()


def _space_after_comment(chunk: str) -> tuple[str, bool]:
    """After ``*/`` the client puts a space before the next ASCII non-space character it copies."""
    for k, ch in enumerate(chunk):
        if ch.isascii():
            return (chunk if ch in _SPACE else chunk[:k] + " " + chunk[k:]), False
    return chunk, True  # only multi-byte characters: still pending
