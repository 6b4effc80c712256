"""Reading version configs from disk: the only I/O of the config layer.

Strict JSON (no trailing commas, no duplicate keys, no NaN): a syntax error is reported as
``<file>:<line>:<col>: <reason>``; a model error names the field path. Configs are read fresh for
every run, so a changed file takes effect without a restart (hot reload). A ``metadata.checksum``
that is an MD5 or SHA-256 digest must match the config's canonical content (:func:`config_checksum`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tasks.core.cutpoints import CUTPOINT_ALIASES
from tasks.core.errors import ConfigError, ConfigErrors, InputError
from tasks.core.versions import Version
from tasks.planning.config_models import VersionConfig

SCHEMA_FILE = "schema.json"


class ConfigWarning(UserWarning):
    """A config that loads but uses a deprecated spelling."""


@dataclass(frozen=True)
class LoadedConfig:
    """A config with where it came from."""

    path: str
    config: VersionConfig
    warnings: tuple[str, ...] = field(default=())
    folder: Path | None = None  # the configs folder it was read from (rule files are relative to it)

    @property
    def version(self) -> Version:
        return self.config.version


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _line_of_key(text: str, key: str) -> tuple[int, int] | None:
    """Where ``"key"`` first appears, for errors that JSON parsing cannot position itself."""
    idx = text.find(f'"{key}"')
    return None if idx < 0 else _position(text, idx)


def _syntax_error(text: str, source: str, exc: json.JSONDecodeError) -> ConfigError:
    """Name the trailing comma itself rather than the bracket after it, where that is the cause."""
    before = text[: exc.pos].rstrip()
    if before.endswith(",") and text[exc.pos: exc.pos + 1] in ("}", "]"):
        line, col = _position(text, len(before) - 1)
        return ConfigError(source, f"trailing comma before '{text[exc.pos]}' (strict JSON)", line=line, column=col)
    if text.startswith("...", exc.pos):
        return ConfigError(source, f"{exc.msg}: '...' (an example's elision) is not JSON; write the steps out",
                           line=exc.lineno, column=exc.colno)
    return ConfigError(source, exc.msg, line=exc.lineno, column=exc.colno)


def _misplaced_checks(steps: object, cutpoint: str) -> str:
    """A hint when an old key holds the business check, which belongs to cutpoint 1 (pre_business_check)."""
    checks = [s.get("id") for s in steps if isinstance(s, dict)
              and str(s.get("class_name", "")).rpartition(".")[2] == "PreBusinessCheckStep"] \
        if isinstance(steps, list) else []
    if not checks:
        return ""
    return (f"; its business check {', '.join(repr(c) for c in checks)} then runs in {cutpoint}: to run it as "
            "cutpoint 1, move it under 'pre_business_check'")


_DIGESTS = {32: "md5", 64: "sha256"}


def config_checksum(data: dict[str, Any], algorithm: str = "sha256") -> str:
    """The digest ``metadata.checksum`` must hold: of the canonical JSON (sorted keys) without the checksum itself."""
    content = {**data}
    if isinstance(content.get("metadata"), dict):
        content["metadata"] = {k: v for k, v in content["metadata"].items() if k != "checksum"}
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.new(algorithm, blob, usedforsecurity=False).hexdigest()


def _verify_checksum(data: dict[str, Any], text: str, source: str) -> str:
    """Check ``metadata.checksum`` when it is an MD5 or SHA-256 digest; a note when it is not a digest."""
    metadata = data.get("metadata")
    given = metadata.get("checksum") if isinstance(metadata, dict) else None
    if not isinstance(given, str) or not given:
        return ""
    digest = given.split(":", 1)[1] if given.split(":", 1)[0] in ("md5", "sha256") else given
    algorithm = _DIGESTS.get(len(digest)) if re.fullmatch(r"[0-9a-fA-F]+", digest) else None
    pos = _line_of_key(text, "checksum")
    if algorithm is None:
        where = f"{source}:{pos[0]}:{pos[1]}" if pos else source
        return f"{where}: metadata.checksum {given!r} is not an MD5 or SHA-256 hex digest: not verified"
    expected = config_checksum(data, algorithm)
    if digest.lower() != expected:
        raise ConfigError(source, f"metadata.checksum does not match the content ({algorithm} is {expected}): the "
                                  "file changed after it was signed off, or the checksum is stale "
                                  "(`ft-upgrade checksum FILE` prints it)",
                          line=pos[0] if pos else None, column=pos[1] if pos else None)
    return ""


def parse_config_text(text: str, *, source: str) -> LoadedConfig:
    """Parse one config's text; pure apart from nothing (``source`` names it in errors)."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _syntax_error(text, source, exc) from None
    except _DuplicateKey as exc:
        first = text.find(f'"{exc.key}"')
        second = text.find(f'"{exc.key}"', first + 1)
        line, col = _position(text, second) if second >= 0 else (None, None)
        raise ConfigError(source, f"duplicate key {exc.key!r}", line=line, column=col) from None
    except ValueError as exc:
        raise ConfigError(source, str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(source, "a version config is a JSON object", line=1, column=1)
    notes: list[str] = []
    checksum_note = _verify_checksum(data, text, source)
    if checksum_note:
        notes.append(checksum_note)
    steps = data.get("upgrade_steps")
    if isinstance(steps, dict):
        for old, new in CUTPOINT_ALIASES.items():
            if old in steps:
                pos = _line_of_key(text, old)
                where = f"{source}:{pos[0]}:{pos[1]}" if pos else source
                notes.append(f"{where}: cutpoint key {old!r} is deprecated; read as {new.value!r}"
                             + _misplaced_checks(steps[old], new.value))
    try:
        config = VersionConfig.model_validate(data)
    except ValidationError as exc:
        errors: list[InputError] = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            if err["type"] == "enum" and len(loc) >= 2 and loc[0] == "upgrade_steps":
                msg = f"unknown cutpoint key {loc[1]!r}; expected one of: {err['ctx']['expected']}"
            errors.append(ConfigError(source, msg, field=_field_path(loc) or "(top level)"))
        raise (errors[0] if len(errors) == 1 else ConfigErrors(errors)) from None
    for note in notes:
        warnings.warn(note, ConfigWarning, stacklevel=2)
    return LoadedConfig(path=source, config=config, warnings=tuple(notes))


def load_config_file(path: Path, *, display: str | None = None) -> LoadedConfig:
    """Load one file and check that its name agrees with its ``version``."""
    source = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(source, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(source, "not UTF-8", line=line) from None
    loaded = parse_config_text(text, source=source)
    try:
        named = Version.parse(path.stem)
    except InputError:
        raise ConfigError(source, f"file name must be the version code, e.g. {loaded.version.code}.json") from None
    if named != loaded.version:
        raise ConfigError(source, f"file name says {named} but \"version\" is {loaded.version}", field="version")
    return dataclasses.replace(loaded, folder=path.parent.resolve())


def config_files(configs_dir: Path) -> list[Path]:
    """The version configs in a folder: every top-level ``*.json`` but the schema."""
    if not configs_dir.is_dir():
        raise ConfigError(str(configs_dir), "configs folder does not exist")
    return sorted(p for p in configs_dir.glob("*.json") if p.name != SCHEMA_FILE)


def load_configs(configs_dir: Path, *, collect_errors: bool = True) -> list[LoadedConfig]:
    """Load every config of a folder; all errors are reported together, none is skipped."""
    loaded: list[LoadedConfig] = []
    errors: list[InputError] = []
    for path in config_files(configs_dir):
        try:
            loaded.append(load_config_file(path, display=_display(path)))
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
        if errors and not collect_errors:
            break
    by_code: dict[int, str] = {}
    for item in loaded:
        if item.version.code in by_code:
            other = by_code[item.version.code]
            errors.append(ConfigError(item.path, f"version {item.version} also defined in {other}"))
        by_code[item.version.code] = item.path
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return sorted(loaded, key=lambda c: c.version.code)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
