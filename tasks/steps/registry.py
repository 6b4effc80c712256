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
def builtin_steps() -> dict[str, type[UpgradeStep]]:
    """Every built-in step name (its simple name and its ``aliases``) and its class."""
    from tasks.steps.builtins import BUILTIN_STEPS

    found: dict[str, type[UpgradeStep]] = {}
    for cls in BUILTIN_STEPS:
        for name in (cls.__name__, *cls.aliases):
            if name in found and found[name] is not cls:
                raise RuntimeError(f"step name {name!r} claimed by {found[name].__name__} and {cls.__name__}")
            found[name] = cls
    return found


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
    builtins = builtin_steps()
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
        return Resolution(class_name, builtins[simple])
    hint = ""
    if module_name and not module_name.startswith("com."):
        hint = f" (module {module_name!r} is not in the allowed step modules {list(prefixes)})"
    return Resolution(class_name, None, f"no step implementation for {class_name!r}{hint}")
