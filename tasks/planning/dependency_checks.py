"""The checks of a version's ``dependencies`` that the plan adds by itself (see :class:`Dependencies`).

Pure, like the plan: the requirements of the chain's configs, merged, as a ``DependencyCheckStep``
first in pre_business_check and again first in startup_pre_process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasks.core.cutpoints import Cutpoint
from tasks.core.resources import parse_amount
from tasks.core.versions import Version
from tasks.planning.config_loader import LoadedConfig
from tasks.planning.config_models import DEPENDENCY_CHECK_IDS


@dataclass(frozen=True)
class DependencyCheck:
    """One check to add: where, under which id and name, with its validated parameters, for which config."""

    cutpoint: Cutpoint
    step_id: str
    name: str
    class_name: str
    implementation: str
    params: dict[str, Any]
    owner: LoadedConfig


def dependency_checks(chain: Sequence[LoadedConfig], source: Version, only: Cutpoint | None) -> list[DependencyCheck]:
    """The checks of the chain's ``required_components``/``required_resources`` the plan adds by itself.

    First in pre_business_check (with the source ranges, shown as checked) and again first in
    startup_pre_process (components listed, resources free), attributed to the newest config that
    declares requirements. None when no config of the chain declares any.
    """
    from tasks.checks.dependencies_step import DependencyCheckStep

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
    checks = {Cutpoint.PRE_BUSINESS_CHECK: ("版本依赖检查", {"sources": sources, "components_running": True}),
              Cutpoint.STARTUP_PRE_PROCESS: ("版本依赖复查", {"components_running": False})}
    found = []
    for cutpoint, (name, extra) in checks.items():
        if only is not None and cutpoint != only:
            continue
        raw = {"components": components, "resources": resources, **extra}
        params = DependencyCheckStep.Params.model_validate(raw, context={"configs_dir": owner.folder})
        found.append(DependencyCheck(
            cutpoint=cutpoint, step_id=DEPENDENCY_CHECK_IDS[cutpoint], name=name,
            class_name=DependencyCheckStep.__name__,
            implementation=f"{DependencyCheckStep.__module__}.{DependencyCheckStep.__qualname__}",
            params=params.model_dump(mode="json"), owner=owner))
    return found
