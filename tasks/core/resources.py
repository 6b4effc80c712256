"""Amounts of memory, disk and CPU as version configs write them (``dependencies.required_resources``). Pure.

The seed writes ``{"memory": "2GB", "disk": "10GB", "cpu": "2cores"}``. Sizes are read by pydantic's
``ByteSize`` (``GB`` = 10⁹ bytes, ``GiB`` = 2³⁰, ``MB``, ``KiB``…; a bare number is bytes); CPU is a
number of cores (``2cores``, ``2 cores``, ``1.5``). Anything else is a config error naming the key.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ByteSize, TypeAdapter, ValidationError

Resource = Literal["memory", "disk", "cpu"]
RESOURCES: tuple[Resource, ...] = ("memory", "disk", "cpu")

_BYTES = TypeAdapter(ByteSize)
_CORES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:cores?|cpus?|c)?\s*$", re.I)


def parse_amount(resource: str, text: object) -> float:
    """Bytes (memory, disk) or cores (cpu) of one requirement; ``ValueError`` naming what is wrong."""
    if resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{resource}: expected a text such as {_EXAMPLE[resource]!r}, not {text!r}")
    if resource == "cpu":
        match = _CORES.match(text)
        if match is None or float(match.group(1)) <= 0:
            raise ValueError(f"cpu: {text!r} is not a number of cores (e.g. '2cores')")
        return float(match.group(1))
    try:
        size = int(_BYTES.validate_python(text.strip()))
    except ValidationError:
        raise ValueError(f"{resource}: {text!r} is not a size (e.g. {_EXAMPLE[resource]!r}, '512MB', '2GiB')") from None
    if size <= 0:
        raise ValueError(f"{resource}: {text!r} is not a positive size")
    return float(size)


def describe(resource: str, amount: float) -> str:
    """``15.2GB`` or ``2 cores`` (decimal units, as the seed writes them)."""
    if resource == "cpu":
        return f"{amount:g} cores"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if amount >= size:
            return f"{amount / size:.1f}{unit}"
    return f"{amount:.0f}B"


_EXAMPLE = {"memory": "2GB", "disk": "10GB", "cpu": "2cores"}
