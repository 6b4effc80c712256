"""The project's default rule set: what a ``PreBusinessCheckStep`` written without rules checks.

A configs folder may replace it with ``rules/default.json`` (same shape as any rule file). These are
the checks every FT site passes before any version: its FT database is MySQL ≥ 5.7.0 (the seed's
example minimum), its Redis ≥ 5.0.0, and it holds no table without a primary key (a warning).
Version-specific rules belong in the version's own rule file.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Where a configs folder's own default rule set lives (relative to the folder).
DEFAULT_RULE_FILE = "rules/default.json"
#: How the built-in set is named in a plan's ``rule_sources``.
BUILTIN_SOURCE = "(built-in) tasks.checks.default_rules"

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {"id": "mw_mysql_ft_db", "title": "中间件版本检查（FT数据库）", "type": "middleware_version", "component": "mysql",
     "target": "ft_db", "min_version": "5.7.0", "severity": "fail"},
    {"id": "mw_redis", "title": "中间件版本检查（Redis）", "type": "middleware_version", "component": "redis",
     "min_version": "5.0.0", "severity": "fail"},
    {"id": "dq_no_primary_key", "title": "无主键表检测", "type": "missing_primary_key", "target": "ft_db",
     "severity": "warn"},
)


def builtin_rules() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The built-in rules and their ``rule_sources`` entry (a SHA-256 of their canonical JSON)."""
    blob = json.dumps(DEFAULT_RULES, sort_keys=True, ensure_ascii=False).encode()
    source = {"file": BUILTIN_SOURCE, "sha256": hashlib.sha256(blob).hexdigest(), "rules": len(DEFAULT_RULES)}
    return [dict(rule) for rule in DEFAULT_RULES], source
