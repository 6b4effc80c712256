"""Dependencies run one way: deployments → flows → tasks → blocks → core, no module cycle and no cycle
between capability packages; records are read by attribute outside the store and the execution.

The import graph of the product packages is read from the source (every import, at module level or
inside a function: both are dependencies). ``tasks.core`` is the bottom layer and imports nothing of
the project; ``blocks`` may use only the core; ``tasks`` may use blocks and the core; ``flows`` anything
below it; the scripts in ``deployments/`` anything. Within ``tasks`` each capability (``tasks.sql``,
``tasks.steps``, …) is a package: two of them never import each other, through any chain of modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT

PACKAGES = ("flows", "tasks", "blocks", "deployments")


def layer(module: str) -> int:
    if module == "tasks.core" or module.startswith("tasks.core."):
        return 0
    return {"blocks": 1, "tasks": 2, "flows": 3, "deployments": 4}[module.split(".")[0]]


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for package in PACKAGES for p in (PROJECT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                while target and target not in modules:  # `from pkg import module` or a name in a module
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] in PACKAGES:
                    graph[name].add(target)
                    break
    return graph


def test_no_import_runs_from_a_lower_layer_to_a_higher_one() -> None:
    upward = sorted(f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
                    for a, targets in import_graph().items() for b in targets if layer(b) > layer(a))
    assert upward == []


def cycles_of(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk finds (none: the graph runs one way)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles_of(import_graph()) == []


def capability(module: str) -> str:
    """``tasks.sql.step`` → ``tasks.sql``; other packages count as one each (``flows``, ``blocks``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "tasks" and len(parts) > 2 else parts[0]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if capability(module) != capability(target):
                packages.setdefault(capability(module), set()).add(capability(target))
    return packages


def test_capability_packages_import_each_other_one_way() -> None:
    cycles = cycles_of(package_graph(import_graph()))
    assert cycles == [], "capability packages in a loop (the modules that tie them: test_layers.import_graph)"


def test_the_package_check_sees_a_cycle_between_capabilities() -> None:
    """A function-level import from a step contract back into a capability is a cycle like any other."""
    graph = {"tasks.steps.base": {"tasks.core.steps"}, "tasks.cache.step": {"tasks.steps.base"},
             "tasks.steps.registry": {"tasks.cache.step"}, "tasks.core.steps": set()}
    assert cycles_of(package_graph(graph)) == [["tasks.cache", "tasks.steps", "tasks.cache"]]
    del graph["tasks.steps.registry"]
    assert cycles_of(package_graph(graph)) == []


#: Where records are rows: the store builds them, the execution owns the run.
ROW_READERS = ("tasks/store/", "tasks/execution/")
#: Columns that documents the tool publishes or reads share with the metadata tables: the report's JSON (CICD
#: reads it), ``info --json``, a step's details, the folders a step checks, a config file's step (``class_name``);
#: indexing those is reading a document.
DOCUMENT_KEYS = {"current_version", "schema_version", "version_origin", "state", "configs_dir", "sql_root",
                 "affected_rows", "error_code", "sha256", "version", "result", "metadata", "detail", "summary",
                 "cutpoint", "status", "id", "event", "actor", "duration", "class_name"}


def record_columns() -> set[str]:
    from tasks.store import schema

    tables = (schema.upgrade_execution, schema.step_execution, schema.upgrade_breakpoint, schema.upgrade_report,
              schema.site_state, schema.site_cutpoint, schema.site_history, schema.site_script,
              schema.sql_execution_record)
    return {c.name for t in tables for c in t.columns}


def column_reads(tree: ast.AST, columns: set[str]) -> list[tuple[int, str]]:
    """``x["column"]``, ``x.get("column")`` and ``json.loads`` of a stored column (by key or attribute)."""
    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant)):
            key = node.args[0].value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "loads"
              and node.args and isinstance(node.args[0], ast.Attribute)
              and node.args[0].attr in {"environment", "waivers", "result", "context_data", "report_content"}):
            key = node.args[0].attr
        if isinstance(key, str) and key in columns:
            found.append((node.lineno, key))
    return found


def test_no_module_outside_the_store_and_the_execution_reads_a_record_by_column_name() -> None:
    from tasks.execution.reporting import RunReport
    from tasks.store.records import Execution, StepRun

    report = RunReport(execution=Execution.from_row({"execution_id": "E", "site_id": "S", "step_type": "c",
                                                     "source_version": "1", "target_version": "2",
                                                     "status": "SUCCESS"}),
                       steps=[StepRun(step_id="s", step_key="1:s", status="SUCCESS")], status="SUCCESS").to_json()
    columns = record_columns() - DOCUMENT_KEYS - {*report, *report["step_results"][0]}
    assert {"step_type", "error_message", "context_data", "sql_file_name", "report_content"} <= columns
    reads = [f"{path.relative_to(PROJECT)}:{line}: {key}"
             for package in PACKAGES for path in sorted((PROJECT / package).rglob("*.py"))
             if not str(path.relative_to(PROJECT)).startswith(ROW_READERS)
             for line, key in column_reads(ast.parse(path.read_text(encoding="utf-8")), columns)]
    assert reads == []


def test_the_record_check_sees_column_reads() -> None:
    code = 'e["step_type"]\nbp.get("context_data")\njson.loads(row.result)\nreport["status"]\n'
    assert column_reads(ast.parse(code), record_columns() - {"status"}) == [
        (1, "step_type"), (2, "context_data"), (3, "result")]


def test_the_graph_sees_the_packages_it_checks() -> None:
    graph = import_graph()
    assert "tasks.core.errors" in graph and "flows.cli" in graph
    assert "tasks.core.errors" in graph["tasks.sql.executor"] or any(
        t.startswith("tasks.core") for t in graph["tasks.sql.executor"])


def test_step_modules_import_their_parameters_without_the_runtime() -> None:
    """`validate` and `plan` import step modules for their parameters: drivers and clients load in run()."""
    from tasks.steps.builtins import BUILTIN_STEPS

    modules = sorted({path.partition(":")[0] for path in BUILTIN_STEPS})
    heavy = ("sqlalchemy", "pymysql", "redis", "httpx", "tenacity", "prefect", "clickhouse_connect", "kazoo",
             "paramiko")
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            f"print(sorted(h for h in {heavy!r} if h in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_tests_mirror_the_code() -> None:
    """A capability's tests live in tests/tasks/<capability>/ beside no other: a newcomer finds them by the path."""
    tests = PROJECT / "tests" / "tasks"
    loose = sorted(path.name for path in tests.glob("test_*.py"))
    assert not loose, f"tests directly under tests/tasks (move them to their capability's folder): {loose}"
    strays = sorted(str(path.relative_to(tests)) for path in tests.rglob("test_*.py")
                    if not (PROJECT / "tasks" / path.parent.relative_to(tests)).is_dir())
    assert not strays, f"test folders that name no package under tasks/: {strays}"


#: Where a run's settings may be built from the environment: the entry points (the CLI's commands, the flows'
#: bodies), the definition, and the documented defaults of library callers that give none (a service opened
#: without a URL, a doctor or rollback called bare, SiteResources built without the run's, a plan built without
#: its SQL root). Anything deeper reads the run's object: ``ctx.settings`` in a step, a parameter in an engine.
SETTINGS_READERS = {"tasks/core/settings.py", "flows/cli.py", "flows/runner.py", "flows/rollback.py",
                    "tasks/execution/service.py", "tasks/execution/doctor.py", "tasks/execution/rollback.py",
                    "tasks/site/resources.py", "tasks/planning/conventions.py"}


def test_settings_are_built_only_where_a_run_starts() -> None:
    callers = sorted(f"{path.relative_to(PROJECT)}:{node.lineno}"
                     for package in PACKAGES for path in sorted((PROJECT / package).rglob("*.py"))
                     if str(path.relative_to(PROJECT)) not in SETTINGS_READERS
                     for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", ""))
                     in ("get_settings", "Settings"))
    assert callers == [], "read the run's settings (ctx.settings, a parameter) instead"
