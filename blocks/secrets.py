"""Secret environment values: read from the Prefect Secret blocks a run's environment names.

The run's parameters carry only ``secret:<block name>`` (see :mod:`tasks.core.environment`); the value
is read here, in the flow run, and handed to the steps and to masking, never back to Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.core.environment import references
from tasks.core.errors import InputError


def resolve_secret_environment(environment: Mapping[str, Any] | None) -> dict[str, str]:
    """Key → secret value for every value given by reference; a missing block is bad input, named."""
    wanted = references(environment)
    if not wanted:
        return {}
    from prefect.blocks.system import Secret

    resolved: dict[str, str] = {}
    for key, name in sorted(wanted.items()):
        try:
            block = Secret.load(name, validate=False)
        except (ValueError, KeyError):
            raise InputError(f"environment {key}: no Secret block named {name!r} "
                             f"(create it: prefect block create secret, name {name})") from None
        value = block.get()
        resolved[key] = value if isinstance(value, str) else str(value)
    return resolved
