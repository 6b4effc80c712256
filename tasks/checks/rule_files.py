"""Rule files under the configs folder (``configs/rules/*.json``), read when the plan is built.

Strict JSON (no duplicate keys, no NaN), an object ``{"description": …, "rules": [...]}``. Errors name
the file and the line:column, or the file and the rule's field path. A path must stay inside the
configs folder: a config cannot make the worker read arbitrary files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tasks.checks.rules import RULE_TYPES, parse_rules


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _field(loc: tuple[Any, ...]) -> str:
    """``rules[2].threshold`` (the union's tag, e.g. ``duplicate_keys``, left out)."""
    out = "rules"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (i == 1 and part in RULE_TYPES):
            out += f".{part}"
    return out


def resolve_rule_file(configs_dir: Path, relative: str) -> Path:
    """``rules/x.json`` inside ``configs_dir``; ``ValueError`` for absolute paths or ones that leave it."""
    if Path(relative).is_absolute():
        raise ValueError(f"rule file {relative!r} must be relative to the configs folder")
    root = configs_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"rule file {relative!r} leaves the configs folder")
    return path


def load_rule_file(configs_dir: Path, relative: str) -> tuple[list[dict[str, Any]], str]:
    """The file's rules (validated, as JSON values) and its sha256; ``ValueError`` with file and position."""
    path = resolve_rule_file(configs_dir, relative)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"rule file {relative}: cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ValueError(f"rule file {relative}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"rule file {relative}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ValueError(f"rule file {relative}: expected an object with a 'rules' list")
    unknown = sorted(set(data) - {"rules", "description", "$schema"})
    if unknown:
        raise ValueError(f"rule file {relative}: unknown field(s) {unknown}")
    try:
        rules = parse_rules(data["rules"])
    except ValidationError as exc:
        problems = [f"rule file {relative}: {_field(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors(include_url=False)]
        raise ValueError("; ".join(problems)) from None
    return [r.model_dump(mode="json") for r in rules], hashlib.sha256(raw).hexdigest()
