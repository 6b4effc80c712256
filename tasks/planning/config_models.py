"""Pydantic models of the versioned upgrade configs, in the requirements' shape.

Models are frozen values: loaded once per run, never mutated. A step's own fields (``sql_scripts``,
``config_files``, rules…) are kept as ``params`` and validated by the step class's parameter model
when the plan is built. ``configs/schema.json`` is generated from :class:`VersionConfig`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tasks.core.cutpoints import CUTPOINT_ALIASES, Cutpoint
from tasks.core.resources import RESOURCES, Resource, parse_amount
from tasks.core.versions import Version


def _to_version(value: object) -> Version:
    try:
        return Version.parse(value)
    except Exception as exc:  # pydantic reports ValueError with the field path
        raise ValueError(str(exc)) from None


VersionField = Annotated[
    Version,
    BeforeValidator(_to_version),
    PlainSerializer(lambda v: str(v.code), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d{6}|[1-9]\.(0|[1-9]\d?)\.\d(-P[1-9]\d?)?)$"}),
]
"""A version written as a code (``"317500"``) or dotted (``"3.17.5"``, ``"3.17.5-P1"``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Metadata(BaseModel):
    """Free-form bookkeeping (author, times, checksum, tags); extra keys are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")
    created_by: str | None = None
    created_time: str | None = None
    last_modified: str | None = None
    checksum: str | None = None
    is_major_upgrade: bool | None = None
    patch_type: str | None = None
    tags: list[str] = Field(default_factory=list)


class Dependencies(_Frozen):
    """Which source versions a config may be applied to, and what the site must have for it.

    ``required_components`` and ``required_resources`` are checked at the site by the check the plan
    adds first to pre_business_check (``dependencies_check``) and again to startup_pre_process
    (``dependencies_recheck``); the source range is checked when the plan is built.
    """

    min_source_version: VersionField | None = None
    max_source_version: VersionField | None = None
    required_base_version: VersionField | None = None
    required_components: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="FT components the site must run, by their name in the site profile's "
                                          "services (ft-manager, ft-report, ft-openapi).")
    required_resources: dict[Resource, str] = Field(
        default_factory=dict, description="Free memory and disk (e.g. '2GB', '10GB') and CPU cores ('2cores') "
                                          "the worker host must have.",
        json_schema_extra={"propertyNames": {"enum": list(RESOURCES)}})

    @field_validator("required_resources")
    @classmethod
    def _amounts(cls, value: dict[str, str]) -> dict[str, str]:
        for resource, amount in value.items():
            parse_amount(resource, amount)
        return value


class PatchInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    fixed_issues: list[str] = Field(default_factory=list)
    affected_modules: list[str] = Field(default_factory=list)


#: Step ids of the checks the plan adds itself (see :class:`Dependencies`); a config may not use them.
DEPENDENCY_CHECK_IDS: dict[Cutpoint, str] = {Cutpoint.PRE_BUSINESS_CHECK: "dependencies_check",
                                             Cutpoint.STARTUP_PRE_PROCESS: "dependencies_recheck"}


STEP_DESCRIPTION = (
    "One step. Fields beyond those listed are the step class's own parameters. A step with none of its own "
    "follows its class's convention (README: Steps written without details): PreBusinessCheckStep runs "
    "rules/default.json of the configs folder, else the built-in default rule set; PreUpgradeProcessStep backs "
    "up ft_db, middle_db and the site's config_dir, renders its *.tpl files and checks the site's services and "
    "databases; StartupPreProcessStep / PatchSqlExecutorStep run every *.sql of the version's folder "
    "(<sql root>/baseline/<code>/ or patch/<code>/) in name order, OverseasSpecificProcessStep those of its "
    "overseas/ subfolder; StartupPostProcessStep checks the site's services and ft_db; PostUpgradeProcessStep "
    "archives logs older than 7 days in the site's log_dir and empties its staging_dir.")


class StepConfig(BaseModel):
    """One step of a cutpoint. Unknown keys are the step's own parameters (see ``params``).

    A step with no parameter of its own (as the seed's examples write them) follows its class's
    convention, filled in when the plan is built (README "Steps written without details").
    """

    model_config = ConfigDict(frozen=True, extra="allow",
                              json_schema_extra={"description": STEP_DESCRIPTION})

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$", description="Unique within the config.")
    name: str = Field(default="", description="Human title, shown in reports.")
    class_name: str = Field(min_length=1, description="Built-in simple name, or a dotted path of an allowed module.")
    is_common: bool = Field(default=True, description="False: runs only where site_ids holds the site.")
    site_ids: list[str] = Field(default_factory=list)
    site_specific: bool | None = Field(default=None, description="Old spelling of is_common=false.")
    description: str = ""
    timeout: int | None = Field(default=None, gt=0, description="Seconds; maps to the Prefect task timeout.")
    retry_count: int = Field(default=0, ge=0, le=10, description="Maps to Prefect task retries.")
    retry_delay_seconds: float = Field(default=2.0, ge=0)
    estimated_duration: int | None = Field(default=None, ge=0, description="Seconds; shown and used for progress.")
    required: bool = Field(default=True, description="False: a failure is recorded as a warning and the run goes on.")
    order: int | None = Field(default=None, description="Declared order within its version (default: position).")
    priority: int | None = Field(default=None, description="Alias of order, as in the requirements.")
    dependencies: list[str] = Field(default_factory=list, description="Step ids that must run first.")
    rollback_supported: bool = False

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in DEPENDENCY_CHECK_IDS.values():
            raise ValueError(f"step id {value!r} is the plan's own dependency check: choose another id")
        return value

    @model_validator(mode="after")
    def _runs_somewhere(self) -> StepConfig:
        """A site-specific step naming no site would be left out of every plan without a word."""
        if not self.applies_to_all_sites and not self.site_ids:
            flag = "site_specific is true" if self.site_specific else "is_common is false"
            raise ValueError(f"step {self.id!r}: {flag} but site_ids is empty: it would run at no site; "
                             "name its sites in site_ids")
        return self

    @property
    def params(self) -> dict[str, Any]:
        """The step's own fields, for its parameter model."""
        return dict(self.model_extra or {})

    @property
    def applies_to_all_sites(self) -> bool:
        return self.is_common and not self.site_specific


def _normalise_cutpoints(value: object) -> object:
    """Map old cutpoint keys (``pre_upgrade``) onto current ones; the loader warns about them."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, steps in value.items():
        new = CUTPOINT_ALIASES.get(key, key)
        new_key = new.value if isinstance(new, Cutpoint) else new
        if new_key in out:
            raise ValueError(f"cutpoint {new_key!r} given twice (once as alias {key!r})")
        out[new_key] = steps
    return out


class Notifications(_Frozen):
    on_success: list[str] = Field(default_factory=list)
    on_failure: list[str] = Field(default_factory=list)
    webhook_url: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """Versioned configs are read by everyone who reads the repository: a token belongs in a block."""
        if value and _CREDENTIAL_IN_URL.search(value):
            raise ValueError("the webhook URL carries a credential (a token, key, secret or user:password): "
                             "configs are versioned; put it in a notification block of the site "
                             "(`notifications` and `alerts` in its site file) instead")
        return value


_CREDENTIAL_IN_URL = re.compile(r"[?&](?:access_?token|token|key|secret|sign|password)=|//[^/@\s]+:[^/@\s]*@", re.I)


class VersionConfig(_Frozen):
    """One baseline or patch config file (``configs/317500.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="FT upgrade version config")

    schema_: str | None = Field(default=None, alias="$schema")
    version: VersionField
    version_type: Literal["baseline", "patch"] | None = Field(
        default=None, description="Defaults from the version: P1..P99 is a patch.")
    base_version: VersionField | None = None
    description: str = ""
    metadata: Metadata = Field(default_factory=Metadata)
    dependencies: Dependencies = Field(default_factory=Dependencies)
    patch_info: PatchInfo | None = None
    upgrade_steps: Annotated[dict[Cutpoint, list[StepConfig]], BeforeValidator(_normalise_cutpoints)] = Field(
        default_factory=dict)
    rollback_steps: dict[str, list[StepConfig]] = Field(default_factory=dict)
    notifications: Notifications | None = None

    @model_validator(mode="after")
    def _consistent(self) -> VersionConfig:
        kind = "patch" if self.version.is_patch else "baseline"
        if self.version_type is not None and self.version_type != kind:
            raise ValueError(f"version_type is {self.version_type!r} but version {self.version} is a {kind}")
        if self.version.is_patch:
            base = self.base_version or self.version.baseline
            if base != self.version.baseline:
                raise ValueError(
                    f"base_version {base} does not match patch {self.version} (its base is {self.version.baseline})")
        elif self.base_version is not None and self.base_version != self.version:
            raise ValueError(f"base_version {self.base_version} given for baseline {self.version}")
        seen: dict[str, str] = {}
        for cutpoint, steps in self.upgrade_steps.items():
            for step in steps:
                if step.id in seen:
                    raise ValueError(f"duplicate step id {step.id!r} (in {seen[step.id]} and {cutpoint.value})")
                seen[step.id] = cutpoint.value
        return self

    @property
    def kind(self) -> str:
        return "patch" if self.version.is_patch else "baseline"

    @property
    def base(self) -> Version | None:
        """The baseline a patch is applied on (None for a baseline): its upgrade must come first."""
        return self.version.baseline if self.version.is_patch else None

    def fingerprint(self) -> str:
        """A stable hash of the config's content, recorded with every execution."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema editors use to validate configs (``configs/schema.json``)."""
    schema = VersionConfig.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://ft.example/ft-auto-upgrade/config.schema.json"
    return schema
