"""No harness module imports or uses another module's `_private` name.

A leading underscore says "not part of this module's contract": a name another module needs is
public, with a docstring. Checked on the AST of every module under harness/ (deferred imports
inside functions count too): `from harness.x import _y`, and `m._y` where `m` is a harness
module bound by an import. Dunder names (`__version__`, `__file__`) are public by convention.
"""
from __future__ import annotations

import ast

from test_layers import harness_modules


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_aliases(tree: ast.AST, modules: set) -> dict[str, str]:
    """The local names bound to harness modules by the file's imports: {local name: module}."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    bound[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` of a chain of attributes over a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def private_uses(name: str, tree: ast.AST, modules: set) -> list[str]:
    """Each private name of another harness module that the module `name` imports or reads."""
    found = []
    aliases = module_aliases(tree, modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in modules and node.module != name:
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            owner = dotted(node.value)
            module = aliases.get(owner) or (owner if owner in modules else None)
            if module and module != name:
                found.append(f"line {node.lineno}: {module}.{node.attr}")
    return found


def violations(sources: dict[str, str]) -> dict[str, list[str]]:
    modules = set(sources)
    found = {name: private_uses(name, ast.parse(text), modules) for name, text in sources.items()}
    return {name: uses for name, uses in found.items() if uses}


def test_no_module_uses_another_modules_private_names():
    sources = {name: path.read_text() for name, path in harness_modules().items()}
    assert violations(sources) == {}


def test_the_check_sees_each_way_of_reaching_a_private_name():
    sources = {
        "harness.a": "def _hidden(): pass\ndef shown(): pass\n",
        "harness.pkg.b": "_TABLE = {}\n",
        "harness.c": ("from harness import a\nfrom harness.a import _hidden, shown\nimport harness.pkg.b\n"
                      "from harness.pkg import b as bee\n\n"
                      "def f():\n    from harness.pkg.b import _TABLE\n    return a._hidden, harness.pkg.b._TABLE, "
                      "bee._TABLE, a.shown, a.__name__\n"),
        "harness.d": "from harness.d import _own\n_x = 1\nimport harness.d\nharness.d._x\n",  # its own: fine
    }
    assert violations(sources) == {"harness.c": [
        "line 2: from harness.a import _hidden", "line 7: from harness.pkg.b import _TABLE",
        "line 8: harness.a._hidden", "line 8: harness.pkg.b._TABLE", "line 8: harness.pkg.b._TABLE"]}


def test_no_module_reads_a_parsers_private_list_of_actions():
    """A command forwards the run options it got from the list `add_run_options` returns, not from
    argparse's private `parser._actions` (which holds whatever else the parser was given)."""
    found = [f"{name}:{node.lineno}" for name, path in harness_modules().items()
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and node.attr == "_actions"]
    assert found == []
