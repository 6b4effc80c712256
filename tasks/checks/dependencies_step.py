"""DependencyCheckStep: a version's ``dependencies`` checked at the site, with the business check's report.

The plan adds it by itself, first in pre_business_check (``dependencies_check``) and again first in
startup_pre_process (``dependencies_recheck``, the seed's precondition "组件新版本已替换完成" and the
resources the stopped upgrade is about to use), whenever the configs of the upgrade declare
``required_components`` or ``required_resources``. Each requirement becomes one rule, so the result is
pass / warn / fail per item in the same report as the seed's 前置业务检查, titled 版本依赖检查.
A config may also name the class itself with these fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tasks.checks.step import BusinessCheckParams, PreBusinessCheckStep
from tasks.core.resources import RESOURCES, Resource
from tasks.core.steps import StepParams

_RESOURCE_TITLES = {"memory": "内存资源检查", "disk": "磁盘资源检查", "cpu": "CPU资源检查"}


class SourceRange(StepParams):
    """One config's source range and the version in effect before it."""

    config: str
    in_effect: str
    min_version: str | None = None
    max_version: str | None = None
    base_version: str | None = None


class DependencyCheckParams(BusinessCheckParams):
    """The requirements to check; the rules are made from them (any ``rules`` given are replaced)."""

    components: list[str] = Field(default_factory=list, description="Components the site profile must list.")
    components_running: bool = Field(default=True, description="And each answers at its URL (false once stopped).")
    resources: dict[Resource, str] = Field(default_factory=dict, description="memory / disk / cpu, as configs write "
                                                                             "them ('2GB', '10GB', '2cores').")
    sources: list[SourceRange] = Field(default_factory=list, description="Source ranges, shown as checked.")

    @model_validator(mode="before")
    @classmethod
    def _rules_from_requirements(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        rules: list[dict[str, Any]] = []
        for source in data.get("sources") or []:
            values = source if isinstance(source, dict) else dict(source)
            rules.append({"id": f"source_{values.get('config', '')}", "type": "source_version",
                          "title": f"源版本检查（{values.get('config', '')}）", **values})
        if data.get("components"):
            rules.append({"id": "required_components", "title": "组件检查", "type": "required_components",
                          "components": data["components"], "running": data.get("components_running", True)})
        for resource in RESOURCES:
            if resource in (data.get("resources") or {}):
                rules.append({"id": f"required_{resource}", "title": _RESOURCE_TITLES[resource],
                              "type": "required_resource", "resource": resource,
                              "required": data["resources"][resource]})
        return {**data, "rules": rules}


class DependencyCheckStep(PreBusinessCheckStep):
    """Components listed (and answering), free memory, disk and CPU, and the source range, against the configs."""

    Params = DependencyCheckParams
    description = "版本依赖检查: required components, resources and source range of the upgrade's configs"
    params: DependencyCheckParams
    titles = {"zh": "[FT版本依赖检查报告]", "en": "[FT version dependencies report]"}
