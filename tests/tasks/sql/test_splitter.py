"""Pure tests of the SQL splitter: literal scripts in, exact statements out.

Every expected text here is what the real ``mariadb`` client (10.11, batch mode) sends for the same input;
the odd-looking ones (a leading space after a ``/* */`` comment, a kept trailing space before a comment...)
were checked byte for byte on the wire. tests/tasks/sql/test_splitter_vs_client.py does that for the
files in tests/data/split.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tasks.sql.kinds import classify
from tasks.sql.splitter import (
    Include,
    SqlSplitError,
    SqlSplitErrors,
    Statement,
    decode_sql_bytes,
    split_script,
    split_statements,
)

SOURCE = "upgrade/001_init.sql"
DATA = Path(__file__).resolve().parents[2] / "data" / "split"


def split(text: str, **kwargs) -> list[Statement]:
    return split_statements(text, source=SOURCE, **kwargs)


def texts(text: str) -> list[str]:
    return [s.text for s in split(text)]


def split_error(text: str, **kwargs) -> str:
    with pytest.raises(SqlSplitError) as info:
        split(text, **kwargs)
    return str(info.value)


# --- basics -----------------------------------------------------------------------------------------


def test_simple_statements_get_text_line_sequence_and_default_database():
    statements = split("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\n\nSELECT a FROM t;\n")
    assert [(s.text, s.line, s.sequence, s.database) for s in statements] == [
        ("CREATE TABLE t (a INT)", 1, 1, "ft_db"),
        ("INSERT INTO t VALUES (1)", 2, 2, "ft_db"),
        ("SELECT a FROM t", 4, 3, "ft_db"),
    ]


def test_statement_records_file_hash_and_no_use_fields():
    (statement,) = split("SELECT 'é';", default_database="ft_report")
    assert statement == Statement(
        file=SOURCE, line=1, sequence=1, text="SELECT 'é'",
        sha256=hashlib.sha256("SELECT 'é'".encode()).hexdigest(),
        database="ft_report", is_use=False, use_schema=None,
    )


def test_empty_script_and_comment_only_script_have_no_statements():
    assert split("") == []
    assert split("\n  \n-- nothing; here\n/* nor ; here */\n# nor here\n") == []


def test_multi_line_statement_keeps_its_newlines_and_starts_at_its_first_line():
    statements = split("\n\nCREATE TABLE t (\n  a INT,\n\n  b INT\n)\n;\nSELECT 1;")
    assert [(s.text, s.line) for s in statements] == [
        ("CREATE TABLE t (\n  a INT,\n\n  b INT\n)", 3),
        ("SELECT 1", 9),
    ]


def test_leading_whitespace_is_skipped_and_trailing_whitespace_removed():
    assert texts("  \t SELECT 1 \t ;\n\t\tSELECT\t2\t\n ;") == ["SELECT 1", "SELECT\t2"]


def test_empty_statements_are_not_sent_and_do_not_count():
    statements = split(";;\n ; SELECT 1;;; ;\n;SELECT 2;")
    assert [(s.text, s.sequence) for s in statements] == [("SELECT 1", 1), ("SELECT 2", 2)]


def test_several_statements_on_one_line_share_the_line_number():
    statements = split("SELECT 1; SELECT 2;SELECT 3;\nSELECT 4;")
    assert [(s.text, s.line, s.sequence) for s in statements] == [
        ("SELECT 1", 1, 1), ("SELECT 2", 1, 2), ("SELECT 3", 1, 3), ("SELECT 4", 2, 4),
    ]


def test_trailing_statement_without_delimiter_is_sent_like_the_client_does():
    statements = split("SELECT 1;\nDROP TABLE t")
    assert [(s.text, s.line, s.sequence) for s in statements] == [("SELECT 1", 1, 1), ("DROP TABLE t", 2, 2)]
    assert texts("SELECT 1;\nSELECT\n  2   \n\n") == ["SELECT 1", "SELECT\n  2"]


def test_percent_signs_are_left_untouched():
    assert texts("SELECT '%s', '%%', '%(x)s' FROM t WHERE a LIKE 'x%';") == [
        "SELECT '%s', '%%', '%(x)s' FROM t WHERE a LIKE 'x%'"
    ]


# --- quotes -----------------------------------------------------------------------------------------


def test_semicolon_inside_single_quoted_string_does_not_split():
    assert texts("INSERT INTO t VALUES ('a;b');SELECT 1;") == ["INSERT INTO t VALUES ('a;b')", "SELECT 1"]


def test_semicolon_inside_double_quoted_string_does_not_split():
    assert texts('SELECT "a;b";SELECT 1;') == ['SELECT "a;b"', "SELECT 1"]


def test_backslash_escaped_quote_does_not_close_the_string():
    assert texts("SELECT 'it\\'s; here', \"say \\\"hi\\\"; now\";SELECT 2;") == [
        "SELECT 'it\\'s; here', \"say \\\"hi\\\"; now\"", "SELECT 2",
    ]


def test_escaped_backslash_before_a_quote_closes_the_string():
    assert texts("SELECT 'a\\\\';SELECT 'b';") == ["SELECT 'a\\\\'", "SELECT 'b'"]


def test_doubled_quote_does_not_close_the_string():
    assert texts("SELECT 'it''s; here', \"a\"\"b;\";SELECT 2;") == [
        "SELECT 'it''s; here', \"a\"\"b;\"", "SELECT 2",
    ]


def test_semicolon_inside_backtick_identifier_with_doubled_backtick_does_not_split():
    assert texts("CREATE TABLE `a;``b` (`c;d` INT);SELECT 1;") == [
        "CREATE TABLE `a;``b` (`c;d` INT)", "SELECT 1",
    ]


def test_backslash_inside_backticks_is_not_an_escape():
    assert texts("SELECT 1 AS `a\\`;SELECT 2;") == ["SELECT 1 AS `a\\`", "SELECT 2"]


def test_comment_markers_inside_strings_are_kept():
    assert texts("SELECT '-- no', '# no', '/* no */', \"-- no\", `# no`;") == [
        "SELECT '-- no', '# no', '/* no */', \"-- no\", `# no`"
    ]


def test_string_spanning_lines_keeps_its_newlines():
    statements = split("INSERT INTO t VALUES ('line one;\n-- not a comment\nline three');\nSELECT 1;")
    assert [(s.text, s.line) for s in statements] == [
        ("INSERT INTO t VALUES ('line one;\n-- not a comment\nline three')", 1),
        ("SELECT 1", 4),
    ]


# --- comments: stripped like the client does by default (--skip-comments) -------------------------


def test_semicolon_inside_dash_dash_comment_does_not_split():
    assert texts("SELECT 1 -- one; two\n;SELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_semicolon_inside_hash_comment_does_not_split():
    assert texts("SELECT 1 # one; two\n, 2;") == ["SELECT 1 \n, 2"]


def test_semicolon_inside_block_comment_does_not_split():
    assert texts("SELECT 1 /* one; two */ + 1;") == ["SELECT 1  + 1"]


def test_apostrophe_inside_comments_does_not_open_a_string():
    script = "-- don't\nSELECT 1; # it's\n/* that's */ SELECT 2;\nSELECT 3 -- 'quoted\n;"
    assert texts(script) == ["SELECT 1", " SELECT 2", "SELECT 3"]


def test_ordinary_comments_never_reach_the_server_but_their_newlines_do():
    script = "SELECT a, -- first\n  b # second\nFROM t;"
    assert texts(script) == ["SELECT a, \n  b \nFROM t"]


def test_comment_lines_before_a_statement_move_its_start_line():
    statements = split("-- header; with ' quote\n# more\n/* and\n   more */\nSELECT 1;")
    assert [(s.text, s.line) for s in statements] == [("SELECT 1", 5)]


def test_block_comment_is_replaced_by_a_space_before_the_next_character():
    assert texts("SELECT 1/* c */+2;") == ["SELECT 1 +2"]
    assert texts("/* c */SELECT 2;") == [" SELECT 2"]
    assert texts("/* c */ SELECT 3;") == [" SELECT 3"]
    assert texts("SELECT 4 /* c */;") == ["SELECT 4"]


def test_multi_line_block_comment_swallows_its_newlines():
    assert texts("SELECT 1 /* one\ntwo;\nthree */ + 2;") == ["SELECT 1  + 2"]
    assert texts("SELECT 1 /* one\ntwo */\n+ 2;") == ["SELECT 1 \n+ 2"]


def test_space_owed_by_a_block_comment_carries_over_a_delimiter():
    assert texts("SELECT 1 /* c */; SELECT 2;") == ["SELECT 1", " SELECT 2"]


def test_block_comment_before_multibyte_text_owes_its_space_to_the_next_ascii_character():
    assert texts("SELECT/* c */中x;") == ["SELECT中 x"]


def test_dash_dash_without_space_is_not_a_comment_inside_a_statement():
    assert texts("SELECT 10--1;") == ["SELECT 10--1"]


def test_dash_dash_at_statement_start_is_a_comment_even_without_space():
    assert texts("--no space; here\nSELECT 1;") == ["SELECT 1"]


def test_dash_dash_at_end_of_line_and_before_tab_is_a_comment():
    assert texts("SELECT 1 --\n, 2 --\tx;\n;") == ["SELECT 1 \n, 2"]


def test_nested_looking_block_comment_ends_at_the_first_close():
    assert texts("SELECT 1 /* a /* b */ + 2;") == ["SELECT 1  + 2"]


def test_comment_after_the_last_delimiter_is_not_a_statement():
    assert texts("SELECT 1; -- bye; now\n# done\n") == ["SELECT 1"]


# --- conditional comments (executable: kept) ---------------------------------------------------------


def test_conditional_comments_are_kept_and_sent():
    script = "SELECT /*! 1 */ + /*!40101 2 */ + /*M!100100 3 */;\n/*!40101 SET NAMES utf8mb4 */;"
    assert texts(script) == [
        "SELECT /*! 1 */ + /*!40101 2 */ + /*M!100100 3 */", "/*!40101 SET NAMES utf8mb4 */",
    ]


def test_mysqldump_prologue_and_epilogue_are_kept_as_session_statements():
    script = (
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"
        "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
        "CREATE TABLE t (a INT);\n"
        "/*!40000 ALTER TABLE `t` DISABLE KEYS */;\n"
        "/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
        "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"
    )
    statements = split(script)
    assert [(s.text, s.line, classify(s.text)) for s in statements] == [
        ("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */", 1, "SESSION"),
        ("/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */", 2, "SESSION"),
        ("CREATE TABLE t (a INT)", 3, "DDL"),
        ("/*!40000 ALTER TABLE `t` DISABLE KEYS */", 4, "DDL"),
        ("/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */", 5, "SESSION"),
        ("/*!40101 SET SQL_MODE=@OLD_SQL_MODE */", 6, "SESSION"),
    ]


def test_delimiter_inside_conditional_comment_splits_like_the_client():
    assert texts("SELECT 1 /*!40101 , 2; */;") == ["SELECT 1 /*!40101 , 2", "*/"]


# --- DELIMITER --------------------------------------------------------------------------------------


def test_custom_delimiter_double_slash_keeps_procedure_body_whole():
    script = (
        "DELIMITER //\n"
        "CREATE PROCEDURE p()\n"
        "BEGIN\n"
        "  -- body; comment\n"
        "  SELECT 1; SELECT 'a//b';\n"
        "END//\n"
        "DELIMITER ;\n"
        "CALL p();\n"
    )
    statements = split(script)
    assert [(s.text, s.line, s.sequence) for s in statements] == [
        ("CREATE PROCEDURE p()\nBEGIN\n  \n  SELECT 1; SELECT 'a//b';\nEND", 2, 1),
        ("CALL p()", 8, 2),
    ]


def test_custom_delimiter_dollar_dollar_function():
    script = (
        "DELIMITER $$\n"
        "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC\n"
        "BEGIN\n"
        "  RETURN x + 1;\n"
        "END $$\n"
        "DELIMITER ;\n"
        "SELECT f(1);"
    )
    assert texts(script) == [
        "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC\nBEGIN\n  RETURN x + 1;\nEND",
        "SELECT f(1)",
    ]


def test_custom_delimiter_double_semicolon_trigger():
    script = (
        "DELIMITER ;;\n"
        "/*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW\n"
        "BEGIN\n"
        "  SET NEW.a = NEW.a + 1;\n"
        "END */;;\n"
        "DELIMITER ;\n"
    )
    assert texts(script) == [
        "/*!50003 CREATE*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW\nBEGIN\n"
        "  SET NEW.a = NEW.a + 1;\nEND */"
    ]


def test_custom_delimiter_with_letters_d_slash_slash():
    script = "DELIMITER d//\nCREATE PROCEDURE p() SELECT 'd/'; d//\nDELIMITER ;\n"
    assert texts(script) == ["CREATE PROCEDURE p() SELECT 'd/';"]


def test_delimiter_keyword_is_case_insensitive():
    assert texts("delimiter //\nSELECT 1//\nDeLiMiTeR ;\nSELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_statement_ended_by_custom_delimiter_on_the_same_line_as_the_next_one():
    statements = split("DELIMITER //\nCALL p()//   SELECT 1//\nSELECT 2 //\nDELIMITER ;\n")
    assert [(s.text, s.line, s.sequence) for s in statements] == [
        ("CALL p()", 2, 1), ("SELECT 1", 2, 2), ("SELECT 2", 3, 3),
    ]


def test_semicolon_under_custom_delimiter_is_part_of_the_statement():
    assert texts("DELIMITER $$\nSELECT 1; SELECT 2;$$\nDELIMITER ;") == ["SELECT 1; SELECT 2;"]


def test_custom_delimiter_inside_string_or_comment_does_not_split():
    assert texts("DELIMITER //\nSELECT '//', \"//\" -- //\n, 1 /* // */ //\nDELIMITER ;") == [
        "SELECT '//', \"//\" \n, 1"
    ]


def test_delimiter_command_with_quoted_token_and_surrounding_spaces():
    assert texts("  DELIMITER '$$'  \nSELECT 1$$\nDELIMITER ;\nSELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_empty_delimiter_is_an_error():
    assert split_error("SELECT 1;\nDELIMITER\nSELECT 2;") == (
        "upgrade/001_init.sql:2: empty DELIMITER: DELIMITER must be followed by a delimiter token"
    )
    assert split_error("DELIMITER    \n") == (
        "upgrade/001_init.sql:1: empty DELIMITER: DELIMITER must be followed by a delimiter token"
    )


def test_delimiter_with_backslash_is_an_error():
    assert split_error("DELIMITER \\\\\n") == (
        "upgrade/001_init.sql:1: DELIMITER '\\\\' contains a backslash (the client refuses it)"
    )


def test_delimiter_glued_after_a_statement_is_an_error():
    assert split_error("SELECT 1;\nSELECT 2; DELIMITER //\nSELECT 3//\nSELECT 4;\n") == (
        "upgrade/001_init.sql:2: DELIMITER must start its own line "
        "(the client glues it to the text around it and silently runs something else)"
    )


def test_custom_delimiter_open_at_end_of_file_with_pending_text_is_an_error():
    script = "SELECT 1;\nDELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND\nDELIMITER ;\n"
    assert split_error(script) == (
        "upgrade/001_init.sql:3: DELIMITER // (set at line 2) is still in force at end of file "
        "and this statement never ends with //"
    )


def test_custom_delimiter_still_set_at_end_of_file_without_pending_text_is_fine():
    assert texts("DELIMITER //\nSELECT 1//\n-- the end\n") == ["SELECT 1"]


def test_line_starting_with_the_word_delimiter_gets_no_newline_like_the_client():
    # The client's add_line() adds no newline after a line starting with "delimiter" (case-insensitive).
    assert texts("SELECT\ndelimiter_col\nFROM t;") == ["SELECT\ndelimiter_colFROM t"]


# --- USE --------------------------------------------------------------------------------------------


def test_use_is_a_client_command_with_the_schema_name_unquoted():
    statements = split("USE ft_a;\nuse `ft b`;\nUSE ft_c\n  use ft_d -- switch\nSELECT 1;")
    assert [(s.text, s.line, s.sequence, s.is_use, s.use_schema) for s in statements] == [
        ("USE ft_a", 1, 1, True, "ft_a"),
        ("use `ft b`", 2, 2, True, "ft b"),
        ("USE ft_c", 3, 3, True, "ft_c"),
        ("use ft_d -- switch", 4, 4, True, "ft_d"),
        ("SELECT 1", 5, 5, False, None),
    ]


def test_use_between_statements_on_one_line_counts_in_sequence():
    statements = split("SELECT 1; USE `we``ird`; SELECT 2;")
    assert [(s.sequence, s.is_use, s.use_schema, s.text) for s in statements] == [
        (1, False, None, "SELECT 1"),
        (2, True, "we`ird", "USE `we``ird`"),
        (3, False, None, "SELECT 2"),
    ]


def test_use_without_a_name_is_an_error():
    message = split_error("SELECT 1;\nUSE\nft_db;")
    assert message == "upgrade/001_init.sql:2: USE must be followed by a database name"


def test_use_of_a_name_containing_the_delimiter_is_sent_as_a_query_like_the_client():
    (statement,) = split("USE `a;b`;")
    assert (statement.text, statement.is_use, classify(statement.text)) == ("USE `a;b`", False, "SESSION")


# --- other client commands ---------------------------------------------------------------------------


def test_backslash_g_and_backslash_capital_g_end_a_statement():
    assert texts("SELECT 1\\g SELECT 2\\G\nSELECT '\\g';") == ["SELECT 1", "SELECT 2", "SELECT '\\g'"]


def test_backslash_n_outside_strings_is_kept_as_null():
    assert texts("SELECT \\N;") == ["SELECT \\N"]


def test_backslash_at_end_of_line_is_dropped_like_the_client():
    assert texts("SELECT 'a\\\nb', 1 \\\n;") == ["SELECT 'a\nb', 1"]


@pytest.mark.parametrize("script, command", [
    ("\\! rm -rf /tmp/x\n", "\\!"),
    ("SELECT 1\\c\n", "\\c"),
])
def test_other_backslash_commands_are_errors(script: str, command: str):
    column = script.index(command) + 1
    assert split_error(script).startswith(f"upgrade/001_init.sql:1:{column}: client command '{command}'")


@pytest.mark.parametrize("line", ["quit", "exit;", "system ls", "status"])
def test_named_client_commands_other_than_use_delimiter_and_source_are_errors(line: str):
    command = line.split()[0].rstrip(";").lower()
    assert split_error(f"SELECT 1;\n{line}\n") == (
        f"upgrade/001_init.sql:2: mariadb client command '{command}' is not supported "
        "(only USE, DELIMITER and SOURCE are)"
    )


def test_client_command_word_with_arguments_it_does_not_take_is_a_query():
    assert texts("status of something;") == ["status of something"]


# --- SOURCE / \. (com_source) -------------------------------------------------------------------------


def included(files: dict[str, str]):
    """A resolver over literal files (the I/O layer, tasks/sql/script.py, reads them under the SQL root)."""
    def read(request: Include) -> tuple[str, str]:
        if request.name not in files:
            raise request.error(f"SOURCE {request.name}: not found")
        return request.name, files[request.name]
    return read


def test_source_and_backslash_dot_run_the_included_statements_in_place():
    files = {"b.sql": "SELECT 'b1';\n\nSELECT 'b2';\n", "c.sql": "SELECT 'c1'"}  # no delimiter at the end: sent
    script = "SELECT 'a1';\nsource b.sql;\nSELECT 'a2'; SOURCE b.sql;\n\\. c.sql\nSELECT 'a3';\n"
    found = split(script, include=included(files))
    assert [(s.text, s.where, s.sequence) for s in found] == [
        ("SELECT 'a1'", f"{SOURCE}:1", 1),
        ("SELECT 'b1'", f"{SOURCE}:2 > b.sql:1", 2),
        ("SELECT 'b2'", f"{SOURCE}:2 > b.sql:3", 3),
        ("SELECT 'a2'", f"{SOURCE}:3", 4),
        ("SELECT 'b1'", f"{SOURCE}:3 > b.sql:1", 5),
        ("SELECT 'b2'", f"{SOURCE}:3 > b.sql:3", 6),
        ("SELECT 'c1'", f"{SOURCE}:4 > c.sql:1", 7),
        ("SELECT 'a3'", f"{SOURCE}:5", 8),
    ]
    assert (found[1].file, found[1].line, found[1].via, found[1].source_name) == (
        "b.sql", 1, ((SOURCE, 2),), f"{SOURCE}:2 > b.sql")


def test_nested_sources_carry_the_whole_chain():
    files = {"b.sql": "SELECT 'b';\nsource c.sql\n", "c.sql": "\n\nSELECT 'c';\n"}
    found = split("source b.sql;\n", include=included(files))
    assert [s.where for s in found] == [f"{SOURCE}:1 > b.sql:1", f"{SOURCE}:1 > b.sql:2 > c.sql:3"]


def test_the_delimiter_carries_over_into_and_out_of_an_included_file_like_the_client():
    # checked with mariadb 10.11: the client's delimiter is one global, com_source() does not reset it
    files = {"e.sql": "SELECT 'in-e'$$\nDELIMITER ;\nDELIMITER $$\n"}
    script = "DELIMITER $$\nsource e.sql$$\nSELECT 'main1'; SELECT 'main2'$$\n"
    assert texts_with(script, files) == ["SELECT 'in-e'", "SELECT 'main1'; SELECT 'main2'"]


def texts_with(script: str, files: dict[str, str]) -> list[str]:
    return [s.text for s in split(script, include=included(files))]


def test_backslash_dot_takes_the_rest_of_the_line_as_the_file_name():
    # the client fails with "Failed to open file 'c.sql;'": refused before anything runs, with the fix
    assert split_error("SELECT 1;\n\\. c.sql;\n", include=included({"c.sql": ""})) == (
        f"{SOURCE}:2:1: \\. takes the rest of the line as the file name ('c.sql;', delimiter included), which the "
        "client fails to open: write '\\. c.sql' alone on its line, or 'SOURCE c.sql;'")


def test_text_before_backslash_dot_is_refused_since_the_client_drops_it():
    # the client empties the statement being typed: "SELECT 'p' \. c.sql" runs c.sql and never sends 'p'
    assert split_error("SELECT 'p' \\. c.sql\n", include=included({"c.sql": ""})).startswith(
        f"{SOURCE}:1:12: text before \\. on its statement would be dropped by the client")


def test_an_included_file_starts_on_the_including_database_and_keeps_its_annotations_to_itself():
    files = {"r.sql": "SELECT 'r1';\n-- @database: ft_report\nSELECT 'r2';\n"}
    script = "-- @database: middle_db\nSELECT 1;\nsource r.sql;\nSELECT 2;\n"
    assert [(s.text, s.database) for s in split(script, include=included(files))] == [
        ("SELECT 1", "middle_db"), ("SELECT 'r1'", "middle_db"), ("SELECT 'r2'", "ft_report"),
        ("SELECT 2", "middle_db")]


def test_a_source_cycle_is_refused_naming_the_chain():
    files = {"b.sql": "SELECT 1;\nsource c.sql;\n", "c.sql": "source b.sql;\n", SOURCE: ""}
    assert split_error("source b.sql;\n", include=included(files)) == (
        f"{SOURCE}:1 > b.sql:2 > c.sql:1: SOURCE cycle: {SOURCE}:1 > b.sql:2 > c.sql:1 > b.sql "
        "(the client would include it again and again)")
    assert "SOURCE cycle" in split_error("SELECT 1;\nsource upgrade/001_init.sql;\n", include=included(files))


def test_source_without_a_resolver_is_a_problem():
    assert split_error("SELECT 1;\nSOURCE x.sql;\n") == (
        f"{SOURCE}:2: SOURCE x.sql: included files can only be read from a script under the SQL root")


def test_every_problem_of_a_script_and_its_included_files_is_listed_not_only_the_first():
    files = {"b.sql": "SELECT 1;\nsystem ls\nSELECT 'open\n"}
    script = "SOURCE nope.sql;\nSELECT 1;\nsource b.sql\nquit\nDELIMITER\nSELECT 2;\n"
    found = split_script(script, source=SOURCE, include=included(files))
    assert [str(p) for p in found.problems] == [
        f"{SOURCE}:1: SOURCE nope.sql: not found",
        f"{SOURCE}:3 > b.sql:2: mariadb client command 'system' is not supported (only USE, DELIMITER and SOURCE "
        "are)",
        f"{SOURCE}:3 > b.sql:3:8: unterminated single-quoted string (opening ' is never closed)",
        f"{SOURCE}:4: mariadb client command 'quit' is not supported (only USE, DELIMITER and SOURCE are)",
        f"{SOURCE}:5: empty DELIMITER: DELIMITER must be followed by a delimiter token",
    ]
    assert [s.text for s in found.statements] == ["SELECT 1", "SELECT 1", "SELECT 2"]
    assert found.included == ("b.sql",)
    with pytest.raises(SqlSplitErrors) as info:
        split_statements(script, source=SOURCE, include=included(files))
    assert str(info.value) == "\n".join(str(p) for p in found.problems)
    assert (info.value.file, info.value.line) == (SOURCE, 1)


# --- @database annotations ---------------------------------------------------------------------------


def test_database_annotation_sets_the_logical_database_of_following_statements():
    script = (
        "SELECT 1;\n"
        "-- @database: ft_report\n"
        "SELECT 2;\n"
        "USE rpt;\n"
        "  --   @database:ft_db  \n"
        "SELECT 3;\n"
    )
    statements = split(script, known_databases=frozenset({"ft_db", "ft_report"}))
    assert [(s.text, s.database) for s in statements] == [
        ("SELECT 1", "ft_db"), ("SELECT 2", "ft_report"), ("USE rpt", "ft_report"), ("SELECT 3", "ft_db"),
    ]


def test_annotation_inside_a_statement_applies_from_the_next_statement():
    script = "SELECT 1,\n-- @database: ft_report\n2;\nSELECT 3;"
    assert [(s.text, s.database) for s in split(script)] == [
        ("SELECT 1,\n\n2", "ft_db"), ("SELECT 3", "ft_report"),
    ]


def test_annotation_inside_a_block_comment_or_string_is_ignored():
    script = (
        "/*\n-- @database: nope\n*/\n"
        "SELECT '\n-- @database: nope\n';\n"
        "SELECT 1; -- @database: nope\n"
        "SELECT 2;"
    )
    assert {s.database for s in split(script)} == {"ft_db"}


def test_unknown_database_annotation_is_an_error_naming_file_and_line():
    script = "SELECT 1;\n\n-- @database: ft_nope\nSELECT 2;"
    message = split_error(script, known_databases=frozenset({"ft_db", "ft_report"}))
    assert message == (
        "upgrade/001_init.sql:3:1: unknown database 'ft_nope' in @database annotation "
        "(known: ft_db, ft_report)"
    )


def test_any_annotated_database_is_accepted_without_known_databases():
    assert split("-- @database: anything\nSELECT 1;")[0].database == "anything"


def test_malformed_database_annotation_is_an_error():
    assert split_error("-- @database ft_db\nSELECT 1;") == (
        "upgrade/001_init.sql:1:1: malformed annotation, expected '-- @database: NAME'"
    )
    assert split_error("SELECT 1;\n  -- @database: ft_db extra\n") == (
        "upgrade/001_init.sql:2:3: malformed annotation, expected '-- @database: NAME'"
    )


# --- errors -----------------------------------------------------------------------------------------


def test_unterminated_single_quote_is_an_error_with_line_and_column():
    assert split_error("SELECT 1;\nSELECT 'abc;\nSELECT 2;\n") == (
        "upgrade/001_init.sql:2:8: unterminated single-quoted string (opening ' is never closed)"
    )


def test_unterminated_double_quote_and_backtick_are_errors():
    assert split_error('SELECT "abc') == (
        'upgrade/001_init.sql:1:8: unterminated double-quoted string (opening " is never closed)'
    )
    assert split_error("SELECT 1;\n\nSELECT `abc") == (
        "upgrade/001_init.sql:3:8: unterminated backtick identifier (opening ` is never closed)"
    )


def test_unterminated_block_comment_is_an_error_with_line_and_column():
    assert split_error("SELECT 1;\n  /* never closed; SELECT 2;\n") == (
        "upgrade/001_init.sql:2:3: unterminated /* comment"
    )


def test_nul_character_is_an_error():
    assert split_error("SELECT 1;\nSELECT '\0';") == (
        "upgrade/001_init.sql:2:9: NUL character (the client refuses it without --binary-mode)"
    )


def test_sql_split_error_carries_file_line_column_and_reason():
    with pytest.raises(SqlSplitError) as info:
        split("SELECT 'x")
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.file, error.line, error.column) == (SOURCE, 1, 8)
    assert error.reason == "unterminated single-quoted string (opening ' is never closed)"
    assert str(SqlSplitError("a.sql", 4, "boom")) == "a.sql:4: boom"


# --- text encoding and line endings ------------------------------------------------------------------


def test_chinese_text_in_strings_comments_and_identifiers():
    script = (
        "-- 中文注释；含 ' 和 ;\n"
        "INSERT INTO `客户` VALUES ('张三；北京', '😀'); # 注释 ' ;\n"
        "SELECT `名称` AS 名字 FROM `客户`;"
    )
    statements = split(script)
    assert [(s.text, s.line) for s in statements] == [
        ("INSERT INTO `客户` VALUES ('张三；北京', '😀')", 2),
        ("SELECT `名称` AS 名字 FROM `客户`", 3),
    ]
    expected_hash = hashlib.sha256("INSERT INTO `客户` VALUES ('张三；北京', '😀')".encode()).hexdigest()
    assert statements[0].sha256 == expected_hash


def test_crlf_line_endings_are_read_like_the_client():
    script = "SELECT 1;\r\nSELECT 'a\r\nb', 'c\rd';\r\nDELIMITER //\r\nSELECT\r\n 2//\r\n"
    assert texts(script) == ["SELECT 1", "SELECT 'a\nb', 'c\rd'", "SELECT\n 2"]


def test_bom_is_dropped():
    assert texts("\ufeffSELECT 1;") == ["SELECT 1"]


def test_decode_sql_bytes_accepts_utf8_and_drops_the_bom():
    assert decode_sql_bytes("\ufeffSELECT '中';".encode(), source=SOURCE) == "SELECT '中';"
    assert decode_sql_bytes(b"SELECT 1;", source=SOURCE) == "SELECT 1;"


def test_decode_sql_bytes_names_line_and_column_of_the_first_invalid_byte():
    data = "SELECT 1;\nSELECT '中".encode() + b"\xff';\n"
    with pytest.raises(SqlSplitError) as info:
        decode_sql_bytes(data, source=SOURCE)
    assert str(info.value) == "upgrade/001_init.sql:2:10: invalid UTF-8 byte 0xff (scripts must be UTF-8)"
    with pytest.raises(SqlSplitError, match=r"^x\.sql:1:1: invalid UTF-8 byte 0xe9 "):
        decode_sql_bytes("é".encode("latin-1"), source="x.sql")


# --- lossless-ish properties and speed ---------------------------------------------------------------


def test_statements_point_back_to_their_source_lines_and_lose_only_whitespace_and_delimiters():
    script = (
        "CREATE TABLE t (\n  a INT\n);\n"
        "INSERT INTO t VALUES (1), (2);  SELECT a\nFROM t;\n"
        "\n"
        "SELECT 'x;\ny'"
    )
    lines = script.split("\n")
    statements = split(script)
    assert [s.line for s in statements] == [1, 4, 4, 7]
    for statement in statements:
        assert statement.text in script
        assert statement.text.split("\n")[0] in lines[statement.line - 1]
    squeeze = str.maketrans("", "", " \n")
    assert ";".join(s.text for s in statements).translate(squeeze) == script.translate(squeeze)


def test_splitting_ten_thousand_statements_takes_well_under_a_second():
    chunks = []
    for i in range(2_000):
        chunks.append(f"INSERT INTO t VALUES ({i}, 'it''s; {i}', \"中文\"); -- c'{i}\n")
        chunks.append(f"UPDATE t SET b = '/* {i} */' /* real; comment */ WHERE a = {i};\n")
        chunks.append(f"CREATE TABLE t{i} (\n  a INT, # a\n  b VARCHAR(9)\n);\n")
        chunks.append(f"/*!40101 SET @x{i} = 1 */;\n")
        chunks.append(f"DELIMITER //\nCREATE PROCEDURE p{i}() BEGIN SELECT 1; END//\nDELIMITER ;\n")
    script = "".join(chunks)
    started = time.perf_counter()
    statements = split(script)
    elapsed = time.perf_counter() - started
    assert len(statements) == 10_000
    assert statements[-1].text == "CREATE PROCEDURE p1999() BEGIN SELECT 1; END"
    assert elapsed < 1.0, f"splitting 10,000 statements took {elapsed:.3f}s"


# --- data files --------------------------------------------------------------------------------------


def test_every_nasty_data_file_splits_into_statements_of_its_own_ftsplit_schemas():
    files = sorted(DATA.glob("*.sql"))
    assert len(files) >= 12
    for path in files:
        statements = split_statements(decode_sql_bytes(path.read_bytes(), source=path.name), source=path.name,
                                      include=lambda r: (r.name, (DATA / r.name).read_text(encoding="utf-8")))
        assert [s.sequence for s in statements] == list(range(1, len(statements) + 1)), path.name
        assert any(s.is_use and s.use_schema.startswith("ftsplit_") for s in statements), path.name
        assert statements[-1].text.startswith("DROP DATABASE"), path.name


# --- classify ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind", [
    ("CREATE TABLE t (a INT)", "DDL"),
    ("  -- note\n/* c */ alter table t add b int", "DDL"),
    ("DROP DATABASE x", "DDL"),
    ("TRUNCATE TABLE t", "DDL"),
    ("RENAME TABLE a TO b", "DDL"),
    ("/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x */", "DDL"),
    ("/*!40000 ALTER TABLE `t` DISABLE KEYS */", "DDL"),
    ("GRANT SELECT ON db.* TO u", "DDL"),
    ("INSERT INTO t VALUES (1)", "DML"),
    ("insert ignore into t values (1)", "DML"),
    ("UPDATE t SET a = 1", "DML"),
    ("DELETE FROM t", "DML"),
    ("REPLACE INTO t VALUES (1)", "DML"),
    ("LOAD DATA INFILE 'x' INTO TABLE t", "DML"),
    ("SET NAMES utf8mb4", "SESSION"),
    ("set @x = 1", "SESSION"),
    ("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */", "SESSION"),
    ("/*M!100616 SET NOTE_VERBOSITY=0 */", "SESSION"),
    ("USE `ft_db`", "SESSION"),
    ("SELECT 1", "OTHER"),
    ("(SELECT 1) UNION (SELECT 2)", "OTHER"),
    ("SHOW TABLES", "OTHER"),
    ("CALL p()", "UNKNOWN"),
    ("WITH a AS (SELECT 1) SELECT * FROM a", "UNKNOWN"),
    ("LOCK TABLES t WRITE", "REFUSED"),
    ("", "OTHER"),
])
def test_classify_recognises_ddl_dml_session_and_other(text: str, kind: str):
    assert classify(text) == kind
