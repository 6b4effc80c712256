"""A rollback: the configs' ``rollback_steps`` for one execution, run only on request.

Resuming stays the default way forward; a rollback (e.g. ``RestoreBackupStep`` restoring this
upgrade's backup) is an operator's decision, run by the ``rollback`` flow (a deployment per site, or
``ft-upgrade rollback``). The steps run in config order, with the original execution's id so that they
find what it left behind, while the site's lock is held: no cutpoint runs at the site meanwhile.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from blocks.site_profile import load_site_profile
from tasks.core.errors import InputError
from tasks.core.settings import Settings, get_settings
from tasks.core.versions import Version
from tasks.execution.service import ExecutionService
from tasks.planning.config_loader import load_configs
from tasks.planning.plan import check_step_params
from tasks.site.resources import SiteOverrides, open_site_resources
from tasks.steps.context import StepContext
from tasks.steps.registry import resolve_step_class
from tasks.store.site_lock import site_lock


def run_rollback(execution_id: str, *, settings: Settings | None = None, overrides: SiteOverrides | None = None,
                 site_id: str | None = None, holder: str = "ft-upgrade rollback",
                 logger: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> list[dict[str, Any]]:
    """Run every rollback step of the execution's version range; raises StepFailed on the first failure."""
    overrides = overrides or SiteOverrides()
    settings = settings or get_settings()
    with ExecutionService.locate(execution_id, site_id, metadata_url=overrides.databases.get("metadata")) as service:
        execution = service.execution(execution_id)
        if site_id and execution["site_id"] != site_id:
            raise InputError(f"execution {execution_id} belongs to site {execution['site_id']}, not {site_id}")
        with site_lock(service.store.engine, execution["site_id"], holder=holder,
                       wait_seconds=settings.site_lock_wait_seconds,
                       check_seconds=settings.site_lock_check_seconds) as held, service.store.fenced_by(held):
            return _rollback_steps(execution_id, execution, settings, overrides,
                                   logger or logging.getLogger("ft_upgrade.rollback"))


def _rollback_steps(execution_id: str, execution: dict[str, Any], settings: Settings, overrides: SiteOverrides,
                    logger: logging.Logger | logging.LoggerAdapter[Any]) -> list[dict[str, Any]]:
    source, target = Version.parse(execution["source_version"]), Version.parse(execution["target_version"])
    chain = [c for c in load_configs(settings.configs) if source < c.version <= target]
    steps = [(c, name, i, step) for c in chain for name, group in c.config.rollback_steps.items()
             for i, step in enumerate(group)]
    if not steps:
        raise InputError(f"no rollback_steps in the configs of {source} → {target}")
    results: list[dict[str, Any]] = []
    with open_site_resources(execution["site_id"], settings=settings, overrides=overrides,
                             profile=load_site_profile(execution["site_id"])) as resources:
        recorded = json.loads(execution["environment"] or "{}")
        resources.resolve_environment(recorded)  # Secret block references, as the run resolved them
        for loaded, group, position, step in steps:
            resolution = resolve_step_class(step.class_name, settings.allowed_step_modules)
            if resolution.step_class is None:
                raise InputError(f"{loaded.path}: rollback step {step.id!r}: {resolution.reason}")
            params, problems = check_step_params(loaded.path, f"rollback_steps.{group}[{position}]", step,
                                                 resolution.step_class, loaded.folder)
            if problems:
                raise InputError("\n".join(str(p) for p in problems))
            context = StepContext(
                execution_id=execution_id, cutpoint=execution["step_type"], step_id=step.id,
                step_key=f"{loaded.version.code}:{step.id}", step_name=step.name or step.id,
                version=str(loaded.version), source_version=str(source), target_version=str(target),
                site_id=execution["site_id"], environment=resources.step_environment(recorded),
                resources=resources, logger=logger)
            cls = resolution.step_class
            result = cls(cls.Params.model_validate(params), context).run()  # StepFailed stops the rollback
            results.append({"step_id": step.id, "status": result.status.value, "summary": result.summary})
    return results
