"""Where a run's databases came from, and what a resume must find again (pure)."""

from __future__ import annotations

from tasks.execution.run_databases import DatabaseOrigin, outside_blocks, refusal, unreachable_for_resume


def test_a_run_records_the_databases_it_had_from_its_caller_or_its_environment_never_their_urls() -> None:
    environ = {"FT_UPGRADE_DB_FT_DB": "mysql://u:secret@h/ft", "FT_UPGRADE_DB_MIDDLE_DB": "", "PATH": "/bin",
               "FT_UPGRADE_DB_METADATA": "sqlite:///m.db"}
    recorded = [o.record() for o in outside_blocks({"middle_db": "mysql://x"}, environ)]
    assert recorded == ["ft_db:env", "metadata:env", "middle_db:given"]
    assert [DatabaseOrigin.parse(r) for r in (*recorded, "ft_db")][-1] == DatabaseOrigin("ft_db", None)


def test_a_resume_must_find_each_one_again_except_the_store_it_found_the_execution_in() -> None:
    recorded = ["ft_db:env", "middle_db:given", "metadata:env", "report_db"]
    in_blocks = {"middle_db"}
    missing = unreachable_for_resume(recorded, given={"report_db": "mysql://r"}, found=in_blocks.__contains__)
    assert missing == [DatabaseOrigin("ft_db", "env")]
    assert unreachable_for_resume(recorded, given={"ft_db": "u", "report_db": "u"}, found=in_blocks.__contains__) \
        == []
    said = refusal("EXEC_1", "QC", [*missing, DatabaseOrigin("report_db", None)])
    assert "ft_db (from the environment of the process that ran it: FT_UPGRADE_DB_FT_DB)" in said
    assert "report_db (given with --db or FT_UPGRADE_DB_REPORT_DB)" in said
    assert "--db ft_db=URL" in said and "export FT_UPGRADE_DB_FT_DB=URL" in said and "'qc-ft-db'" in said
