"""ResourcePackageImportStep: import the target version's resource packages (images, templates, data).

All packages are validated and staged first; only when every one passed are the folders swapped in
(atomically) and the data-file table loads committed. A rejected package changes nothing: no folder
is swapped, no table is touched. I/O errors are retried (3 times by default); then the step fails
and the run's failure notification tells the administrators.

A run killed part-way is finished by the next one and nothing done is repeated: the package marker
travels with the swapped folder saying ``tables pending`` until every load has committed, and each
load commits with its record (see :mod:`tasks.packages.install` and :mod:`tasks.packages.static_data`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from tasks.core.errors import PackageRejected, StepFailed
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.core.versions import Version
from tasks.packages.entries import DEFAULT_EXTENSIONS, MiB, PackageLimits, path_problem
from tasks.packages.install import (
    COMPLETE,
    StagedPackage,
    discard,
    file_sha256,
    finish,
    installed_marker,
    marker_state,
    recover,
    stage,
    swap,
    unswap,
)
from tasks.packages.static_data import (
    IDENTIFIER,
    LOAD_TABLE,
    LoadRecord,
    current_schema,
    ensure_load_table,
    is_transactional,
    load_rows,
    read_rows,
    record_load,
    recorded_load,
)
from tasks.steps.base import UpgradeStep

if TYPE_CHECKING:  # the runtime is imported by run(): `validate` and `plan` need only the parameters
    from sqlalchemy import Connection, RootTransaction

_NAMED_PATH = r"^[a-z][a-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("target_version", "version_code")


def _relative(value: str, what: str, *, empty_ok: bool = False) -> str:
    if empty_ok and value == "":
        return value
    problem = path_problem(value)
    if problem:
        raise ValueError(f"{what}: {problem}")
    return value


class TableLoad(StepParams):
    """A data file inside the package loaded into a table when the package is imported."""

    file: str = Field(description="Path inside the package (.csv with header, or .json list of objects).")
    database: str = Field(description="Logical database.")
    table: str = Field(pattern=IDENTIFIER.pattern)
    mode: Literal["replace", "append"] = Field(default="replace", description=(
        "replace: the table's rows become the file's (again on each new install of the package); append: the "
        "rows are added exactly once per package version (the table must be transactional, e.g. InnoDB)."))

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        if not value.lower().endswith((".csv", ".json")):
            raise ValueError("only .csv and .json files can be loaded into a table")
        return _relative(value, "file")


class PackageSpec(StepParams):
    """One package file and where its content goes."""

    file: str = Field(description="File name in source_dir; {target_version} and {version_code} are replaced.")
    source_dir: str = Field(default="package_dir", pattern=_NAMED_PATH, description="Named folder of packages.")
    target_dir: str = Field(pattern=_NAMED_PATH, description="Named folder the content goes into.")
    subdir: str = Field(default="", description="Sub-folder of target_dir that the package replaces.")
    keep_existing: bool = Field(default=False, description="Keep files of the current folder the package lacks.")
    force: bool = Field(default=False, description="Import even if this exact package is already installed.")
    tables: list[TableLoad] = Field(default_factory=list)
    allow_active_content: list[str] = Field(default_factory=list, description=(
        "Entry paths (globs, e.g. 'templates/*.html'; '*' for all) that may hold active content: .html/.htm/"
        ".xhtml/.shtml/.js/.mjs files and SVGs with <script>, on* event attributes, javascript: URLs or "
        "<foreignObject>. Refused otherwise: the FT web app may serve the folder. Only for trusted packages."))

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        unknown = [p for p in _PLACEHOLDER.findall(value) if p not in PLACEHOLDERS]
        if unknown:
            raise ValueError(f"unknown placeholder(s) {unknown}; allowed: {list(PLACEHOLDERS)}")
        return _relative(value, "file")

    @field_validator("subdir")
    @classmethod
    def _subdir(cls, value: str) -> str:
        return _relative(value, "subdir", empty_ok=True)


class Limits(StepParams):
    """Safety limits; the defaults suit images, templates and static data."""

    max_file_mb: float = Field(default=256, gt=0)
    max_total_mb: float = Field(default=2048, gt=0)
    max_entries: int = Field(default=20_000, gt=0)
    max_ratio: float = Field(default=200, gt=1, description="Largest uncompressed/compressed size ratio.")
    allowed_extensions: list[str] | None = Field(default=None, description="Replaces the default allow-list.")
    extra_extensions: list[str] = Field(default_factory=list, description="Added to the allow-list.")

    def to_limits(self) -> PackageLimits:
        base = set(self.allowed_extensions) if self.allowed_extensions is not None else set(DEFAULT_EXTENSIONS)
        allowed = frozenset(e.lower().lstrip(".") for e in base | set(self.extra_extensions))
        return PackageLimits(max_entry_bytes=int(self.max_file_mb * MiB), max_total_bytes=int(self.max_total_mb * MiB),
                             max_entries=self.max_entries, max_ratio=self.max_ratio, allowed_extensions=allowed)


class ResourcePackageParams(StepParams):
    packages: list[PackageSpec] = Field(min_length=1)
    limits: Limits = Field(default_factory=Limits)
    io_retries: int = Field(default=3, ge=0, le=10, description="Retries on I/O errors, per package.")
    retry_wait_seconds: float = Field(default=1.0, ge=0, le=60)


@dataclass
class _Install:
    """One package this run installs: freshly staged, or finishing an install a killed run left pending."""

    spec: PackageSpec
    target: Path
    archive: str
    name: str  # the package in load records: its manifest name, else the archive's file name
    version: str
    install_id: str
    staged: StagedPackage | None  # None: an earlier run swapped the files in already

    def data_root(self) -> Path:
        return self.staged.staging if self.staged and not self.staged.swapped else self.target


@dataclass
class _Session:
    """One logical database's connection and the transaction all its loads (and their records) share."""

    connection: Connection
    transaction: RootTransaction
    record_schema: str
    table_schema: str

    def commit(self) -> None:
        self.transaction.commit()


#: 资源导入报告's words; ``result`` values stay English in the step's JSON.
TEXT: dict[str, dict[str, Any]] = {
    "zh": {
        "header": "| 资源包 | 目标位置 | 结果 | 文件数 | 字节数 | 表行数 |",
        "results": {"imported": "已导入", "already installed": "已安装（无需导入）", "resumed": "已续完中断的安装",
                    "already loaded": "已加载（无需导入）", "staged": "已暂存", "rejected": "已拒绝",
                    "not imported (rolled back)": "未导入（已回滚）", "incomplete (run again)": "未完成（请再次执行）"},
        "failed": "**失败：** {message}",
        "io": "重试 {retries} 次后仍有 I/O 错误：{error}",
        "part_way": "{message} —— 已有 {committed} 个数据库提交了导入；已替换的资源包仍标记为 'tables pending'："
                    "再次执行本步骤即可完成（已完成的部分不会重复）",
        "summary": "从 {packages} 个资源包导入 {imported} 个文件，{already} 个已安装",
        "summary_resumed": "，续完 {resumed} 个中断的安装",
    },
    "en": {
        "header": "| package | target | result | files | bytes | table rows |",
        "results": {},
        "failed": "**Failed:** {message}",
        "io": "I/O error after {retries} retries: {error}",
        "part_way": "{message} — after {committed} database(s) committed their loads; the swapped packages stay "
                    "marked 'tables pending': run the step again to finish (done parts are not repeated)",
        "summary": "{imported} files imported from {packages} package(s), {already} already installed",
        "summary_resumed": ", {resumed} interrupted install(s) finished",
    },
}


class ResourcePackageImportStep(UpgradeStep):
    """Imports resource packages for the target version: validate all, stage all, swap all, commit loads."""

    Params = ResourcePackageParams
    description = "Resource packages: safe extraction, SHA-256 manifest, atomic swap, static data load"
    params: ResourcePackageParams

    def run(self) -> StepResult:
        """Stage every package, run every table load, swap, commit, then mark each package complete.

        A kill anywhere leaves what the next run finishes: staged folders are cleared by ``recover``,
        a swapped package's marker says ``tables pending``, and each load commits with its record.
        """
        limits = self.params.limits.to_limits()
        rows: list[dict[str, Any]] = []
        installs: list[_Install] = []
        sessions: dict[str, _Session] = {}
        committed = 0
        try:
            for spec in self.params.packages:
                install = self._prepare(spec, limits, rows)
                if install is not None:
                    installs.append(install)
            for install in installs:
                self._load_tables(install, sessions, rows)
            for install in installs:
                if install.staged is not None:
                    swap(install.staged)
            for session in sessions.values():
                session.commit()
                committed += 1
            for install in installs:
                finish(install.target)
        except Exception as exc:
            self._undo(installs, sessions, committed)
            raise self._failure(exc, rows, committed) from exc
        finally:
            for install in installs:
                if install.staged is not None:
                    discard(install.staged)
            for session in sessions.values():
                session.connection.close()
        for row in rows:
            if row["result"] == "staged":
                row["result"] = "imported"
        return self._result(rows, StepStatus.SUCCESS)

    def _archive(self, spec: PackageSpec) -> Path:
        target = self.context.target_version
        name = spec.file.replace("{target_version}", target).replace("{version_code}", str(Version.parse(target).code))
        return self.context.resources.path(spec.source_dir) / name

    def _target(self, spec: PackageSpec) -> Path:
        base = self.context.resources.path(spec.target_dir)
        if not spec.subdir:
            return base
        (base / spec.subdir).parent.mkdir(parents=True, exist_ok=True)  # staging is created beside the target
        return base / spec.subdir

    def _prepare(self, spec: PackageSpec, limits: PackageLimits, rows: list[dict[str, Any]]) -> _Install | None:
        """Clear what a killed run left, then stage the package, or resume it, or None: installed already."""
        archive, target = self._archive(spec), self._target(spec)
        for note in recover(target):
            self.context.logger.warning("package %s: %s", archive.name, note)
        limits = replace(limits, active_allowed=tuple(spec.allow_active_content))
        marker, package, attempts = self._stage(spec, archive, target, limits)
        if package is not None:
            rows.append(self._row(spec, archive.name, "staged", files=package.files, size=package.bytes,
                                  version=package.manifest.version, attempts=attempts, kept=package.kept_files))
            return _Install(spec, target, archive.name, package.manifest.name or archive.name,
                            package.manifest.version, package.install_id, package)
        version = str(marker.get("version", ""))
        if marker_state(marker) == COMPLETE:
            rows.append(self._row(spec, archive.name, "already installed", files=marker.get("files", 0),
                                  version=version))
            return None
        self.context.logger.warning("package %s: files were swapped in by an interrupted run; finishing its table "
                                    "loads", archive.name)
        rows.append(self._row(spec, archive.name, "resumed", files=marker.get("files", 0), version=version))
        return _Install(spec, target, archive.name, str(marker.get("name") or archive.name), version,
                        str(marker["install_id"]), None)

    def _stage(self, spec: PackageSpec, archive: Path, target: Path,
               limits: PackageLimits) -> tuple[dict[str, Any], StagedPackage | None, int]:
        """Stage with retries on I/O errors only (a rejected package is never retried).

        Returns the live marker, the staged package (None: this archive is in place, complete or
        pending) and the attempts. ``force`` restages a complete install, never a pending one.
        """
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

        retrying = Retrying(stop=stop_after_attempt(self.params.io_retries + 1),
                            wait=wait_fixed(self.params.retry_wait_seconds),
                            retry=retry_if_exception_type(OSError), reraise=True,
                            before_sleep=lambda s: self.context.logger.warning(
                                "package %s: I/O error (attempt %d), retrying: %s", archive.name, s.attempt_number,
                                s.outcome.exception() if s.outcome else "?"))
        for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                marker = installed_marker(target) or {}
                if marker.get("archive_sha256") == file_sha256(archive) and (
                        not spec.force or marker_state(marker) != COMPLETE):
                    return marker, None, number
                return marker, stage(archive, target=target, target_version=self.context.target_version,
                                     limits=limits, keep_existing=spec.keep_existing), number
        raise AssertionError("unreachable")  # pragma: no cover

    def _session(self, sessions: dict[str, _Session], database: str) -> _Session:
        """The database's shared load transaction, opened after the record table exists (DDL commits)."""
        if database not in sessions:
            connection = self.context.resources.engine(database).connect()
            try:
                table_schema = current_schema(connection)
                record_schema = ensure_load_table(connection, self.context.settings.marker_schema)
                sessions[database] = _Session(connection, connection.begin(), record_schema, table_schema)
            except Exception:
                connection.close()
                raise
        return sessions[database]

    def _load_tables(self, install: _Install, sessions: dict[str, _Session], rows: list[dict[str, Any]]) -> None:
        """Run the package's table loads not yet recorded, each with its record, uncommitted."""
        for load in install.spec.tables:
            data_file = install.data_root().joinpath(*load.file.split("/"))
            if not data_file.is_file():
                raise PackageRejected(install.archive, [f"data file {load.file!r} is not in the package"])
            session = self._session(sessions, load.database)
            record = LoadRecord(install.name, install.version, session.table_schema, load.table, load.file,
                                load.mode, install.install_id, file_sha256(data_file))
            done = recorded_load(session.connection, session.record_schema, record.key)
            where = f"{load.database}.{load.table}"
            if done is not None:
                self._already_loaded(install, load, record, done)
                rows.append(self._table_row(install.archive, where, "already loaded", 0))
                continue
            self._check_engine(session.connection, install, load)
            columns, data = read_rows(data_file)
            count = load_rows(session.connection, load.table, columns, data, replace=load.mode == "replace")
            record_load(session.connection, session.record_schema, record, count)
            rows.append(self._table_row(install.archive, where, "staged", count))

    def _already_loaded(self, install: _Install, load: TableLoad, record: LoadRecord, data_sha256: str) -> None:
        if data_sha256 != record.data_sha256:
            self.context.logger.warning(
                "package %s: %s was appended into %s.%s for version %s already, from a different file; not "
                "appended again (delete its row in %s to load it once more)", install.archive, load.file,
                load.database, load.table, install.version, LOAD_TABLE)

    def _check_engine(self, connection: Connection, install: _Install, load: TableLoad) -> None:
        """``append`` needs a transactional table: only there do the rows and their record commit together."""
        if is_transactional(connection, load.table):
            return
        if load.mode == "append":
            raise ValueError(f"package {install.archive}: table {load.database}.{load.table} is not transactional "
                             "(e.g. MyISAM), so an append into it cannot be made exactly-once; convert it to "
                             "InnoDB or use mode 'replace'")
        self.context.logger.warning(
            "package %s: table %s.%s is not transactional (e.g. MyISAM): its rows change at once, not at the commit; "
            "a failure or kill before the commit leaves the new rows and a rerun replaces them again",
            install.archive, load.database, load.table)

    def _undo(self, installs: list[_Install], sessions: dict[str, _Session], committed: int) -> None:
        """Before any commit, everything is undone; after one, swaps stay (pending) for a rerun to finish."""
        for session in sessions.values():
            if session.transaction.is_active:
                session.transaction.rollback()
        if committed:
            return
        for install in reversed(installs):
            if install.staged is not None:
                unswap(install.staged)

    @staticmethod
    def _table_row(package: str, where: str, result: str, count: int) -> dict[str, Any]:
        return {"package": package, "target": where, "result": result, "files": 0, "bytes": 0, "rows": count,
                "version": "", "attempts": 1, "kept": 0}

    def _row(self, spec: PackageSpec, package: str, result: str, *, files: int = 0, size: int = 0,
             version: str = "", attempts: int = 1, kept: int = 0) -> dict[str, Any]:
        where = f"{spec.target_dir}/{spec.subdir}" if spec.subdir else spec.target_dir
        return {"package": package, "target": where, "result": result, "files": files, "bytes": size,
                "rows": None, "version": version, "attempts": attempts, "kept": kept}

    def _failure(self, exc: Exception, rows: list[dict[str, Any]], committed: int) -> StepFailed:
        def say(w: dict[str, Any]) -> str:
            if isinstance(exc, PackageRejected):
                message = str(exc)
            elif isinstance(exc, OSError):
                message = w["io"].format(retries=self.params.io_retries, error=exc)
            else:
                message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return w["part_way"].format(message=message, committed=committed) if committed else message

        if isinstance(exc, PackageRejected):
            rows.append({"package": exc.package, "target": "", "result": "rejected", "files": 0, "bytes": 0,
                         "rows": None, "version": "", "attempts": 1, "kept": 0, "problems": exc.problems})
        message, shown = say(TEXT["en"]), say(words(TEXT, self.context.language))
        outcome = "not imported (rolled back)" if not committed else "incomplete (run again)"
        for row in rows:
            if row["result"] in ("staged", "imported"):
                row["result"] = outcome
        if committed:
            self.context.logger.error("resource import failed part-way: %s", message)
            result = self._result(rows, StepStatus.FAILED, failure=message, shown=shown)
            return StepFailed(f"resource import failed part-way: {message}", result)
        self.context.logger.error("resource import failed, nothing changed: %s", message)
        result = self._result(rows, StepStatus.FAILED, failure=message, shown=shown)
        return StepFailed(f"resource import failed, nothing was changed: {message}", result)

    def _result(self, rows: list[dict[str, Any]], status: StepStatus, failure: str = "",
                shown: str = "") -> StepResult:
        """The result; ``failure`` in English (logs), ``shown`` the same in the report's language (summary)."""
        imported = sum(r["files"] for r in rows if r["result"] == "imported")
        failed = sum(1 for r in rows if r["result"] == "rejected") if failure else 0
        w = words(TEXT, self.context.language)
        lines = [w["header"], "|---|---|---|---|---|---|"]
        lines += [f"| {r['package']} | {r['target']} | {w['results'].get(r['result'], r['result'])} | {r['files']} "
                  f"| {r['bytes']} | {'' if r['rows'] is None else r['rows']} |" for r in rows]
        for r in rows:
            lines += [f"- ❌ `{r['package']}`: {p}" for p in r.get("problems", [])]
        if failure:
            lines.append("\n" + w["failed"].format(message=shown or failure))
        packages = sum(1 for r in rows if r["result"] == "imported" and r["rows"] is None)
        already = sum(1 for r in rows if r["result"] == "already installed")
        resumed = sum(1 for r in rows if r["result"] == "resumed")
        summary = (shown or failure) if failure else (
            w["summary"].format(imported=imported, packages=packages, already=already)
            + (w["summary_resumed"].format(resumed=resumed) if resumed else ""))
        return StepResult(status=status, summary=summary,
                          details={"packages": rows, "files_imported": imported, "packages_failed": failed},
                          markdown="\n".join(lines))
