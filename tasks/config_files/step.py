"""ConfigPreprocessStep: fill ``${NAME}`` placeholders in the site's config files, safely.

Values come from the site profile's environment, overridden by the run's environment, plus
``SITE_ID``, ``SOURCE_VERSION`` and ``TARGET_VERSION``. Each value is encoded for its place in the file (a JSON
string, a YAML scalar, a properties value, an XML attribute…), so it cannot change the file's structure; a
value the execution recorded masked (``***``) is refused. Every result is validated in its format (JSON,
YAML, properties, XML; secrets masked in the error) and written atomically; the previous version goes to
``<config_history>/<execution>/<step>/`` (private: ``0600``/``0700``, or with the ``backup_group``). A problem
with any file fails the step before any file is written; a failure while writing restores every file this
step already changed, so the running service never sees a half-done set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tasks.config_files.preprocess import FileChange, apply_changes, format_of
from tasks.core.errors import PreprocessError, StepFailed
from tasks.core.files import Private
from tasks.core.language import words
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.steps.base import UpgradeStep

#: 预处理结果 (the changed configuration files), in the site's language.
TEXT = {
    "zh": {"header": "| 文件 | 结果 | 原版本 |", "changed": "已修改", "unchanged": "已是最新", "new": "（新文件）",
           "summary": "已修改 {changed} 个配置文件，{unchanged} 个无变化", "failed": "配置预处理失败：{error}",
           "no_templates": "{folder} 中没有 *.tpl 模板，无需预处理"},
    "en": {"header": "| file | result | previous version |", "changed": "changed", "unchanged": "already up to date",
           "new": "(new file)", "summary": "{changed} config file(s) changed, {unchanged} unchanged",
           "failed": "{error}", "no_templates": "no *.tpl template in {folder}: nothing to preprocess"},
}

TEMPLATE_SUFFIX = ".tpl"


class ConfigFile(StepParams):
    """A file to preprocess; ``template`` (optional) is read instead of the file and written over it."""

    path: str
    template: str | None = None
    format: Literal["json", "yaml", "properties", "xml", "text"] | None = None


class ConfigPreprocessParams(StepParams):
    config_files: list[ConfigFile | str] = Field(
        default_factory=list, description="Paths (relative to the site's config_dir) or {path, template, format} "
                                          "objects.")
    site_templates: bool = Field(default=False, description="Also every '<name>.tpl' directly in the site's "
                                 "config_dir, rendered to '<name>' beside it (none: nothing to do).")

    @model_validator(mode="after")
    def _something(self) -> ConfigPreprocessParams:
        if not self.config_files and not self.site_templates:
            raise ValueError("name the config_files to preprocess (or site_templates: true)")
        return self

    @field_validator("config_files")
    @classmethod
    def _unique(cls, value: list[ConfigFile | str]) -> list[ConfigFile | str]:
        paths = [v if isinstance(v, str) else v.path for v in value]
        if dupes := sorted({p for p in paths if paths.count(p) > 1}):
            raise ValueError(f"listed twice: {', '.join(dupes)}")
        return value

    def files(self, config_dir: Path | None = None) -> list[ConfigFile]:
        """The files to preprocess; with ``site_templates``, the templates found in ``config_dir`` too."""
        listed = [ConfigFile(path=v) if isinstance(v, str) else v for v in self.config_files]
        if self.site_templates and config_dir is not None:
            taken = {f.path for f in listed}
            listed += [ConfigFile(path=t.name.removesuffix(TEMPLATE_SUFFIX), template=t.name)
                       for t in sorted(config_dir.glob("*" + TEMPLATE_SUFFIX))
                       if t.is_file() and t.name.removesuffix(TEMPLATE_SUFFIX) not in taken]
        return listed


class ConfigPreprocessStep(UpgradeStep):
    """Placeholder substitution with format validation, atomic writes, history and restore on failure."""

    Params = ConfigPreprocessParams
    description = "Config-file preprocessing: ${NAME} substitution, validation, atomic write, history"
    params: ConfigPreprocessParams

    def run(self) -> StepResult:
        ctx, res = self.context, self.context.resources
        root = res.path("config_dir")

        def resolve(name: str) -> Path:
            path = Path(name)
            return path if path.is_absolute() else root / path

        files = self.params.files(root)
        if not files:
            return StepResult(StepStatus.SKIPPED, words(TEXT, ctx.language)["no_templates"].format(folder=root))
        changes = [FileChange(resolve(f.path), format_of(Path(f.path), f.format),
                              resolve(f.template) if f.template else None) for f in files]
        absent = [str(c.source) for c in changes if not c.source.is_file()]
        if absent:
            raise StepFailed(f"config files not found: {', '.join(absent)}; no file was changed")
        history = res.path("config_history") / ctx.execution_id / ctx.step_id
        try:
            report = apply_changes(changes, self.values(), history, secrets=res.secrets,
                                   private=Private(ctx.settings.backup_group))
        except PreprocessError as exc:
            result = StepResult(StepStatus.FAILED, words(TEXT, ctx.language)["failed"].format(error=exc),
                                details={"missing": exc.missing, "restored": exc.restored})
            raise StepFailed(str(exc), result) from exc
        w = words(TEXT, ctx.language)
        rows = [f"| `{c['path']}` | {w['changed']} | {f'`{h}`' if (h := c['history']) else w['new']} |"
                for c in report.changed]
        rows += [f"| `{p}` | {w['unchanged']} | |" for p in report.unchanged]
        return StepResult(
            StepStatus.SUCCESS, w["summary"].format(changed=len(report.changed), unchanged=len(report.unchanged)),
            details={"changed": report.changed, "unchanged": report.unchanged, "history": str(history)},
            markdown=w["header"] + "\n|---|---|---|\n" + "\n".join(rows))

    def values(self) -> dict[str, str]:
        ctx = self.context
        profile = ctx.resources.profile
        values = {"SITE_ID": ctx.site_id, "SOURCE_VERSION": ctx.source_version, "TARGET_VERSION": ctx.target_version}
        values.update(profile.environment if profile else {})
        values.update(profile.secret_values() if profile else {})
        values.update({k: str(v) for k, v in ctx.environment.items() if v is not None})
        return values
