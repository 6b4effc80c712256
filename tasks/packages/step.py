"""ResourcePackageImportStep: import the target version's resource packages (images, templates, data).

All packages are validated and staged first; only when every one passed are the folders swapped in
(atomically) and the data-file table loads committed. A rejected package changes nothing: no folder
is swapped, no table is touched. I/O errors are retried (3 times by default); then the step fails
and the run's failure notification tells the administrators.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from tasks.core.errors import PackageRejected, StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.core.versions import Version
from tasks.packages.entries import DEFAULT_EXTENSIONS, MiB, PackageLimits, path_problem
from tasks.packages.install import StagedPackage, discard, file_sha256, installed_marker, stage, swap, unswap
from tasks.packages.static_data import IDENTIFIER, load_rows, read_rows
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
    mode: Literal["replace", "append"] = "replace"

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


class ResourcePackageImportStep(UpgradeStep):
    """Imports resource packages for the target version: validate all, stage all, swap all, commit loads."""

    Params = ResourcePackageParams
    description = "Resource packages: safe extraction, SHA-256 manifest, atomic swap, static data load"
    params: ResourcePackageParams

    def run(self) -> StepResult:
        limits = self.params.limits.to_limits()
        rows: list[dict[str, Any]] = []
        staged: list[tuple[PackageSpec, StagedPackage]] = []
        loads: list[tuple[Connection, RootTransaction]] = []
        try:
            for spec in self.params.packages:
                archive, target = self._archive(spec), self._target(spec)
                package, attempts = self._stage(spec, archive, target, limits)
                if package is None:
                    marker = installed_marker(target) or {}
                    rows.append(self._row(spec, archive.name, "already installed", files=marker.get("files", 0),
                                          version=marker.get("version", "")))
                    continue
                staged.append((spec, package))
                rows.append(self._row(spec, archive.name, "staged", files=package.files, size=package.bytes,
                                      version=package.manifest.version, attempts=attempts, kept=package.kept_files))
            for spec, package in staged:
                loads += self._load_tables(spec, package, rows)
            for _, package in staged:
                swap(package)
            for _, transaction in loads:
                transaction.commit()
        except Exception as exc:
            for _, package in reversed(staged):
                unswap(package)
            for _, transaction in loads:
                if transaction.is_active:
                    transaction.rollback()
            raise self._failure(exc, rows) from exc
        finally:
            for _, package in staged:
                discard(package)
            for connection, _ in loads:
                connection.close()
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

    def _stage(self, spec: PackageSpec, archive: Path, target: Path,
               limits: PackageLimits) -> tuple[StagedPackage | None, int]:
        """Stage with retries on I/O errors only (a rejected package is never retried); None: installed already."""
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
                marker = installed_marker(target)
                if not spec.force and marker and marker.get("archive_sha256") == file_sha256(archive):
                    return None, number
                return stage(archive, target=target, target_version=self.context.target_version, limits=limits,
                             keep_existing=spec.keep_existing), number
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_tables(self, spec: PackageSpec, package: StagedPackage,
                     rows: list[dict[str, Any]]) -> list[tuple[Connection, RootTransaction]]:
        opened: list[tuple[Connection, RootTransaction]] = []
        try:
            for load in spec.tables:
                data_file = package.staging.joinpath(*load.file.split("/"))
                if not data_file.is_file():
                    raise PackageRejected(package.package, [f"data file {load.file!r} is not in the package"])
                columns, data = read_rows(data_file)
                connection = self.context.resources.engine(load.database).connect()
                opened.append((connection, connection.begin()))
                count = load_rows(connection, load.table, columns, data, replace=load.mode == "replace")
                rows.append({"package": package.package, "target": f"{load.database}.{load.table}",
                             "result": "staged", "files": 0, "bytes": 0, "rows": count, "version": "",
                             "attempts": 1, "kept": 0})
        except Exception:
            for connection, transaction in opened:
                transaction.rollback()
                connection.close()
            raise
        return opened

    def _row(self, spec: PackageSpec, package: str, result: str, *, files: int = 0, size: int = 0,
             version: str = "", attempts: int = 1, kept: int = 0) -> dict[str, Any]:
        where = f"{spec.target_dir}/{spec.subdir}" if spec.subdir else spec.target_dir
        return {"package": package, "target": where, "result": result, "files": files, "bytes": size,
                "rows": None, "version": version, "attempts": attempts, "kept": kept}

    def _failure(self, exc: Exception, rows: list[dict[str, Any]]) -> StepFailed:
        if isinstance(exc, PackageRejected):
            rows.append({"package": exc.package, "target": "", "result": "rejected", "files": 0, "bytes": 0,
                         "rows": None, "version": "", "attempts": 1, "kept": 0, "problems": exc.problems})
            message = str(exc)
        elif isinstance(exc, OSError):
            message = f"I/O error after {self.params.io_retries} retries: {exc}"
        else:
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        for row in rows:
            if row["result"] in ("staged", "imported"):
                row["result"] = "not imported (rolled back)"
        self.context.logger.error("resource import failed, nothing changed: %s", message)
        result = self._result(rows, StepStatus.FAILED, failure=message)
        return StepFailed(f"resource import failed, nothing was changed: {message}", result)

    @staticmethod
    def _result(rows: list[dict[str, Any]], status: StepStatus, failure: str = "") -> StepResult:
        imported = sum(r["files"] for r in rows if r["result"] == "imported")
        failed = sum(1 for r in rows if r["result"] == "rejected") if failure else 0
        lines = ["| package | target | result | files | bytes | table rows |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['package']} | {r['target']} | {r['result']} | {r['files']} | {r['bytes']} | "
                  f"{'' if r['rows'] is None else r['rows']} |" for r in rows]
        for r in rows:
            lines += [f"- ❌ `{r['package']}`: {p}" for p in r.get("problems", [])]
        if failure:
            lines.append(f"\n**Failed, nothing changed:** {failure}")
        packages = sum(1 for r in rows if r["result"] == "imported" and r["rows"] is None)
        already = sum(1 for r in rows if r["result"] == "already installed")
        summary = failure or f"{imported} files imported from {packages} package(s), {already} already installed"
        return StepResult(status=status, summary=summary,
                          details={"packages": rows, "files_imported": imported, "packages_failed": failed},
                          markdown="\n".join(lines))
