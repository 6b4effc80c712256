"""``ft-upgrade rollback``: the configs' ``rollback_steps`` for one execution, run only on request.

Resuming stays the default way forward; a rollback (e.g. ``RestoreBackupStep`` restoring this
upgrade's backup) is an operator's decision. The steps run in this process, in config order, with
the original execution's id so that they find what it left behind.
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


def run_rollback(execution_id: str, *, settings: Settings | None = None,
                 overrides: SiteOverrides | None = None) -> list[dict[str, Any]]:
    """Run every rollback step of the execution's version range; raises StepFailed on the first failure."""
    overrides = overrides or SiteOverrides()
    with ExecutionService.locate(execution_id, metadata_url=overrides.databases.get("metadata")) as service:
        execution = service.execution(execution_id)
    settings = settings or get_settings()
    source, target = Version.parse(execution["source_version"]), Version.parse(execution["target_version"])
    chain = [c for c in load_configs(settings.configs) if source < c.version <= target]
    steps = [(c, name, i, step) for c in chain for name, group in c.config.rollback_steps.items()
             for i, step in enumerate(group)]
    if not steps:
        raise InputError(f"no rollback_steps in the configs of {source} → {target}")
    results: list[dict[str, Any]] = []
    with open_site_resources(execution["site_id"], settings=settings, overrides=overrides,
                             profile=load_site_profile(execution["site_id"])) as resources:
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
                site_id=execution["site_id"], environment=json.loads(execution["environment"] or "{}"),
                resources=resources, logger=logging.getLogger("ft_upgrade.rollback"))
            cls = resolution.step_class
            result = cls(cls.Params.model_validate(params), context).run()  # StepFailed stops the rollback
            results.append({"step_id": step.id, "status": result.status.value, "summary": result.summary})
    return results
