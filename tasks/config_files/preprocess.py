"""Config-file preprocessing: ``${NAME}`` substitution, format validation, atomic write with history.

The pure part (:func:`placeholders`, :func:`substitute`, :func:`validate_format`) takes text and returns
text or a list of problems; each value is encoded for its place in the file's format
(:mod:`tasks.config_files.encoding`), so no value can change a file's structure. :func:`apply_changes` is
the I/O shell: it renders and checks every file first (missing values, values stored masked, values that
cannot stand where they are, invalid results: the error lists them and nothing is touched), then rewrites
file by file, each copied to the private history folder before it is replaced; any failure puts back
every file already changed, with its permission bits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import xml.parsers.expat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tasks.config_files.encoding import PLACEHOLDER, PlaceholderProblem, Rendered, render
from tasks.core.environment import is_secret_key
from tasks.core.errors import PreprocessError
from tasks.core.files import Private
from tasks.core.masking import MASK, mask_text

_MASKED = re.compile(rf"(?<!\*){re.escape(MASK)}(?!\*)")
FORMATS = ("json", "yaml", "properties", "xml", "text")
_SUFFIX_FORMAT = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".properties": "properties", ".xml": "xml"}


def placeholders(text: str) -> list[str]:
    """Names used as ``${NAME}``, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def substitute(text: str, values: Mapping[str, str], fmt: str = "text") -> str:
    """Replace every ``${NAME}``, encoded for its place in a ``fmt`` file (``text``: as is); a name without a
    value raises ``KeyError`` (check with missing() first), a value that cannot stand there
    :class:`PlaceholderProblem`."""
    return render(text, values, fmt).text


def missing(text: str, values: Mapping[str, str]) -> list[str]:
    return [name for name in placeholders(text) if name not in values]


def masked(text: str, values: Mapping[str, str]) -> list[str]:
    """Names whose value is the mask a secret was recorded as (a resume without ``--env``): never written."""
    return [name for name in placeholders(text) if name in values and _MASKED.search(str(values[name]))]


def format_of(path: Path, declared: str | None = None) -> str:
    return declared or _SUFFIX_FORMAT.get(path.suffix.lower(), "text")


def validate_format(text: str, fmt: str) -> str | None:
    """None when ``text`` is valid ``fmt``; else a one-line reason with the line where the parser knows it."""
    try:
        if fmt == "json":
            json.loads(text)
        elif fmt == "yaml":
            list(yaml.safe_load_all(text))
        elif fmt == "xml":
            parser = xml.parsers.expat.ParserCreate()
            parser.Parse(text.encode("utf-8"), True)
        elif fmt == "properties":
            return _properties_problem(text)
    except json.JSONDecodeError as exc:
        return f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    except yaml.MarkedYAMLError as exc:  # without the snippet of the file it would quote
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        return f"invalid YAML{where}: " + " ".join(str(exc.problem or exc.context).split())
    except yaml.YAMLError as exc:
        return "invalid YAML: " + " ".join(str(exc).split())
    except xml.parsers.expat.ExpatError as exc:
        return f"invalid XML at line {exc.lineno} column {exc.offset}: {xml.parsers.expat.ErrorString(exc.code)}"
    return None


def _properties_problem(text: str) -> str | None:
    """java.util.Properties accepts almost anything; we refuse what is surely a mistake."""
    continued = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if continued:
            continued = _continues(stripped)
            continue
        if not stripped or stripped[0] in "#!":
            continue
        key = re.split(r"(?<!\\)[=:\s]", stripped, maxsplit=1)[0]
        if not key:
            return f"invalid properties at line {number}: empty key"
        if re.search(r"\\u(?![0-9a-fA-F]{4})", stripped):
            return f"invalid properties at line {number}: malformed \\uXXXX escape"
        if PLACEHOLDER.search(stripped) is None and "${" in stripped:
            return f"invalid properties at line {number}: unterminated ${{"
        continued = _continues(stripped)
    return None


def _continues(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


@dataclass(frozen=True)
class FileChange:
    """One file to rewrite: its path, format, and optionally a template to read instead of the file."""

    path: Path
    fmt: str
    template: Path | None = None

    @property
    def source(self) -> Path:
        return self.template or self.path


@dataclass
class PreprocessReport:
    changed: list[dict[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def atomic_write(path: Path, data: str) -> None:
    """Temp file in the same folder, fsync, ``os.replace``; keeps the old file's permission bits (a new
    file is ``0600``, as ``mkstemp`` makes it whatever the umask)."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def apply_changes(changes: Sequence[FileChange], values: Mapping[str, str], history: Path, *,
                  secrets: Iterable[str] = (), private: Private = Private()) -> PreprocessReport:
    """Render and check every file, then write each; on any failure restore the ones already written.

    ``secrets`` are masked in every message, as is each value of a secret-looking placeholder name; the
    history copies are private (``private``: owner only, or with a group) whatever the umask.
    """
    texts = {c.path: _read(c.source) for c in changes}
    _check_values(changes, texts, values)
    results = _render_all(changes, texts, values, set(secrets))
    report = PreprocessReport()
    written: list[tuple[Path, Path | None, int]] = []  # (file, its copy in history or None if new, its mode)
    try:
        for index, change in enumerate(changes):
            result = results[change.path]
            if change.path.exists() and _read(change.path) == result:
                report.unchanged.append(str(change.path))
                continue
            previous, mode = None, 0o600
            if change.path.exists():
                mode = change.path.stat().st_mode & 0o7777
                previous = _keep_copy(change.path, private.mkdir(history) / f"{index:03d}_{change.path.name}", private)
            written.append((change.path, previous, mode))
            atomic_write(change.path, result)
            report.changed.append({"path": str(change.path), "history": str(previous or "")})
    except Exception as exc:
        restored = _restore(written)
        message = str(exc) + (f"; restored {len(restored)} changed file(s): {', '.join(restored)}" if restored else
                              "; no file had been changed")
        raise PreprocessError(message, restored=restored) from exc
    return report


def _check_values(changes: Sequence[FileChange], texts: Mapping[Path, str], values: Mapping[str, str]) -> None:
    """Every placeholder has a value, and none is a value stored masked (``***``): else nothing is written."""
    lacking = {str(c.source): m for c in changes if (m := missing(texts[c.path], values))}
    if lacking:
        names = sorted({n for ms in lacking.values() for n in ms})
        where = "; ".join(f"{f}: {', '.join(ms)}" for f, ms in lacking.items())
        raise PreprocessError(f"missing values for placeholders {', '.join(names)} ({where}); no file was changed",
                              missing=lacking)
    hidden = {str(c.source): m for c in changes if (m := masked(texts[c.path], values))}
    if hidden:
        names = sorted({n for ms in hidden.values() for n in ms})
        where = "; ".join(f"{f}: {', '.join(ms)}" for f, ms in hidden.items())
        raise PreprocessError(
            f"{', '.join(names)} only known masked ({MASK}, as the execution recorded a secret) ({where}): "
            f"give the value again, `ft-upgrade resume EXECUTION_ID --env {names[0]}=secret:<Secret block name>`; "
            "no file was changed", missing=hidden)


def _render_all(changes: Sequence[FileChange], texts: Mapping[Path, str], values: Mapping[str, str],
                secrets: set[str]) -> dict[Path, str]:
    """Every file's new text, or one error listing every placeholder and format problem (secrets masked)."""
    problems, results, hidden = [], {}, set(secrets)
    for change in changes:
        try:
            rendered = render(texts[change.path], values, change.fmt)
        except PlaceholderProblem as exc:
            problems.append(f"{change.source}:{exc.line}: ${{{exc.name}}} {exc.reason}")
            continue
        hidden |= _secret_texts(rendered, values, secrets)
        if problem := validate_format(rendered.text, change.fmt):
            problems.append(f"{change.path}: {problem}")
        results[change.path] = rendered.text
    if problems:
        raise PreprocessError(mask_text("; ".join(problems), hidden) + "; no file was changed")
    return results


def _secret_texts(rendered: Rendered, values: Mapping[str, str], secrets: set[str]) -> set[str]:
    """The values to mask in messages: of a secret-looking name or known as secrets, raw and as written."""
    return {text for name, written in rendered.written.items()
            if is_secret_key(name) or str(values[name]) in secrets
            for text in (str(values[name]), *written)}


def _keep_copy(path: Path, copy: Path, private: Private) -> Path:
    """The file's current content in history, private whatever the file's own mode (it may hold secrets)."""
    with path.open("rb") as src, private.open(copy) as dst:
        shutil.copyfileobj(src, dst)
    return copy


def _restore(written: Sequence[tuple[Path, Path | None, int]]) -> list[str]:
    """Put each changed file back, newest first, with the permission bits it had, whatever the umask."""
    restored = []
    for path, previous, mode in reversed(written):
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_name(f".{path.name}.restore.tmp")
            with previous.open("rb") as src, Private().open(tmp) as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        restored.append(str(path))
    return restored


def _read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as handle:  # keep CRLF files CRLF
        return handle.read()
