"""``ft-upgrade validate``: every config, every step class, every parameter, every file they name.

Meant for the config repository's own CI: it reports all problems at once, for all sites and
cutpoints (not only those one plan would select), and never executes anything. It checks what
``plan`` checks (:func:`tasks.planning.plan.range_problems`, the same functions) for every range of
versions in the folder and every site it knows, so that nothing it passes fails later in ``plan``
or ``run``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.core.errors import ConfigError, ConfigErrors, InputError, SqlScriptError
from tasks.core.versions import Version
from tasks.planning.config_loader import LoadedConfig, load_configs
from tasks.planning.config_models import StepConfig
from tasks.planning.plan import check_step_params, range_problems
from tasks.steps.base import static_problems
from tasks.steps.registry import resolve_step_class


def validate_tree(configs_dir: Path, sql_root: Path, allowed_step_modules: tuple[str, ...] = (), *,
                  sites: Iterable[str] = (), known_databases: Iterable[str] | None = None,
                  sources: Mapping[Version, str] | None = None) -> list[LoadedConfig]:
    """Load and check everything; raises :class:`ConfigErrors` listing every problem.

    Args:
        sites: Site ids to plan for besides those the configs' site-specific steps name.
        known_databases: Logical databases a site can reach; a SQL script routing a statement
            elsewhere is refused (None: not checked).
        sources: Versions a site upgrades from (``--from``, the site's recorded version), each with
            where it came from: the ranges from them to the newest config are planned too.
    """
    loaded, problems = tree_problems(configs_dir, sql_root, allowed_step_modules, sites=sites,
                                     known_databases=known_databases, sources=sources)
    _raise([p.error for p in problems])
    return loaded


def validate_for_run(configs_dir: Path, sql_root: Path, allowed_step_modules: tuple[str, ...], cutpoint: str, *,
                     sources: Mapping[Version, str] | None = None) -> list[str]:
    """What ``run CUTPOINT`` checks first: everything but the files of other cutpoints' steps.

    A refused SQL script of startup_pre_process must not keep pre_business_check (which runs no SQL) from
    running: such problems are returned, as warnings to show, instead of raised. Raises :class:`ConfigErrors`
    for the rest (configs, step classes and parameters, ranges, and the files of this cutpoint's steps).
    """
    _, problems = tree_problems(configs_dir, sql_root, allowed_step_modules, sources=sources)
    _raise([p.error for p in problems if p.cutpoint in (None, cutpoint)])
    return [f"{p.error} (a problem for {p.cutpoint}, not for {cutpoint})" for p in problems
            if p.cutpoint not in (None, cutpoint)]


@dataclass(frozen=True)
class TreeProblem:
    """One problem ``validate`` found; ``cutpoint``: the one whose step uses the file at fault (``rollback`` for a
    rollback step), None where every run is concerned (a config, a step class or its parameters, a range)."""

    error: InputError
    cutpoint: str | None = None


def tree_problems(configs_dir: Path, sql_root: Path, allowed_step_modules: tuple[str, ...] = (), *,
                  sites: Iterable[str] = (), known_databases: Iterable[str] | None = None,
                  sources: Mapping[Version, str] | None = None) -> tuple[list[LoadedConfig], list[TreeProblem]]:
    """Every problem of the tree, with the cutpoint it concerns (a config that cannot be read at all raises)."""
    loaded = load_configs(configs_dir)
    known = frozenset(known_databases) if known_databases is not None else None
    problems: list[TreeProblem] = []
    roots = {"sql_root": sql_root, "configs_dir": configs_dir}
    for item in loaded:
        for field, step in _steps(item):
            problems.extend(_step_problems(item, field, step, allowed_step_modules, roots, known))
    named_sites = {site for item in loaded for _, step in _steps(item) for site in step.site_ids}
    problems.extend(TreeProblem(p.as_config_error())
                    for p in range_problems(loaded, named_sites | set(sites), sources))
    return loaded, problems


#: The closing line of a refusal that names problems in files (SQL scripts and the like).
ADVICE = ("Nothing was run. Fix each problem in the file and line it names (a SOURCE path is relative to the "
          "including file's folder and stays inside the SQL root; a refused construct is removed or rewritten as "
          "its message says), then run `ft-upgrade validate` again. Cutpoints whose steps do not use these files "
          "(pre_business_check, …) are not held back by them.")


def _raise(errors: list[InputError]) -> None:
    if not errors:
        return
    in_files = sum(1 for e in errors if isinstance(e, ConfigError) and e.in_file)
    if in_files:
        count = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
        raise ConfigErrors(errors, advice=f"{count} ({in_files} in the files steps use). {ADVICE}")
    raise errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _steps(item: LoadedConfig) -> list[tuple[str, StepConfig]]:
    """Every step of a config with its field path, rollback steps included."""
    sections = [(f"upgrade_steps.{cp.value}", steps) for cp, steps in item.config.upgrade_steps.items()]
    sections += [(f"rollback_steps.{name}", steps) for name, steps in item.config.rollback_steps.items()]
    return [(f"{section}[{position}]", step) for section, steps in sections for position, step in enumerate(steps)]


def _step_problems(item: LoadedConfig, field: str, step: StepConfig, allowed_step_modules: tuple[str, ...],
                   roots: dict[str, Any], known: frozenset[str] | None) -> list[TreeProblem]:
    """One step: its class resolves, its fields fit the class, the files it names can be used."""
    resolution = resolve_step_class(step.class_name, allowed_step_modules)
    if resolution.step_class is None:
        return [TreeProblem(ConfigError(item.path, resolution.reason, field=f"{field}.class_name"))]
    given, problems = check_step_params(item.path, field, step, resolution.step_class, item.folder,
                                        version=item.version, sql_root=roots["sql_root"])
    if problems:
        return [TreeProblem(p) for p in problems]
    params = resolution.step_class.Params.model_validate(given, context={"configs_dir": item.folder})
    found = static_problems(resolution.step_class, params, roots)
    if not found and known is not None:
        found = database_problems(params, roots["sql_root"], known)
    section = field.split("[", 1)[0]
    cutpoint = section.removeprefix("upgrade_steps.") if section.startswith("upgrade_steps.") else "rollback"
    return [TreeProblem(ConfigError(item.path, p, field=field, in_file=True), cutpoint) for p in found]


def database_problems(params: Any, sql_root: Path, known: frozenset[str]) -> list[str]:
    """A SQL step's statements go only to logical databases a site can reach (else it fails only at run)."""
    scripts = getattr(params, "sql_scripts", None)
    default = getattr(params, "database", None)
    if not scripts or not isinstance(default, str):
        return []
    from tasks.sql.script import load_script

    listed = ", ".join(sorted(known))
    problems = [] if default in known else [f"database: {default!r} is not a known logical database (known: {listed})"]
    for relative in scripts:
        try:
            load_script(sql_root, relative, version="0", default_database=default, known_databases=known)
        except SqlScriptError as exc:
            problems += exc.problems
    return problems


def site_files(folder: Path) -> dict[str, frozenset[str]]:
    """Site id → the logical databases its site file names (``deployments/sites/*.json``); unreadable ones skipped.

    ``blocks apply`` refuses a bad site file; here they only widen what ``validate`` knows.
    """
    found: dict[str, frozenset[str]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("site_id"), str):
            databases = data.get("databases")
            found[data["site_id"]] = frozenset(databases) if isinstance(databases, dict) else frozenset()
    return found
