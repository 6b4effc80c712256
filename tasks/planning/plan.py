"""The upgrade plan: which steps run, in which order, for one site and version range.

Pure: it takes configs already loaded and returns a JSON-serialisable value; it reads nothing and
touches nothing. Everything below ``flows/`` works from the plan, never from configs again.

Rules (requirements 0 and 3.2, DESIGN "Versions and configs"):

* every config with ``source < code <= target`` takes part, baselines and patches alike;
* a patch whose base the range crosses (source below the base) needs the base's config in the
  folder (an empty one for a release without upgrade work): else the base's upgrade would be
  skipped without a word;
* each config's ``dependencies`` are checked against the version in effect at that point of the
  chain (the source for the first config, the previous config's version after that);
* steps are ordered by version, then declared ``order``/``priority`` (else position), honouring
  step ``dependencies`` (a cycle or an unknown id is an error);
* ``is_common: false`` steps are kept only where ``site_ids`` holds the site.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import ConfigError, ConfigErrors, InputError, PlanError, StepResolutionError
from tasks.core.settings import Settings
from tasks.core.versions import Version
from tasks.planning.config_loader import LoadedConfig
from tasks.planning.config_models import StepConfig
from tasks.planning.conventions import ConventionContext, with_convention
from tasks.planning.dependency_checks import dependency_checks
from tasks.steps.base import UpgradeStep
from tasks.steps.registry import Resolution, resolve_step_class


class PlannedStep(BaseModel):
    """One step as it will run."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Unique in the plan: '<version code>:<step id>'.")
    cutpoint: Cutpoint
    version: str
    version_code: int
    step_id: str
    name: str
    description: str = Field(default="", description="The config's description of the step (plan and report).")
    class_name: str
    implementation: str | None = Field(description="Python class that runs it; None if unresolved.")
    unresolved_reason: str = ""
    params: dict[str, Any]
    timeout: int | None
    retry_count: int
    retry_delay_seconds: float
    required: bool
    estimated_duration: int | None
    depends_on: list[str] = Field(default_factory=list, description="Keys of steps that run first.")
    config_file: str
    config_fingerprint: str

    @property
    def resolved(self) -> bool:
        return self.implementation is not None


class Release(BaseModel):
    """A release the range crosses, with the config that carries its upgrade work (None: the folder has none)."""

    model_config = ConfigDict(frozen=True)

    version: str
    kind: Literal["baseline", "patch"]
    config_file: str | None = Field(description="None: no config in the folder, so nothing of this release runs.")
    steps: int = Field(default=0, description="Its steps in this plan (at this site; of the one cutpoint if given).")
    known_from: str = Field(default="", description="How a release without a config is known to exist.")


class UpgradePlan(BaseModel):
    """The whole plan; ``steps`` are in execution order (cutpoint, then version, then order)."""

    model_config = ConfigDict(frozen=True)

    source_version: str
    target_version: str
    site_id: str
    cutpoint: Cutpoint | None
    chain: list[str] = Field(description="Versions applied, in order.")
    releases: list[Release] = Field(default_factory=list, description=(
        "Every release the range is known to cross, in order: the chain's configs, and releases without a "
        "config (earlier patches of a base in the chain), so that a missing one is seen before anything runs."))
    steps: list[PlannedStep]
    warnings: list[str] = Field(default_factory=list)
    notifications: dict[str, Any] | None = Field(
        default=None, description="The newest config's notifications section along the chain.")

    def for_cutpoint(self, cutpoint: Cutpoint) -> list[PlannedStep]:
        return [s for s in self.steps if s.cutpoint == cutpoint]

    @property
    def unresolved(self) -> list[PlannedStep]:
        return [s for s in self.steps if not s.resolved]

    @property
    def estimated_seconds(self) -> int:
        return sum(s.estimated_duration or 0 for s in self.steps)

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def require_resolved(self) -> None:
        """Refuse to run a plan that names a step class with no implementation."""
        if self.unresolved:
            lines = [f"{s.config_file}: step {s.step_id!r}: {s.unresolved_reason}" for s in self.unresolved]
            raise StepResolutionError("unresolved step classes:\n" + "\n".join(lines))


def build_plan(
    configs: Sequence[LoadedConfig],
    source: Version | str,
    target: Version | str,
    site_id: str,
    cutpoint: Cutpoint | str | None = None,
    *,
    allowed_step_modules: Iterable[str] = (),
    sql_root: Path | None = None,
) -> UpgradePlan:
    """Build the plan for ``source → target`` at ``site_id`` (optionally one cutpoint only).

    ``sql_root`` is where a SQL step written without scripts finds its version's folder (default: the settings').

    Raises:
        PlanError: no config covers the range, a dependency fails, or steps form a cycle.
        ConfigErrors: step parameters fail their step's model (all reported together).
    """
    src, tgt = Version.parse(source), Version.parse(target)
    site = site_id.strip()
    if not site:
        raise PlanError("site id is empty")
    only = Cutpoint(cutpoint) if cutpoint is not None else None
    if tgt <= src:
        raise PlanError(f"target {tgt} is not newer than source {src}")
    chain = _chain(configs, src, tgt)
    warnings = [w for c in chain for w in c.warnings]
    ordered, problems = order_steps(select_steps(chain, site))
    if problems:
        raise PlanError("\n".join(str(p) for p in problems))
    prefixes = tuple(allowed_step_modules)
    fingerprints = {id(c): c.config.fingerprint() for c in chain}
    resolutions: dict[str, Resolution] = {}
    errors: list[InputError] = []
    planned: list[PlannedStep] = []
    for item in ordered:
        if only is not None and item.cutpoint != only:
            continue
        step, loaded = item.step, item.loaded
        resolution = resolutions.get(step.class_name) or resolve_step_class(step.class_name, prefixes)
        resolutions[step.class_name] = resolution
        params, problems = check_step_params(loaded.path, f"upgrade_steps.{item.cutpoint.value}[{item.position}]",
                                             step, resolution.step_class, loaded.folder, version=loaded.version,
                                             sql_root=sql_root)
        if problems:
            errors.extend(problems)
            continue
        planned.append(PlannedStep(
            key=item.key, cutpoint=item.cutpoint, version=str(loaded.version), version_code=loaded.version.code,
            step_id=step.id, name=step.name or step.id, description=step.description, class_name=step.class_name,
            implementation=resolution.qualified_name, unresolved_reason=resolution.reason, params=params,
            timeout=step.timeout, retry_count=step.retry_count, retry_delay_seconds=step.retry_delay_seconds,
            required=step.required, estimated_duration=step.estimated_duration,
            depends_on=item.depends_on, config_file=loaded.path, config_fingerprint=fingerprints[id(loaded)],
        ))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    for check in dependency_checks(chain, src, only):  # first in their cutpoint
        owner = check.owner
        at = next((i for i, s in enumerate(planned) if s.cutpoint.position >= check.cutpoint.position), len(planned))
        planned.insert(at, PlannedStep(
            key=f"{owner.version.code}:{check.step_id}", cutpoint=check.cutpoint, version=str(owner.version),
            version_code=owner.version.code, step_id=check.step_id, name=check.name, class_name=check.class_name,
            implementation=check.implementation, params=check.params, timeout=300, retry_count=0,
            retry_delay_seconds=2.0, required=True, estimated_duration=5, config_file=owner.path,
            config_fingerprint=fingerprints[id(owner)]))
    notifications = next((c.config.notifications.model_dump() for c in reversed(chain) if c.config.notifications),
                         None)
    return UpgradePlan(source_version=str(src), target_version=str(tgt), site_id=site, cutpoint=only,
                       chain=[str(c.version) for c in chain], releases=crossed_releases(chain, src, planned),
                       steps=planned, warnings=warnings, notifications=notifications)


def crossed_releases(chain: Sequence[LoadedConfig], src: Version, planned: Sequence[PlannedStep] = ()) -> list[Release]:
    """The releases ``src → (last of chain)`` crosses: each config of the chain, and the releases a patch
    of the chain implies (its base, the patches numbered before it) above ``src`` that have no config."""
    steps: dict[int, int] = {}
    for step in planned:
        steps[step.version_code] = steps.get(step.version_code, 0) + 1
    found = {c.version.code: Release(version=str(c.version), kind=c.config.kind, config_file=c.path,
                                     steps=steps.get(c.version.code, 0)) for c in chain}
    for loaded in chain:
        base = loaded.config.base
        if base is None:
            continue
        implied = [(base, f"the base of {loaded.version}")]
        implied += [(Version(base.major, base.minor, base.patch, p), f"numbered before {loaded.version}")
                    for p in range(1, loaded.version.p)]
        for version, why in implied:
            if src < version and version.code not in found:
                found[version.code] = Release(version=str(version), kind="patch" if version.is_patch else "baseline",
                                              config_file=None, known_from=why)
    return [found[code] for code in sorted(found)]


def check_step_params(path: str, field: str, step: StepConfig, step_class: type[UpgradeStep] | None,
                      configs_dir: Path | None = None, *, version: Version | None = None,
                      sql_root: Path | None = None) -> tuple[dict[str, Any], list[ConfigError]]:
    """Validate a step's own fields with its class's parameter model; errors name the field path.

    ``configs_dir`` reaches the model's validators (as pydantic's validation context): files a step
    names, such as rule files, are relative to it. Given the step's ``version``, a step written without
    fields gets its class's convention (:mod:`tasks.planning.conventions`) before validation.
    """
    if step_class is None:
        return step.params, []
    given = step.params
    if version is not None:
        try:
            given = with_convention(step.class_name, step_class, given,
                                    ConventionContext(version, configs_dir, sql_root))
        except ValueError as exc:
            return step.params, [ConfigError(path, str(exc), field=field)]
    try:
        params = step_class.Params.model_validate(given, context={"configs_dir": configs_dir})
        return params.model_dump(mode="json"), []
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = f"unknown field for {step.class_name}" if err["type"] == "extra_forbidden" else err["msg"]
            where = field + (f".{loc}" if loc else "")
            errors.append(ConfigError(path, msg.removeprefix("Value error, "), field=where))
        return step.params, errors


def _chain(configs: Sequence[LoadedConfig], src: Version, tgt: Version) -> list[LoadedConfig]:
    available = sorted(configs, key=lambda c: c.version.code)
    names = ", ".join(str(c.version) for c in available) or "none"
    chain = [c for c in available if src < c.version <= tgt]
    if not chain or chain[-1].version != tgt:
        raise PlanError(f"no config covers {src} → {tgt}: there is no config for {tgt} "
                        f"(configs exist for: {names})")
    codes = {c.version.code for c in available}
    for loaded in chain:
        problem = base_problem(loaded, src, codes, f"{src} → {tgt}")
        if problem:
            raise PlanError(f"{loaded.path}: {problem}")
    in_effect = src
    for loaded in chain:
        problem = dependency_problem(loaded, in_effect)
        if problem:
            raise PlanError(f"no config covers {src} → {tgt}: {loaded.path}: {problem} "
                            f"(configs exist for: {names})")
        in_effect = loaded.version
    return chain


def base_problem(loaded: LoadedConfig, source: Version, codes: set[int], crossing: str) -> str:
    """Why a range from ``source`` (``crossing`` names it) through patch ``loaded`` would skip its base's
    upgrade: the range crosses the base and ``codes`` (the folder's configs) hold none for it; "" otherwise."""
    base = loaded.config.base
    if base is None or not source < base or base.code in codes:
        return ""
    return (f"patch {loaded.version} is applied on its base {base}, which {crossing} crosses, but the folder has no "
            f"config for {base}: {base}'s upgrade would be skipped without a word. Add {base}'s config "
            f"({base.code}.json) to the folder, or, if {base} has no upgrade work, an empty one: "
            f'{{"version": "{base.code}", "version_type": "baseline"}}')


def dependency_problem(loaded: LoadedConfig, in_effect: Version) -> str:
    """Why ``loaded`` cannot follow ``in_effect`` (its ``dependencies``), or "" when it can."""
    deps = loaded.config.dependencies
    v = loaded.version
    if deps.min_source_version is not None and in_effect < deps.min_source_version:
        return f"{v} needs source ≥ {deps.min_source_version}, but {in_effect} is in effect at that point"
    if deps.max_source_version is not None and in_effect > deps.max_source_version:
        return f"{v} needs source ≤ {deps.max_source_version}, but {in_effect} is in effect at that point"
    if deps.required_base_version is not None and in_effect.baseline != deps.required_base_version:
        return (f"{v} requires base version {deps.required_base_version}, "
                f"but {in_effect} (base {in_effect.baseline}) is in effect at that point")
    return ""


@dataclass(frozen=True)
class PlanProblem:
    """A reason the configs cannot be planned: ``plan`` raises it, ``validate`` collects it for every range."""

    file: str
    field: str | None
    reason: str

    def __str__(self) -> str:
        return str(self.as_config_error())

    def as_config_error(self) -> ConfigError:
        return ConfigError(self.file, self.reason, field=self.field)


def range_problems(configs: Sequence[LoadedConfig], sites: Iterable[str] = (),
                   sources: Mapping[Version, str] | None = None) -> list[PlanProblem]:
    """What :func:`build_plan` would refuse for some range at some site, for ``validate``.

    A config is checked against the one before it (every longer range passes there); a patch whose
    base has no config, against the configs below its base (a range from them crosses it); the steps of
    the range from each config to the newest are ordered at each site named, and at any other site
    (common steps only). ``sources`` are versions a site upgrades from (``--from``, a site's recorded
    version; the value says where it came from): the ranges from them are checked too. Each problem
    is reported once.
    """
    available = sorted(configs, key=lambda c: c.version.code)
    codes = {c.version.code for c in available}
    found: dict[str, PlanProblem] = {}
    for loaded in available:
        base = loaded.config.base
        below = next((c for c in available if base is not None and c.version < base), None)
        reason = below and base_problem(loaded, below.version, codes, f"a range from {below.version} ({below.path})")
        if reason:
            found.setdefault(f"base of {loaded.path}", PlanProblem(loaded.path, None, reason))
    for source, label in (sources or {}).items():
        after = [c for c in available if c.version > source]
        reason = dependency_problem(after[0], source) if after else ""
        if reason:
            found.setdefault(reason, PlanProblem(after[0].path, "dependencies", f"{reason} ({label})"))
        for loaded in after:
            reason = base_problem(loaded, source, codes, f"a range from {source} ({label})")
            if reason:
                found.setdefault(f"base of {loaded.path}", PlanProblem(loaded.path, None, reason))
    for before, loaded in zip(available, available[1:], strict=False):
        reason = dependency_problem(loaded, before.version)
        base = loaded.config.dependencies.required_base_version
        if reason and base is not None and base.code not in codes:
            reason += f"; there is no config for its base {base} in the folder"
        if reason:
            found.setdefault(reason, PlanProblem(loaded.path, "dependencies", reason))
    for site in ["", *sorted(set(sites))]:  # "": a site no site-specific step names
        for start in range(len(available)):
            for problem in order_steps(select_steps(available[start:], site))[1]:
                found.setdefault(str(problem), problem)
    return list(found.values())


class _Candidate:
    __slots__ = ("loaded", "cutpoint", "step", "position", "key", "rank", "depends_on")

    def __init__(self, loaded: LoadedConfig, cutpoint: Cutpoint, step: StepConfig, position: int) -> None:
        self.loaded = loaded
        self.cutpoint = cutpoint
        self.step = step
        self.position = position
        self.key = f"{loaded.version.code}:{step.id}"
        declared = step.order if step.order is not None else step.priority
        self.rank = (cutpoint.position, loaded.version.code, declared if declared is not None else position, position)
        self.depends_on: list[str] = []

    @property
    def field(self) -> str:
        return f"upgrade_steps.{self.cutpoint.value}[{self.position}]"


def select_steps(chain: Sequence[LoadedConfig], site: str) -> list[_Candidate]:
    """Every step of the chain that runs at ``site`` (site-specific ones only where ``site_ids`` holds it)."""
    out: list[_Candidate] = []
    for loaded in chain:
        for cutpoint in Cutpoint:
            for position, step in enumerate(loaded.config.upgrade_steps.get(cutpoint, [])):
                if not step.applies_to_all_sites and site not in step.site_ids:
                    continue
                out.append(_Candidate(loaded, cutpoint, step, position))
    return out


def order_steps(candidates: list[_Candidate]) -> tuple[list[_Candidate], list[PlanProblem]]:
    """Stable topological order: by rank, moving a step after the steps it depends on.

    Every bad dependency is returned as a problem (and its edge left out), so that ``validate`` can
    report them all; ``plan`` refuses when there is any.
    """
    by_key = {c.key: c for c in candidates}
    all_ids: dict[str, list[_Candidate]] = {}
    for c in candidates:
        all_ids.setdefault(c.step.id, []).append(c)
    declared_ids = {s.id for c in candidates for steps in c.loaded.config.upgrade_steps.values() for s in steps}
    edges: dict[str, set[str]] = {c.key: set() for c in candidates}
    problems: list[PlanProblem] = []
    for c in candidates:
        for dep in c.step.dependencies:
            target = _dependency_target(c, dep, all_ids)
            reason = _edge_problem(c, dep, target, all_ids, declared_ids)
            if reason:
                problems.append(PlanProblem(c.loaded.path, c.field, reason))
            elif target is not None:
                c.depends_on.append(target.key)
                edges[c.key].add(target.key)
    ordered = _topological(by_key, edges)
    if len(ordered) != len(candidates):
        done = {c.key for c in ordered}
        stuck = sorted((by_key[k] for k in edges if k not in done), key=lambda c: c.rank)
        problems.append(PlanProblem(stuck[0].loaded.path, None, "step dependencies form a cycle among: "
                                    + ", ".join(sorted(c.key for c in stuck))))
    return ordered, problems


def _edge_problem(c: _Candidate, dep: str, target: _Candidate | None, all_ids: dict[str, list[_Candidate]],
                  declared_ids: set[str]) -> str:
    """Why ``c`` cannot depend on ``dep`` (resolved to ``target``); "" when it can or the step is not here."""
    if target is None:
        if dep in all_ids:
            return f"step {c.step.id!r} depends on {dep!r}, which only a later version defines"
        if dep in declared_ids:
            return ""  # a site-specific step that does not run at this site
        return f"step {c.step.id!r} depends on unknown step id {dep!r}"
    if target.cutpoint.position > c.cutpoint.position:
        return (f"step {c.step.id!r} ({c.cutpoint.value}) depends on {dep!r}, which runs later "
                f"({target.cutpoint.value})")
    if target is c:
        return f"step {c.step.id!r} depends on itself"
    return ""


def _topological(by_key: dict[str, _Candidate], edges: dict[str, set[str]]) -> list[_Candidate]:
    """Kahn's algorithm with the rank as tie-break; steps on a cycle are left out."""
    indegree = {k: len(v) for k, v in edges.items()}
    dependents: dict[str, list[str]] = {k: [] for k in edges}
    for k, deps in edges.items():
        for d in deps:
            dependents[d].append(k)
    heap = [(by_key[k].rank, k) for k, n in indegree.items() if n == 0]
    heapq.heapify(heap)
    ordered: list[_Candidate] = []
    while heap:
        _, key = heapq.heappop(heap)
        ordered.append(by_key[key])
        for nxt in dependents[key]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (by_key[nxt].rank, nxt))
    return ordered


def _dependency_target(c: _Candidate, dep: str, all_ids: dict[str, list[_Candidate]]) -> _Candidate | None:
    """A dependency names a step id: the same version's step, else the latest earlier one."""
    options = all_ids.get(dep, [])
    same = [o for o in options if o.loaded is c.loaded]
    if same:
        return same[0]
    earlier = [o for o in options if o.loaded.version < c.loaded.version]
    return max(earlier, key=lambda o: o.loaded.version.code) if earlier else None


def plan_for(cutpoint: Cutpoint, source: str, target: str, site: str, settings: Settings) -> UpgradePlan:
    """The plan of one cutpoint from the configs on disk; refuses one that names an unresolved step class."""
    from tasks.planning.config_loader import load_configs

    plan = build_plan(load_configs(settings.configs), source, target, site, cutpoint,
                      allowed_step_modules=settings.allowed_step_modules, sql_root=settings.sql_root)
    plan.require_resolved()
    return plan
