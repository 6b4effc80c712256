"""A run's environment values, and how a secret among them is passed: by the name of a Secret block.

Prefect stores and shows flow parameters in clear (the UI, the API, events), so a password passed as
an environment value would be readable by anyone who can see the flow run. A value under a
secret-looking key (``DB_PASSWORD``, ``api_token``, ``ACCESS_KEY``…) must therefore be a reference,
``secret:<block name>``: the run reads the Prefect Secret block of that name, masks its value in
everything it writes, and only the reference is ever stored. Pure: the block is read in ``blocks``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tasks.core.errors import InputError

SECRET_KEY = re.compile(r"pass(?:word|wd)?|pwd|secret|token|credential|api_?key|access_?key|private_?key", re.I)
REFERENCE = re.compile(r"^secret:([a-z0-9][a-z0-9-]{0,62})$")
HOW = ("Prefect keeps flow parameters in clear. Store the value in a Secret block "
       "(`prefect block create secret`, or `secrets` in the site file for `blocks apply`) and pass "
       "{key}=secret:<block name>")


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def secret_reference(value: Any) -> str | None:
    """The Secret block a value names (``secret:cn-db-password`` → ``cn-db-password``), else None."""
    match = REFERENCE.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def check_environment(environment: Mapping[str, Any] | None, *, where: str = "environment") -> None:
    """Refuse a secret given in clear (every offending key named, with how to pass it instead)."""
    bad = [k for k, v in (environment or {}).items()
           if is_secret_key(k) and v not in (None, "") and secret_reference(v) is None]
    if bad:
        raise InputError(f"{where}: {', '.join(sorted(bad))} look secret and are given in clear. "
                         + HOW.format(key=sorted(bad)[0]))
    for key, value in (environment or {}).items():
        if isinstance(value, str) and value.startswith("secret:") and secret_reference(value) is None:
            raise InputError(f"{where}: {key}: {value!r} is not a Secret block reference "
                             "(secret:<block name>, lower-case letters, digits and -)")


def references(environment: Mapping[str, Any] | None) -> dict[str, str]:
    """Key → Secret block name, for the values given by reference."""
    return {k: name for k, v in (environment or {}).items() if (name := secret_reference(v))}
