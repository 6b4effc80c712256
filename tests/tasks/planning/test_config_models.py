"""configs/schema.json is generated from the models; a stale copy fails here."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.planning.config_models import config_json_schema

SCHEMA = Path(__file__).resolve().parents[3] / "configs" / "schema.json"


def test_configs_schema_json_is_up_to_date_with_the_models() -> None:
    expected = json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert SCHEMA.read_text(encoding="utf-8") == expected, "configs/schema.json is stale: run `ft-upgrade schema`"


def test_schema_rejects_an_unknown_cutpoint_key_like_the_loader() -> None:
    schema = config_json_schema()
    cutpoints = schema["properties"]["upgrade_steps"]
    assert "pre_check" not in json.dumps(cutpoints)
    assert "startup_pre_process" in json.dumps(schema)
