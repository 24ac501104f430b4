"""The import graph, read from the source (every import, also those inside functions): no circle
between modules, and every import between layers goes down: main -> experiment_cli -> cli -> pipelines
-> components -> stages | cluster -> run_config | experiments -> features -> llm | ctr -> data -> artifacts -> base."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOTS = ("trackrec", "components", "pipelines")
# higher imports lower; llm and ctr are peers (neither imports the other), stages and cluster too
# (cluster calls a stage by name); every other trackrec
# module (config, errors, atomic, paths, ...) is the base
RANKS = {
    "trackrec.main": 11,
    "trackrec.experiment_cli": 10,
    "trackrec.cli": 9,
    "pipelines": 8,
    "components": 7,
    "trackrec.stages": 6,
    "trackrec.cluster": 6,
    "trackrec.run_config": 5,
    "trackrec.experiments": 5,
    "trackrec.features": 4,
    "trackrec.llm": 3,
    "trackrec.ctr": 3,
    "trackrec.data": 2,
    "trackrec.artifacts": 1,
}
BASE = 0


def modules() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in Path(root).rglob("*.py"):
            name = ".".join(path.with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    graph = defaultdict(set)
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target not in found and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in found and target != name:
                    graph[name].add(target)
    return graph


def layer(module: str) -> tuple[str, int]:
    for prefix, rank in RANKS.items():
        if module == prefix or module.startswith(prefix + "."):
            return prefix, rank
    return "base", BASE


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                on_stack.discard(member)
                component.append(member)
            on_stack.discard(node)
            if component:
                found.append(sorted([node, *component]))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others():
    assert circles(import_graph(modules())) == []


def test_every_import_between_layers_goes_down():
    upward = []
    for module, targets in import_graph(modules()).items():
        (group, rank) = layer(module)
        for target in targets:
            target_group, target_rank = layer(target)
            if target_group != group and target_rank >= rank:
                upward.append(f"{module} -> {target}")
    assert sorted(upward) == []


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    """A circle closed by an import inside a function body counts (most of the old ones were)."""
    package = tmp_path / "trackrec"
    package.mkdir()
    (package / "a.py").write_text("import trackrec.b\n")
    (package / "b.py").write_text("def f():\n    from trackrec.a import x\n")
    monkeypatch.chdir(tmp_path)
    assert circles(import_graph(modules())) == [["trackrec.a", "trackrec.b"]]


@pytest.mark.parametrize(
    "module",
    [
        "trackrec.run_config",
        "trackrec.stages.shards",
        "trackrec.stages.gather",
        "trackrec.stages.select_samples",
        "trackrec.stages.prepare_data",
    ],
)
def test_the_table_only_tasks_start_without_torch(module):
    """split_config, plan_shards, gather, select_samples and prepare_data's tasks (in one pass, or
    planned, sharded and joined) only read and write tables: importing torch
    (2-3 s) in each would cost every run's many gather tasks more than their work."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
