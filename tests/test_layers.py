"""The harness's import graph: no circle, and no import from a lower layer back up.

Every import counts, also one inside a function (a deferred import hides a circle; it does
not remove it). `python -m pytest tests/test_layers.py -q` checks; `python tests/test_layers.py`
prints the graph by layer.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"

# Lowest first. A module may import modules of its own layer or of lower layers only.
LAYERS = [
    # what everything uses; the child side among them: harness.attempt.CHILD_CODE
    ["harness", "harness.errors", "harness.paths", "harness.files", "harness.stats", "harness.verdict",
     "harness.protocol", "harness.kit", "harness.child", "harness.pidns", "harness.procs", "harness.guardian",
     "harness.progress", "harness.versions", "harness.record", "harness.seal", "harness.results", "harness.text",
     "harness.github"],
    # the facts: bugs, requirements, interpreters, the index
    ["harness.registry", "harness.rate_file", "harness.skeleton", "harness.envs", "harness.envs.requirements",
     "harness.envs.lockfiles", "harness.envs.uvbin", "harness.envs.interpreters", "harness.envs.package_index"],
    # building envs, running one attempt
    ["harness.envs.holds", "harness.envs.integrity", "harness.envs.seeds", "harness.envs.venv", "harness.envs.checkout",
     "harness.envs.gitref", "harness.attempt"],
    # where attempts run: the executor contract and its implementations; services on 127.0.0.1
    ["harness.executors", "harness.executors.base", "harness.executors.local"],
    ["harness.executors.docker", "harness.executors.docker.engine", "harness.executors.docker.image",
     "harness.executors.docker.interpreters", "harness.executors.docker.runner",
     "harness.executors.docker.executor", "harness.executors.docker.recipes", "harness.executors.docker.__main__",
     "harness.services", "harness.services.moto", "harness.services.moto_app"],
    # one cell to a verdict; the matrix of cells; many cells in one run
    ["harness.cell"],
    ["harness.matrix", "harness.runner"],
    # what is built on runs: bisect, reports, benchmarks
    ["harness.bisect", "harness.bisect.search", "harness.bisect.points", "harness.bisect.cache",
     "harness.bisect.run", "harness.bisect.git",
     "harness.story", "harness.osv", "harness.outputs", "harness.outputs.readme", "harness.outputs.badges",
     "harness.outputs.junit", "harness.outputs.pages", "harness.report", "harness.table", "harness.watch",
     "harness.bench"],
    # the command line
    ["harness.cli", "harness.cli.options", "harness.cli.answer", "harness.cli.run", "harness.cli.audit",
     "harness.cli.bisect", "harness.cli.matrix", "harness.cli.main", "harness.pytest_plugin", "harness.pytest_marker",
     "harness.nox_sessions"],
    ["harness.__main__"],
]
LAYER_OF = {module: number for number, modules in enumerate(LAYERS) for module in modules}


def module_name(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HARNESS.rglob("*.py")) if "_bundled" not in p.parts}


def imports_of(path: Path, known: set) -> set:
    """The harness modules a file imports (`from harness.x import y` counts y if it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    # `import harness.a.b` also imports harness.a: the packages' __init__ run, but they hold no code
    # that imports upwards (checked as modules of their own), so only the named modules count.
    return {name for name in found if name in known}


def graph() -> dict[str, set]:
    modules = harness_modules()
    return {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}


def circles(edges: dict[str, set]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    assert sorted(set(harness_modules()) - set(LAYER_OF)) == []


def test_no_import_circle():
    assert circles(graph()) == []


def test_no_import_from_a_lower_layer_back_up():
    upward = [f"{a} (layer {LAYER_OF[a]}) imports {b} (layer {LAYER_OF[b]})"
              for a, targets in graph().items() for b in sorted(targets)
              if a in LAYER_OF and b in LAYER_OF and LAYER_OF[b] > LAYER_OF[a]]
    assert upward == []


def test_the_checker_sees_a_circle_and_an_upward_import():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "harness.cell" in imports_of(HARNESS / "matrix.py", set(harness_modules()))


if __name__ == "__main__":
    edges = graph()
    for number, modules in enumerate(LAYERS):
        for module in modules:
            if module in edges:
                print(f"{number} {module:42} -> {', '.join(sorted(edges[module])) or '-'}")
    print("circles:", circles(edges) or "none")
