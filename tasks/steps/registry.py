"""Step classes by name: built-ins by simple name, site classes by dotted path from allowed modules.

The requirements' Java names (``com.ft.upgrade.steps.PreBusinessCheckStep``) resolve to the built-in
with the same simple name, so the seed's configs keep working. A dotted Python path is imported only
when its module starts with one of the allowed prefixes (setting ``FT_UPGRADE_STEP_MODULES``), so a
config cannot make the worker import arbitrary code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tasks.steps.base import UpgradeStep

_BUILTINS: dict[str, type[UpgradeStep]] = {}


def register_step(*aliases: str) -> Callable[[type[UpgradeStep]], type[UpgradeStep]]:
    """Class decorator: make a built-in resolvable by its simple name and by ``aliases``."""

    def wrap(cls: type[UpgradeStep]) -> type[UpgradeStep]:
        for name in (cls.__name__, *aliases):
            if name in _BUILTINS and _BUILTINS[name] is not cls:
                raise RuntimeError(f"step name {name!r} registered twice")
            _BUILTINS[name] = cls
        return cls

    return wrap


def builtin_steps() -> dict[str, type[UpgradeStep]]:
    """Every built-in step name (aliases included) and its class."""
    _load_builtins()
    return dict(_BUILTINS)


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
    _load_builtins()
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
    if simple in _BUILTINS:
        return Resolution(class_name, _BUILTINS[simple])
    hint = ""
    if module_name and not module_name.startswith("com."):
        hint = f" (module {module_name!r} is not in the allowed step modules {list(prefixes)})"
    return Resolution(class_name, None, f"no step implementation for {class_name!r}{hint}")


def _load_builtins() -> None:
    """Import the modules that define built-in steps (they register themselves)."""
    from tasks.steps import builtins  # noqa: F401
