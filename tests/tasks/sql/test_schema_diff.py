"""The schema diff of a SQL step: the objects it created, changed and dropped, against the schema before its
first attempt (kept across a failure and its resume). Pure diff, then the step on the real MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.errors import StepFailed
from tasks.sql.schema_diff import ObjectChange, diff, render
from tests.tasks.sql.test_executor import execute, run_step, write


def test_diff_names_created_dropped_and_changed_parts() -> None:
    before = {"table a": {"engine": "InnoDB", "column x": "int NOT NULL"}, "table gone": {"engine": "InnoDB"},
              "view v": {"definition": "select 1"}}
    after = {"table a": {"engine": "InnoDB", "column x": "bigint NOT NULL", "column y": "int NULL"},
             "table new": {"engine": "InnoDB", "column z": "int NULL"}, "view v": {"definition": "select 1"}}
    assert diff(before, after) == [
        ObjectChange("table a", "changed", ["~ column x: int NOT NULL → bigint NOT NULL", "+ column y: int NULL"]),
        ObjectChange("table gone", "dropped"),
        ObjectChange("table new", "created", ["engine: InnoDB", "column z: int NULL"])]
    assert "| ft_db | `table gone` | 删除 |" in render({"ft_db": diff(before, after)})
    assert "| ft_db | `table gone` | dropped |" in render({"ft_db": diff(before, after)}, "en")
    assert "未改变数据库结构" in render({"ft_db": []})


@pytest.mark.mariadb
def test_the_step_reports_what_it_changed_against_the_schema_before_its_first_attempt(
        tmp_path: Path, mariadb_database: str) -> None:
    execute(mariadb_database, "CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(10))")
    execute(mariadb_database, "CREATE TABLE old_t (id INT)")
    script = ("ALTER TABLE kept ADD COLUMN status INT NOT NULL DEFAULT 0;\nDROP TABLE old_t;\n"
              "CREATE TABLE fresh (id INT PRIMARY KEY);\nALTER TABLE kept ADD UNIQUE KEY uk_note (note);\n"
              "INSERT INTO missing VALUES (1);\nCREATE VIEW v_kept AS SELECT id FROM kept;\n")
    name = write(tmp_path / "sql", "a.sql", script)
    with pytest.raises(StepFailed) as failed:
        run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    partial = failed.value.result.details["schema_changes"]["ft_db"]
    assert {(c["object"], c["change"]) for c in partial} == {
        ("table kept", "changed"), ("table old_t", "dropped"), ("table fresh", "created")}
    execute(mariadb_database, "CREATE TABLE missing (n INT)")
    details = run_step(tmp_path, {"ft_db": mariadb_database}, [name])
    changes = {c["object"]: c for c in details["schema_changes"]["ft_db"]}
    assert set(changes) == {"table kept", "table old_t", "table fresh", "table missing", "view v_kept"}, \
        "against the schema before the first attempt, not the resumed one"
    assert changes["table kept"]["details"] == ["+ column status: int(11) NOT NULL DEFAULT 0",
                                                "+ key uk_note: UNIQUE BTREE (note)"]
    assert changes["table old_t"]["change"] == "dropped" and changes["view v_kept"]["change"] == "created"
