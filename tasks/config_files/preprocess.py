"""Config-file preprocessing: ``${NAME}`` substitution, format validation, atomic write with history.

The pure part (:func:`placeholders`, :func:`substitute`, :func:`validate_format`) takes text and returns
text or a list of problems. :func:`apply_changes` is the I/O shell: it checks every file for missing
values first (so the error lists them all and nothing is touched), then rewrites file by file, each
copied to the history folder before it is replaced; any failure puts back every file already changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import xml.parsers.expat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tasks.core.errors import PreprocessError

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
FORMATS = ("json", "yaml", "properties", "xml", "text")
_SUFFIX_FORMAT = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".properties": "properties", ".xml": "xml"}


def placeholders(text: str) -> list[str]:
    """Names used as ``${NAME}``, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``${NAME}``; a name without a value raises ``KeyError`` (check with missing() first)."""
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def missing(text: str, values: Mapping[str, str]) -> list[str]:
    return [name for name in placeholders(text) if name not in values]


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
    """Temp file in the same folder, fsync, ``os.replace``; keeps the old file's permission bits."""
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


def apply_changes(changes: Sequence[FileChange], values: Mapping[str, str], history: Path) -> PreprocessReport:
    """Substitute, validate and write each file; on any failure restore the ones already written."""
    texts = {c.path: _read(c.source) for c in changes}
    lacking = {str(c.source): m for c in changes if (m := missing(texts[c.path], values))}
    if lacking:
        names = sorted({n for ms in lacking.values() for n in ms})
        where = "; ".join(f"{f}: {', '.join(ms)}" for f, ms in lacking.items())
        raise PreprocessError(f"missing values for placeholders {', '.join(names)} ({where}); no file was changed",
                              missing=lacking)
    report = PreprocessReport()
    written: list[tuple[Path, Path | None]] = []  # (file, its previous version in history or None if new)
    try:
        for index, change in enumerate(changes):
            result = substitute(texts[change.path], values)
            problem = validate_format(result, change.fmt)
            if problem:
                raise PreprocessError(f"{change.path}: {problem}")
            if change.path.exists() and _read(change.path) == result:
                report.unchanged.append(str(change.path))
                continue
            previous = None
            if change.path.exists():
                history.mkdir(parents=True, exist_ok=True)
                previous = history / f"{index:03d}_{change.path.name}"
                shutil.copy2(change.path, previous)
            written.append((change.path, previous))
            atomic_write(change.path, result)
            report.changed.append({"path": str(change.path), "history": str(previous or "")})
    except Exception as exc:
        restored = _restore(written)
        message = str(exc) + (f"; restored {len(restored)} changed file(s): {', '.join(restored)}" if restored else
                              "; no file had been changed")
        raise PreprocessError(message, restored=restored) from exc
    return report


def _restore(written: Sequence[tuple[Path, Path | None]]) -> list[str]:
    restored = []
    for path, previous in reversed(written):
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_name(f".{path.name}.restore.tmp")
            shutil.copy2(previous, tmp)
            os.replace(tmp, path)
        restored.append(str(path))
    return restored


def _read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as handle:  # keep CRLF files CRLF
        return handle.read()
