"""The checks of a version's ``dependencies`` that the plan adds by itself (see :class:`Dependencies`).

Pure, like the plan: the requirements of the chain's configs, merged, as a ``DependencyCheckStep``
first in pre_business_check and again first in startup_pre_process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tasks.core.cutpoints import Cutpoint
from tasks.core.resources import parse_amount
from tasks.core.versions import Version
from tasks.planning.config_loader import LoadedConfig
from tasks.planning.config_models import DEPENDENCY_CHECK_IDS

if TYPE_CHECKING:
    from tasks.planning.plan import PlannedStep


def dependency_checks(chain: Sequence[LoadedConfig], source: Version, only: Cutpoint | None) -> list[PlannedStep]:
    """The checks of the chain's ``required_components``/``required_resources`` the plan adds by itself.

    First in pre_business_check (with the source ranges, shown as checked) and again first in
    startup_pre_process (components listed, resources free), attributed to the newest config that
    declares requirements. None when no config of the chain declares any.
    """
    from tasks.checks.dependencies_step import DependencyCheckStep
    from tasks.planning.plan import PlannedStep

    declaring = [c for c in chain if c.config.dependencies.required_components
                 or c.config.dependencies.required_resources]
    if not declaring:
        return []
    components = list(dict.fromkeys(name for c in chain for name in c.config.dependencies.required_components))
    resources: dict[str, str] = {}
    for c in chain:
        for resource, amount in c.config.dependencies.required_resources.items():
            current = resources.get(resource)
            if current is None or parse_amount(resource, amount) > parse_amount(resource, current):
                resources[resource] = amount
    sources, in_effect = [], source
    for c in chain:
        deps = c.config.dependencies
        if deps.min_source_version or deps.max_source_version or deps.required_base_version:
            sources.append({"config": str(c.version), "in_effect": str(in_effect),
                            **{k: str(v) for k, v in (("min_version", deps.min_source_version),
                                                      ("max_version", deps.max_source_version),
                                                      ("base_version", deps.required_base_version)) if v}})
        in_effect = c.version
    owner = declaring[-1]
    fingerprint = owner.config.fingerprint()
    checks = {Cutpoint.PRE_BUSINESS_CHECK: ("版本依赖检查", {"sources": sources, "components_running": True}),
              Cutpoint.STARTUP_PRE_PROCESS: ("版本依赖复查", {"components_running": False})}
    planned = []
    for cutpoint, (name, extra) in checks.items():
        if only is not None and cutpoint != only:
            continue
        raw = {"components": components, "resources": resources, **extra}
        params = DependencyCheckStep.Params.model_validate(raw, context={"configs_dir": owner.folder})
        step_id = DEPENDENCY_CHECK_IDS[cutpoint]
        planned.append(PlannedStep(
            key=f"{owner.version.code}:{step_id}", cutpoint=cutpoint, version=str(owner.version),
            version_code=owner.version.code, step_id=step_id, name=name, class_name=DependencyCheckStep.__name__,
            implementation=f"{DependencyCheckStep.__module__}.{DependencyCheckStep.__qualname__}",
            params=params.model_dump(mode="json"), timeout=300, retry_count=0, retry_delay_seconds=2.0,
            required=True, estimated_duration=5, config_file=owner.path, config_fingerprint=fingerprint))
    return planned
