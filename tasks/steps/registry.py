"""Step classes by name: built-ins by simple name, site classes by dotted path from allowed modules.

The requirements' Java names (``com.ft.upgrade.steps.PreBusinessCheckStep``) resolve to the built-in
with the same simple name, so the seed's configs keep working. A dotted Python path is imported only
when its module starts with one of the allowed prefixes (setting ``FT_UPGRADE_STEP_MODULES``), so a
config cannot make the worker import arbitrary code.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from tasks.steps.base import UpgradeStep


@functools.cache
def builtin_names() -> dict[str, str]:
    """Every built-in step name (a class's simple name and its aliases) and the class's ``module:Class``."""
    from tasks.steps.builtins import BUILTIN_STEPS

    found: dict[str, str] = {}
    for path, aliases in BUILTIN_STEPS.items():
        for name in (path.rpartition(":")[2], *aliases):
            if name in found and found[name] != path:
                raise RuntimeError(f"step name {name!r} claimed by {found[name]} and {path}")
            found[name] = path
    return found


def builtin_class(path: str) -> type[UpgradeStep]:
    """Import one built-in step class (``module:Class``) when a plan first needs it."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving a ``class_name``: a class, or why there is none."""

    class_name: str
    step_class: type[UpgradeStep] | None
    reason: str = ""

    @property
    def qualified_name(self) -> str | None:
        if self.step_class is None:
            return None
        return f"{self.step_class.__module__}.{self.step_class.__qualname__}"


def resolve_step_class(class_name: str, allowed_prefixes: Iterable[str] = ()) -> Resolution:
    """Find the class for a config's ``class_name`` without raising."""
    builtins = builtin_names()
    prefixes = tuple(p for p in allowed_prefixes if p)
    module_name, _, simple = class_name.rpartition(".")
    if module_name and any(module_name == p or module_name.startswith(p + ".") for p in prefixes):
        try:
            found = getattr(importlib.import_module(module_name), simple)
        except (ImportError, AttributeError) as exc:
            return Resolution(class_name, None, f"cannot import {class_name}: {exc}")
        if not (isinstance(found, type) and issubclass(found, UpgradeStep)):
            return Resolution(class_name, None, f"{class_name} is not an UpgradeStep subclass")
        return Resolution(class_name, found)
    if simple in builtins:
        return Resolution(class_name, builtin_class(builtins[simple]))
    hint = ""
    if module_name and not module_name.startswith("com."):
        hint = f" (module {module_name!r} is not in the allowed step modules {list(prefixes)})"
    return Resolution(class_name, None, f"no step implementation for {class_name!r}{hint}")
