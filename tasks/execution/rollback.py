"""A rollback: one site's upgrade taken back to its source version, found by site, run through the step loop.

An operator's decision, never automatic (``ft-upgrade rollback --site S`` or the site's rollback deployment).
Under the site's lock it finds the upgrade (the one in progress, or the one named, or the one of an execution
id), the verified backup of that upgrade's pre_upgrade_process, and the configs' ``rollback_steps`` of the
version range, newest version first (undo runs backwards). Anything missing refuses before anything runs
(:class:`~tasks.core.errors.Refused`, exit 2): no backup, a step marked ``rollback_supported: false`` (unless
forced with a reason). The rollback is an execution of its own (``step_type`` ``rollback``): its steps are
recorded, a failure leaves a breakpoint, and the next rollback of the site resumes it (steps done are not run
again; the restore resumes from its journal). Until it finishes the site is ROLLING_BACK and no cutpoint may
start. When it finishes the site's memory follows (:meth:`SiteStates.rolled_back`): versions back to the
source, every execution of the upgrade closed, its cutpoint states and applied scripts retired.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from blocks.site_profile import load_site_profile
from tasks.backup.catalog import StoredBackup, backups_of_execution
from tasks.backup.restore import verify_files
from tasks.core.cutpoints import Cutpoint
from tasks.core.errors import BackupError, InputError, Refused, UpgradeFailed
from tasks.core.settings import Settings, get_settings
from tasks.core.statuses import RESUMABLE, ExecutionStatus, SiteEvent, UpgradeStatus
from tasks.core.versions import Version
from tasks.execution.loop import ExecutionSteps, Launcher, Logger, RunScope, StepLoop, in_process
from tasks.execution.retire import Retired, retire_records
from tasks.execution.service import ExecutionService
from tasks.planning.config_loader import LoadedConfig, load_configs
from tasks.planning.plan import PlannedStep, check_step_params
from tasks.site.resources import SiteOverrides, open_site_resources
from tasks.steps.registry import resolve_step_class
from tasks.store.breakpoints import resolve_as_decided
from tasks.store.records import Execution
from tasks.store.site_state import ROLLBACK

UPGRADE_ARROWS = ("→", "->")


@dataclass(frozen=True)
class RollbackRequest:
    """What an operator asks: the site, and optionally which upgrade (``source→target``) or an execution of it."""

    site_id: str
    upgrade: str = ""
    execution_id: str = ""
    force: bool = False
    reason: str = ""
    by: str = ""
    flow_run_id: str | None = None


@dataclass
class RollbackOutcome:
    """A finished rollback: its execution, the upgrade, the backup restored, each step, what was retired."""

    execution_id: str
    site_id: str
    source_version: str
    target_version: str
    backup_id: str
    backup_execution_id: str
    resumed: bool
    steps: list[dict[str, Any]] = field(default_factory=list)
    retired: dict[str, Any] = field(default_factory=dict)
    forced: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_upgrade(text: str) -> tuple[str, str]:
    """``3.17.0→3.17.5`` (or ``3.17.0->3.17.5``) as normalised versions."""
    for arrow in UPGRADE_ARROWS:
        if arrow in text:
            source, target = (part.strip() for part in text.split(arrow, 1))
            return str(Version.parse(source)), str(Version.parse(target))
    raise InputError(f"--upgrade {text!r}: give it as SOURCE→TARGET (or SOURCE->TARGET), e.g. 3.17.0->3.17.5")


def run_rollback(request: RollbackRequest, *, settings: Settings | None = None,
                 overrides: SiteOverrides | None = None, logger: Logger | None = None,
                 launch: Launcher = in_process) -> RollbackOutcome:
    """Roll back the site's upgrade; raises :class:`Refused` before anything runs, :class:`UpgradeFailed` after a
    step failed (a breakpoint is left: the next rollback finishes it)."""
    overrides = overrides or SiteOverrides()
    settings = settings or get_settings()
    logger = logger or logging.getLogger("ft_upgrade.rollback")
    metadata_url = overrides.databases.get("metadata")
    if request.execution_id:
        with ExecutionService.locate(request.execution_id, request.site_id or None,
                                     metadata_url=metadata_url) as service:
            site_id = service.execution(request.execution_id).site_id
    else:
        site_id = request.site_id
    if not site_id:
        raise InputError("give the site (--site S) or an execution id of the upgrade to roll back")
    with ExecutionService.open(site_id, metadata_url=metadata_url) as service:
        holder = f"rollback at {site_id} (flow run {request.flow_run_id})"
        with service.hold(site_id, holder, settings=settings, on_lost=logger.error):
            source, target = find_upgrade(service, request, site_id)
            with open_site_resources(site_id, settings=settings, overrides=overrides,
                                     profile=load_site_profile(site_id), store=service.store) as resources:
                run = _Rollback(service, request, site_id, source, target, settings, logger)
                return run.run(resources, launch)


def find_upgrade(service: ExecutionService, request: RollbackRequest, site_id: str) -> tuple[str, str]:
    """The upgrade to roll back: of the execution id, the one named, else the one in progress (or rolling back)."""
    site = service.site(site_id)
    if request.execution_id:
        e = service.execution(request.execution_id)
        if e.site_id != site_id:
            raise InputError(f"execution {e.execution_id} belongs to site {e.site_id}, not {site_id}")
        wanted: tuple[str, str] | None = (e.source_version, e.target_version)
    else:
        wanted = parse_upgrade(request.upgrade) if request.upgrade else None
    status = site.upgrade_status if site else None
    current = (site.upgrade_source, site.upgrade_target) if site else (None, None)
    unfinished = status in (UpgradeStatus.IN_PROGRESS, UpgradeStatus.ROLLING_BACK)
    if wanted is None:
        if site is None or not unfinished or not current[0] or not current[1]:
            last = f" (its last upgrade {current[0]} → {current[1]} is {(status or '').lower()})" if status else ""
            raise Refused(f"rollback refused at site {site_id}: no upgrade in progress{last}; to roll back a completed "
                          f"upgrade name it: --upgrade SOURCE->TARGET; nothing was executed",
                          site_id=site_id, cutpoint=ROLLBACK)
        return str(current[0]), str(current[1])
    if unfinished and current != wanted:
        raise Refused(f"rollback refused at site {site_id}: it is in the upgrade {current[0]} → {current[1]} "
                      f"({(status or '').lower()}), not {wanted[0]} → {wanted[1]}; nothing was executed",
                      site_id=site_id, cutpoint=ROLLBACK)
    if status == UpgradeStatus.ROLLED_BACK and current == wanted:
        raise Refused(f"rollback refused at site {site_id}: the upgrade {wanted[0]} → {wanted[1]} was already rolled "
                      "back; nothing was executed", site_id=site_id, cutpoint=ROLLBACK)
    return wanted


class _Rollback:
    """One rollback while this process holds the site's lock."""

    def __init__(self, service: ExecutionService, request: RollbackRequest, site_id: str, source: str, target: str,
                 settings: Settings, logger: Logger) -> None:
        self.service, self.request, self.site_id = service, request, site_id
        self.source, self.target, self.settings, self.logger = source, target, settings, logger

    def refuse(self, why: str) -> Refused:
        return Refused(f"rollback of {self.source} → {self.target} refused at site {self.site_id}: {why}; nothing "
                       "was executed", site_id=self.site_id, cutpoint=ROLLBACK)

    def run(self, resources: Any, launch: Launcher) -> RollbackOutcome:
        service, r = self.service, self.request
        store = service.store
        earlier = store.latest_execution(site_id=self.site_id, cutpoint=ROLLBACK, source_version=self.source,
                                         target_version=self.target)
        resumed = earlier is not None and earlier.status in RESUMABLE
        pre, backup = self.backup(Path(resources.path("backup_dir")))
        steps, forced = self.plan()
        if resumed:
            assert earlier is not None
            execution_id = earlier.execution_id
            store.reopen_execution(execution_id, flow_run_id=r.flow_run_id, total_steps=len(steps))
        else:
            execution_id = store.create_execution(
                source_version=self.source, target_version=self.target, site_id=self.site_id, cutpoint=ROLLBACK,
                environment={"rollback_execution_id": pre}, total_steps=len(steps), flow_run_id=r.flow_run_id,
                plan_fingerprint=backup.manifest.backup_id[:32], requested_by=r.by,
                waivers=None if not forced else _forced_json(forced, r))
        detail = {"reason": r.reason or "-", "backup_id": backup.manifest.backup_id, "backup_execution_id": pre,
                  "resumed": resumed, **({"forced": forced} if forced else {})}
        service.sites.rollback_started(self.site_id, source=self.source, target=self.target,
                                       execution_id=execution_id, flow_run_id=r.flow_run_id, actor=r.by,
                                       detail=detail)
        self.logger.warning("rollback %s of %s → %s at site %s (%s), backup %s of %s, asked by %s: %s", execution_id,
                            self.source, self.target, self.site_id, "resumed" if resumed else "new",
                            backup.manifest.backup_id, pre, r.by, r.reason or "-")
        scope = RunScope(execution_id=execution_id, cutpoint=ROLLBACK, source_version=self.source,
                         target_version=self.target, site_id=self.site_id,
                         environment={"rollback_execution_id": pre})
        loop = StepLoop(scope, ExecutionSteps(service, execution_id), resources,
                        allowed_step_modules=self.settings.allowed_step_modules, logger=self.logger)
        outcome = loop.run(steps, launch)
        runs = {s.key: store.step_run(execution_id, s.key) for s in steps}
        results = [{"step_id": s.step_id, "version": s.version, "status": str(outcome.statuses.get(s.key, "")),
                    "summary": run.summary if (run := runs[s.key]) else "", "markdown": run.markdown if run else ""}
                   for s in steps]  # the restore's markdown holds its comparison with the backup's catalog
        if outcome.failed is not None:
            error = f"rollback step {outcome.failed.step_id} ({outcome.failed.version}) failed: {outcome.failure}"
            service.stop_at_step(execution_id, outcome.failed.step_id, outcome.failed.key, error,
                                 f"fix the cause, then `ft-upgrade rollback --site {self.site_id}` finishes it")
            store.finish_execution(execution_id, ExecutionStatus.FAILED, error)
            service.sites.record(self.site_id, SiteEvent.ROLLBACK_FAILED, cutpoint=ROLLBACK, source=self.source,
                                 target=self.target, execution_id=execution_id, flow_run_id=r.flow_run_id,
                                 actor=r.by, detail={**detail, "error": error[:500]})
            raise UpgradeFailed(error) from outcome.error
        on_servers = self.retire(resources, backup, execution_id)
        resolve_as_decided(store.engine, execution_id, why="the rollback completed")
        retired = service.sites.rolled_back(self.site_id, source=self.source, target=self.target,
                                            execution_id=execution_id, flow_run_id=r.flow_run_id, actor=r.by,
                                            detail={**detail, "records_retired": on_servers,
                                                    "steps": [f"{x['step_id']} {x['status']}" for x in results]})
        retired["records_retired"] = on_servers
        return RollbackOutcome(execution_id=execution_id, site_id=self.site_id, source_version=self.source,
                               target_version=self.target, backup_id=backup.manifest.backup_id,
                               backup_execution_id=pre, resumed=resumed, steps=results, retired=retired,
                               forced=forced)

    def retire(self, resources: Any, backup: StoredBackup, execution_id: str) -> dict[str, int]:
        """The upgrade's package-load records and migration checkpoints on the backed-up servers, retired."""
        executions = [e.execution_id for e in self.service.store.upgrade_executions(self.site_id, self.source,
                                                                                     self.target)
                      if e.cutpoint != ROLLBACK]
        retired = Retired()
        for database in sorted({t.database for t in backup.manifest.tables}):
            engine = resources.engine(database)
            retire_records(engine, rollback_id=execution_id, executions=executions,
                           schemas=[str(engine.url.database)], since=backup.manifest.created_at, into=retired)
        return retired.to_json()

    def backup(self, root: Path) -> tuple[str, StoredBackup]:
        """The verified backup of this attempt's pre_upgrade_process (its newest successful execution; one closed by
        an earlier rollback is not this attempt's)."""
        executions = [e for e in self.service.store.upgrade_executions(self.site_id, self.source, self.target)
                      if e.cutpoint == Cutpoint.PRE_UPGRADE_PROCESS.value and e.status == ExecutionStatus.SUCCESS]
        for e in sorted(executions, key=_started, reverse=True):
            found = backups_of_execution(root, self.site_id, e.execution_id)[:1]
            if not found:
                continue
            try:
                verify_files(found[0], found[0].manifest.tables, found[0].manifest.files)
            except BackupError as exc:
                raise self.refuse(f"the backup of pre_upgrade_process {e.execution_id} does not verify: {exc}") \
                    from None
            return e.execution_id, found[0]
        tried = ", ".join(e.execution_id for e in executions) or "no completed pre_upgrade_process execution"
        raise self.refuse(f"no verified backup of this upgrade's pre_upgrade_process under {root} ({tried}): "
                          "without it the databases cannot be put back")

    def plan(self) -> tuple[list[PlannedStep], list[str]]:
        r = self.request
        return rollback_plan(self.settings, self.site_id, self.source, self.target, force=r.force, reason=r.reason,
                             by=r.by, logger=self.logger)


def rollback_plan(settings: Settings, site_id: str, source_version: str, target_version: str, *,
                  force: bool = False, reason: str = "", by: str = "",
                  logger: Logger | None = None) -> tuple[list[PlannedStep], list[str]]:
    """The rollback steps of the range, newest version first (later cutpoints first within a version), their
    classes and fields checked; and the steps forced past ``rollback_supported: false``. Raises
    :class:`Refused` naming each such step unless ``force`` with a ``reason``, or when a step does not check."""
    source, target = Version.parse(source_version), Version.parse(target_version)

    def refuse(why: str) -> Refused:
        return Refused(f"rollback of {source} → {target} refused at site {site_id}: {why}; nothing was executed",
                       site_id=site_id, cutpoint=ROLLBACK)

    def applies(step: Any) -> bool:
        return bool(step.applies_to_all_sites or site_id in step.site_ids)

    chain = sorted((c for c in load_configs(settings.configs) if source < c.version <= target),
                   key=lambda c: c.version.code, reverse=True)
    unsupported = [f"{c.path}: step {s.id!r}" for c in chain for group in c.config.upgrade_steps.values()
                   for s in group if "rollback_supported" in s.model_fields_set and not s.rollback_supported
                   and applies(s)]
    if unsupported and not (force and reason.strip()):
        raise refuse("configs in the range say rollback_supported: false:\n" +
                     "\n".join(f"- {u}" for u in unsupported) +
                     "\nroll back anyway only with --force --reason TEXT (recorded)")
    if unsupported and logger is not None:
        logger.warning("rollback forced past rollback_supported: false by %s (%s): %s", by, reason,
                       "; ".join(unsupported))
    order = {c.value: c.position for c in Cutpoint}
    planned: list[PlannedStep] = []
    for loaded in chain:
        groups = sorted(loaded.config.rollback_steps.items(), key=lambda kv: order.get(kv[0], -1), reverse=True)
        for name, group in groups:
            for position, step in enumerate(group):
                if not applies(step):
                    continue
                resolution = resolve_step_class(step.class_name, settings.allowed_step_modules)
                if resolution.step_class is None:
                    raise refuse(f"{loaded.path}: rollback step {step.id!r}: {resolution.reason}")
                params, problems = check_step_params(loaded.path, f"rollback_steps.{name}[{position}]", step,
                                                     resolution.step_class, loaded.folder)
                if problems:
                    raise refuse("\n".join(str(p) for p in problems))
                planned.append(_planned(loaded, name, step, params, resolution.qualified_name, planned))
    if not planned:
        raise refuse(f"no rollback_steps in the configs of {source} → {target}")
    return planned, unsupported if force else []


def _planned(loaded: LoadedConfig, group: str, step: Any, params: dict[str, Any], implementation: str | None,
             planned: list[PlannedStep]) -> PlannedStep:
    key = f"{loaded.version.code}:{step.id}"
    cutpoint = Cutpoint(group) if group in {c.value for c in Cutpoint} else Cutpoint.PRE_UPGRADE_PROCESS
    return PlannedStep(
        key=key if all(p.key != key for p in planned) else f"{key}#{len(planned)}",  # one record per step
        cutpoint=cutpoint, version=str(loaded.version), version_code=loaded.version.code,
        step_id=step.id, name=step.name or step.id, description=step.description, class_name=step.class_name,
        implementation=implementation, params=params, timeout=step.timeout,
        retry_count=step.retry_count, retry_delay_seconds=step.retry_delay_seconds, required=True,
        estimated_duration=step.estimated_duration, config_file=loaded.path,
        config_fingerprint=loaded.config.fingerprint())


def _started(e: Execution) -> datetime:
    return e.start_time or e.end_time or datetime.min


def _forced_json(forced: list[str], r: RollbackRequest) -> str:
    return json.dumps([{"precondition": "rollback_supported", "missing": "; ".join(forced), "reason": r.reason,
                        "by": r.by}], ensure_ascii=False)

