"""The pre-business check step's parameters: rules inline or from rule files under the run's configs folder
(read when the plan validates them), SSH settings; what `validate` and `plan` read, without the runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from tasks.checks.rule_files import load_rule_file
from tasks.checks.rules import Rule, check_unique_ids
from tasks.core.steps import StepParams


class SshParams(StepParams):
    """How to reach hosts that architecture rules name (``host``); the key is a file on the worker."""

    user: str | None = Field(default=None, description="Login user (a rule's user@host wins).")
    port: int = Field(default=22, ge=1, le=65535)
    key_file: str | None = Field(default=None, description="Private key file on the worker; default: agent/~/.ssh.")
    known_hosts: str | None = Field(default=None, description="Extra known_hosts file; unknown host keys are refused.")
    timeout: float = Field(default=10.0, gt=0, le=120)


class RuleSource(StepParams):
    file: str
    sha256: str
    rules: int


class BusinessCheckParams(StepParams):
    """Parameters of :class:`PreBusinessCheckStep`."""

    rules: list[Rule] = Field(default_factory=list, description="Rules declared in the step itself.")
    rule_files: list[str] = Field(default_factory=list,
                                  description="Rule files relative to the configs folder; read at plan time.")
    rule_sources: list[RuleSource] = Field(default_factory=list,
                                           description="Set at plan time: the rule files read and their sha256.")
    ssh: SshParams = Field(default_factory=SshParams)
    stop_on_sql_error: bool = Field(default=True, description="An SQL error in a rule ends the checking.")

    @model_validator(mode="before")
    @classmethod
    def _read_rule_files(cls, data: Any, info: ValidationInfo) -> Any:
        """Inline the rule files, so the plan carries the rules themselves and nothing re-reads configs.

        They are relative to the configs folder the plan was built from (the validation context).
        """
        if not isinstance(data, dict) or not data.get("rule_files"):
            return data
        files = data["rule_files"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("rule_files must be a list of paths relative to the configs folder")
        rules = list(data.get("rules") or [])
        sources = list(data.get("rule_sources") or [])
        given = (info.context or {}).get("configs_dir")
        if not given:  # the run's configs folder, never the environment's: the plan validates with it
            raise ValueError("rule_files are read from the configs folder: validate with "
                             "context={'configs_dir': ...} (the plan does)")
        configs = Path(given)
        for name in files:
            loaded, sha256 = load_rule_file(configs, name)
            rules += loaded
            sources.append({"file": name, "sha256": sha256, "rules": len(loaded)})
        return {**data, "rules": rules, "rule_files": [], "rule_sources": sources}

    @model_validator(mode="after")
    def _some_rules(self) -> BusinessCheckParams:
        if not self.rules:
            raise ValueError("a pre-business check needs at least one rule ('rules' or 'rule_files')")
        check_unique_ids(self.rules)
        return self
