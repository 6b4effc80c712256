"""A rollback: the configs' ``rollback_steps`` for one execution, run only on request, through the step loop.

Resuming stays the default way forward; a rollback (e.g. ``RestoreBackupStep`` restoring this
upgrade's backup) is an operator's decision, run by the ``rollback`` flow (a deployment per site, or
``ft-upgrade rollback``). The steps run in config order, with the original execution's id so that they
find what it left behind, while the site's lock is held: no cutpoint runs at the site meanwhile. They go
through the same :class:`StepLoop` as a cutpoint's, in this process, recorded in memory (a rollback has no
execution of its own yet); the first failure stops the rollback and is raised.
"""

from __future__ import annotations

import logging
from typing import Any

from blocks.site_profile import load_site_profile
from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import InputError
from tasks.core.settings import Settings, get_settings
from tasks.core.steps import StepResult
from tasks.core.versions import Version
from tasks.execution.loop import Logger, MemorySteps, RunScope, StepLoop, in_process
from tasks.execution.service import ExecutionService
from tasks.planning.config_loader import load_configs
from tasks.planning.plan import PlannedStep, check_step_params
from tasks.site.resources import SiteOverrides, open_site_resources
from tasks.steps.registry import resolve_step_class
from tasks.store.records import Execution


def run_rollback(execution_id: str, *, settings: Settings | None = None, overrides: SiteOverrides | None = None,
                 site_id: str | None = None, holder: str = "ft-upgrade rollback",
                 logger: Logger | None = None) -> list[dict[str, Any]]:
    """Run every rollback step of the execution's version range; raises StepFailed on the first failure."""
    overrides = overrides or SiteOverrides()
    settings = settings or get_settings()
    with ExecutionService.locate(execution_id, site_id, metadata_url=overrides.databases.get("metadata")) as service:
        execution = service.execution(execution_id)
        if site_id and execution.site_id != site_id:
            raise InputError(f"execution {execution_id} belongs to site {execution.site_id}, not {site_id}")
        with service.hold(execution.site_id, holder, settings=settings):
            return _rollback_steps(execution, settings, overrides, logger or logging.getLogger("ft_upgrade.rollback"))


def rollback_plan(execution: Execution, settings: Settings) -> list[PlannedStep]:
    """The rollback steps of the execution's version range, in config order, their classes and fields checked."""
    source, target = Version.parse(execution.source_version), Version.parse(execution.target_version)
    chain = [c for c in load_configs(settings.configs) if source < c.version <= target]
    found = [(c, name, i, step) for c in chain for name, group in c.config.rollback_steps.items()
             for i, step in enumerate(group)]
    if not found:
        raise InputError(f"no rollback_steps in the configs of {source} → {target}")
    planned: list[PlannedStep] = []
    for loaded, group, position, step in found:
        resolution = resolve_step_class(step.class_name, settings.allowed_step_modules)
        if resolution.step_class is None:
            raise InputError(f"{loaded.path}: rollback step {step.id!r}: {resolution.reason}")
        params, problems = check_step_params(loaded.path, f"rollback_steps.{group}[{position}]", step,
                                             resolution.step_class, loaded.folder)
        if problems:
            raise InputError("\n".join(str(p) for p in problems))
        key = f"{loaded.version.code}:{step.id}"
        planned.append(PlannedStep(
            key=key if all(p.key != key for p in planned) else f"{key}#{len(planned)}",  # one record per step
            cutpoint=Cutpoint(execution.cutpoint), version=str(loaded.version), version_code=loaded.version.code,
            step_id=step.id, name=step.name or step.id, description=step.description, class_name=step.class_name,
            implementation=resolution.qualified_name, params=params, timeout=step.timeout,
            retry_count=step.retry_count, retry_delay_seconds=step.retry_delay_seconds, required=True,
            estimated_duration=step.estimated_duration, config_file=loaded.path,
            config_fingerprint=loaded.config.fingerprint()))
    return planned


def _rollback_steps(execution: Execution, settings: Settings, overrides: SiteOverrides,
                    logger: Logger) -> list[dict[str, Any]]:
    steps = rollback_plan(execution, settings)
    scope = RunScope(execution_id=execution.execution_id, cutpoint=execution.cutpoint,
                     source_version=str(Version.parse(execution.source_version)),
                     target_version=str(Version.parse(execution.target_version)), site_id=execution.site_id,
                     environment=execution.environment)
    with open_site_resources(execution.site_id, settings=settings, overrides=overrides,
                             profile=load_site_profile(execution.site_id)) as resources:
        resources.resolve_environment(execution.environment)  # Secret block references, as the run resolved them
        loop = StepLoop(scope, MemorySteps(), resources, allowed_step_modules=settings.allowed_step_modules,
                        logger=logger)
        outcome = loop.run(steps, in_process)
    if outcome.error is not None:
        raise outcome.error  # the step's own error: StepFailed stops the rollback
    results = [(s, StepResult.from_json(outcome.values[s.key])) for s in steps]
    return [{"step_id": s.step_id, "status": r.status.value, "summary": r.summary} for s, r in results]
