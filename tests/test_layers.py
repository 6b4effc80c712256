"""Dependencies run one way: deployments → flows → tasks → blocks → core, and no module cycle.

The import graph of the product packages is read from the source (every import, at module level or
inside a function: both are dependencies). ``tasks.core`` is the bottom layer and imports nothing of
the project; ``blocks`` may use only the core; ``tasks`` may use blocks and the core; ``flows`` anything
below it; the scripts in ``deployments/`` anything.
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


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


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
