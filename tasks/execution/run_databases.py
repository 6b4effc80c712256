"""Where a run's logical databases came from, kept on its execution, so that a resume elsewhere finds them all.

A run reads a logical database from its caller (``--db NAME=URL``, the flows' ``databases`` parameter), from
the process environment (``FT_UPGRADE_DB_<NAME>``: a worker host's, a CI job's) or from the site's blocks.
Blocks are found again by anyone who can reach the Prefect server; the first two are not stored anywhere a
later shell can see. So the execution records the name and origin of each of those (never a URL), and
every resume (``ft-upgrade resume``, a Retry on another worker) checks, before it starts anything, that each
can be found again: given with ``--db``, in its own environment or in a block. A resume that would stop at
"not configured" half-way is refused with the names and how to give them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from blocks.database import env_var

GIVEN = "given"  # --db, the databases parameter
ENVIRONMENT = "env"  # FT_UPGRADE_DB_<NAME> of the process that ran
_ENV_PREFIX = env_var("")


@dataclass(frozen=True)
class DatabaseOrigin:
    """A logical database a run did not read from the site's blocks, and where it came from (None: an
    execution recorded before origins were: ``--db`` or the environment)."""

    name: str
    origin: str | None

    def record(self) -> str:
        return f"{self.name}:{self.origin}" if self.origin else self.name

    @classmethod
    def parse(cls, recorded: str) -> DatabaseOrigin:
        name, _, origin = recorded.partition(":")
        return cls(name=name, origin=origin or None)

    def describe(self) -> str:
        if self.origin == ENVIRONMENT:
            return f"{self.name} (from the environment of the process that ran it: {env_var(self.name)})"
        if self.origin == GIVEN:
            return f"{self.name} (given with --db / the databases parameter)"
        return f"{self.name} (given with --db or {env_var(self.name)})"


def outside_blocks(given: Iterable[str], environ: Mapping[str, str] | None = None) -> tuple[DatabaseOrigin, ...]:
    """The logical databases a run gets from its caller or its environment (the caller's win), by name."""
    environ = os.environ if environ is None else environ
    given = set(given)
    from_env = {key.removeprefix(_ENV_PREFIX).lower() for key, value in environ.items()
                if key.startswith(_ENV_PREFIX) and value}
    return tuple(DatabaseOrigin(name, GIVEN if name in given else ENVIRONMENT) for name in sorted(given | from_env))


def unreachable_for_resume(recorded: Iterable[str], *, given: Mapping[str, str],
                           found: Callable[[str], bool]) -> list[DatabaseOrigin]:
    """The recorded databases a resume could not find: not given again, and ``found`` (this shell's environment
    or a block) says no. The metadata store is not checked: the resume found the execution in it."""
    origins = [DatabaseOrigin.parse(r) for r in recorded]
    return [o for o in origins if o.name != "metadata" and o.name not in given and not found(o.name)]


def refusal(execution_id: str, site_id: str, missing: Iterable[DatabaseOrigin]) -> str:
    """What a refused resume says: each database missing, where it came from, and how to give it."""
    missing = list(missing)
    first = missing[0].name
    return (f"execution {execution_id} used databases that cannot be found here (--db, this process's environment, "
            f"the site's blocks), so the resume would stop half-way:\n" +
            "\n".join(f"  - {o.describe()}" for o in missing) +
            f"\n  give each again: --db {first}=URL, or export {env_var(first)}=URL, or save it as block "
            f"'{site_id.lower()}-{first.replace('_', '-')}' (ft-upgrade blocks apply --site {site_id} "
            f"--db {first}=URL)")
