"""``ft-upgrade validate``: every config, every step class, every parameter, every file they name.

Meant for the config repository's own CI: it reports all problems at once, for all sites and
cutpoints (not only those one plan would select), and never executes anything.
"""

from __future__ import annotations

from pathlib import Path

from tasks.core.errors import ConfigError, ConfigErrors, InputError
from tasks.planning.config_loader import LoadedConfig, load_configs
from tasks.planning.plan import check_step_params
from tasks.steps.base import static_problems
from tasks.steps.registry import resolve_step_class


def validate_tree(configs_dir: Path, sql_root: Path, allowed_step_modules: tuple[str, ...] = ()) -> list[LoadedConfig]:
    """Load and check everything; raises :class:`ConfigErrors` listing every problem."""
    loaded = load_configs(configs_dir)
    errors: list[InputError] = []
    roots = {"sql_root": sql_root, "configs_dir": configs_dir}
    for item in loaded:
        sections = [(f"upgrade_steps.{cp.value}", steps) for cp, steps in item.config.upgrade_steps.items()]
        sections += [(f"rollback_steps.{name}", steps) for name, steps in item.config.rollback_steps.items()]
        for section, steps in sections:
            for position, step in enumerate(steps):
                field = f"{section}[{position}]"
                resolution = resolve_step_class(step.class_name, allowed_step_modules)
                if resolution.step_class is None:
                    errors.append(ConfigError(item.path, resolution.reason, field=f"{field}.class_name"))
                    continue
                _, problems = check_step_params(item.path, field, step, resolution.step_class, item.folder)
                errors.extend(problems)
                if problems:
                    continue
                params = resolution.step_class.Params.model_validate(step.params,
                                                                     context={"configs_dir": item.folder})
                for problem in static_problems(resolution.step_class, params, roots):
                    errors.append(ConfigError(item.path, problem, field=field))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return loaded
