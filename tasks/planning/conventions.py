"""What a step written without details does: one documented convention per step name of the seed.

The seed's configs name a class and nothing else (``"class_name": "com.ft.upgrade.steps.StartupPreProcessStep"``).
A built-in step with no field of its own gets its convention's fields when the plan is built, so the
plan shows exactly what will run and ``validate`` checks those fields like written ones. A step with
any field of its own gets none: what is written is what runs. Parts that depend on the site (its
services, its folders) are flags the step resolves at run time from the site profile.

Step name → convention:

- ``PreBusinessCheckStep``: the configs folder's ``rules/default.json``, else the project's default rule
  set (:mod:`tasks.checks.default_rules`).
- ``PreUpgradeProcessStep``: back up ft_db and middle_db (whole) and the files of the site's
  ``config_dir``; render every ``*.tpl`` there; the site's services and both databases answer.
- ``StartupPreProcessStep``, ``PatchSqlExecutorStep``, ``SqlScriptStep``, ``SqlExecutorStep``: every
  ``*.sql`` directly in the version's folder (``<sql root>/baseline/317500/``, ``patch/317501/``), in
  name order.
- ``OverseasSpecificProcessStep``: every ``*.sql`` in the version folder's ``overseas/``, in name order.
- ``StartupPostProcessStep``: health checks of the site's services and of ft_db.
- ``PostUpgradeProcessStep`` (``PostUpgradeStep``): archive logs older than 7 days in the site's
  ``log_dir``, trim this tool's event log, empty the site's ``staging_dir``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.core.versions import Version


@dataclass(frozen=True)
class ConventionContext:
    """What a convention may look at: the step's version and the folders the plan reads."""

    version: Version
    configs_dir: Path | None = None
    sql_root: Path | None = None

    def sql_folder(self) -> tuple[Path, str]:
        """The version's SQL folder and its path relative to the SQL root (``baseline/317500``)."""
        from tasks.core.settings import get_settings

        relative = f"{'patch' if self.version.is_patch else 'baseline'}/{self.version.code}"
        return (self.sql_root or get_settings().sql_root) / relative, relative


def _scripts_in(context: ConventionContext, subfolder: str = "") -> dict[str, Any]:
    folder, relative = context.sql_folder()
    if subfolder:
        folder, relative = folder / subfolder, f"{relative}/{subfolder}"
    scripts = sorted(p.name for p in folder.glob("*.sql") if p.is_file()) if folder.is_dir() else []
    if not scripts:
        raise ValueError(f"no sql_scripts given and no *.sql file in {relative}/ under the SQL root ({folder}): "
                         "list the scripts in sql_scripts, or put them in that folder (run in name order)")
    return {"sql_scripts": [f"{relative}/{name}" for name in scripts]}


def _rule_set(context: ConventionContext) -> dict[str, Any]:
    from tasks.checks.default_rules import DEFAULT_RULE_FILE, builtin_rules

    if context.configs_dir is not None and (context.configs_dir / DEFAULT_RULE_FILE).is_file():
        return {"rule_files": [DEFAULT_RULE_FILE]}
    rules, source = builtin_rules()
    return {"rules": rules, "rule_sources": [source]}


BUSINESS_DATABASES = ("ft_db", "middle_db")

_PRE_UPGRADE = {
    "backup": {"databases": [{"database": name} for name in BUSINESS_DATABASES], "site_config_dir": True},
    "config_files": {"site_templates": True},
    "services": {"site_services": True, "databases": list(BUSINESS_DATABASES)},
}
_STARTUP_POST = {"health": {"site_services": True, "databases": ["ft_db"]}}
_POST_UPGRADE = {"log_cleanup": {"rules": [{"named_path": "log_dir", "action": "archive", "after_days": 7}]},
                 "resource_release": {"named_paths": ["staging_dir"]}}

Convention = Callable[[ConventionContext], dict[str, Any]]

#: Step name (the simple name a config uses) → its convention.
CONVENTIONS: dict[str, Convention] = {
    "PreBusinessCheckStep": _rule_set,
    "PreUpgradeProcessStep": lambda _: _PRE_UPGRADE,
    "StartupPreProcessStep": _scripts_in,
    "PatchSqlExecutorStep": _scripts_in,
    "SqlScriptStep": _scripts_in,
    "SqlExecutorStep": _scripts_in,
    "OverseasSpecificProcessStep": lambda context: _scripts_in(context, "overseas"),
    "StartupPostProcessStep": lambda _: _STARTUP_POST,
    "PostUpgradeProcessStep": lambda _: _POST_UPGRADE,
    "PostUpgradeStep": lambda _: _POST_UPGRADE,
}


def with_convention(class_name: str, step_class: type | None, params: dict[str, Any],
                    context: ConventionContext) -> dict[str, Any]:
    """``params``, or the convention's fields when the step has none and names a built-in with a convention.

    Raises:
        ValueError: the convention cannot be applied (e.g. the version's SQL folder holds no script).
    """
    from tasks.steps.registry import builtin_names

    simple = class_name.rpartition(".")[2]
    convention = CONVENTIONS.get(simple)
    if params or convention is None or step_class is None:
        return params
    if builtin_names().get(simple) != f"{step_class.__module__}:{step_class.__qualname__}":
        return params  # a site's own class of the same name: no convention of ours
    return _copy(convention(context))


def _copy(value: Any) -> Any:
    """A fresh copy, so that nobody edits a convention's shared value."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
