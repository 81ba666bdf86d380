"""One home per small concept: a second definition in harness/ fails here, naming file:line.

- a sort key over versions (a function returning a tuple with a `Version(...)` in it), and any
  `def ...version_key`: harness/versions.py only;
- a package-name normaliser: none of its own anywhere (`re.sub(r"[-_.]+", ...)`,
  `.lower().replace("_", "-")`, a `def normalize`/`normal_name`): packaging.utils.canonicalize_name,
  or versions.requirement_name for a requirement string;
- a regex of requirements or pins (a compiled pattern with `==` in it): harness/versions.py only;
- the upstream-reference pattern (UPSTREAM_RE, a compiled `#(\\d+)`): harness/registry.py only;
- rate bounds (`NormalDist`, `1 - confidence`): harness/stats.py only.

Checked on the AST of every module (deferred imports and nested functions count too).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from test_layers import HARNESS

NORMALISER_NAMES = re.compile(r"^_?(normalize|normalise|normal_name|normalized_name|canonical_name)$")


def _strings(node: ast.AST) -> str:
    """The string constants of an expression, joined (a pattern may be built by `+`)."""
    return "".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def _is_call(node: ast.AST, attr: str, owner: str | None = None) -> bool:
    func = getattr(node, "func", None)
    if not (isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == attr):
        return False
    return owner is None or (isinstance(func.value, ast.Name) and func.value.id == owner)


def _version_sort_key(node: ast.AST) -> bool:
    """A function that returns a tuple holding a Version(...) call: a sort key over versions."""
    for ret in ast.walk(node):
        if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
            if any(isinstance(c, ast.Call) and getattr(c.func, "id", None) == "Version" for c in ast.walk(ret.value)):
                return True
    return False


def _lower_replace(node: ast.AST) -> bool:
    """`x.lower().replace("_", "-")` (or the other way round): a name normaliser of its own."""
    return (_is_call(node, "replace") and _is_call(node.func.value, "lower")
            and {_strings(a) for a in node.args} == {"_", "-"})


def findings(root: Path = HARNESS) -> dict[str, list[str]]:
    """{concept: ["file:line", ...]} of every place in `root` that defines one of the concepts."""
    found: dict[str, list[str]] = {"version sort key": [], "name normaliser": [], "pin regex": [],
                                   "upstream pattern": [], "rate bound": [], "python sort key": []}
    for path in sorted(root.rglob("*.py")):
        if "_bundled" in path.parts:
            continue
        where = path.relative_to(root.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            at = f"{where}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name.endswith("version_key") or _version_sort_key(node):
                    found["version sort key"].append(at)
                if node.name in PYTHON_KEY_NAMES:
                    found["python sort key"].append(at)
                if NORMALISER_NAMES.match(node.name):
                    found["name normaliser"].append(at)
            if _lower_replace(node) or (_is_call(node, "sub", "re") and node.args
                                        and _strings(node.args[0]) == "[-_.]+"):
                found["name normaliser"].append(at)
            if _is_call(node, "compile", "re") and node.args:
                pattern = _strings(node.args[0])
                if "==" in pattern:
                    found["pin regex"].append(at)
                if "#(\\d+)" in pattern:
                    found["upstream pattern"].append(at)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "UPSTREAM_RE" for t in node.targets):
                found["upstream pattern"].append(at)
            if (isinstance(node, (ast.Name, ast.alias)) and "NormalDist" in (getattr(node, "id", None),
                                                                             getattr(node, "name", None))) or (
                    isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub)
                    and getattr(node.left, "value", None) == 1 and getattr(node.right, "id", None) == "confidence"):
                found["rate bound"].append(at)
    return found


# The names the two Python-spec orders had (record.python_key, interpreters.sort_key) before one home.
PYTHON_KEY_NAMES = {"python_key", "sort_key", "python_sort_key"}
HOMES = {"version sort key": {"harness/versions.py"},
         "python sort key": {"harness/versions.py"}, "name normaliser": set(), "pin regex": {"harness/versions.py"},
         "upstream pattern": {"harness/registry.py"}, "rate bound": {"harness/stats.py"}}


def test_each_concept_is_defined_in_its_home_only():
    elsewhere = {concept: [at for at in places if at.split(":")[0] not in HOMES[concept]]
                 for concept, places in findings().items()}
    assert {concept: places for concept, places in elsewhere.items() if places} == {}


def test_each_home_holds_one_definition():
    found = findings()
    assert len(found["version sort key"]) == 1, found["version sort key"]
    assert len(found["python sort key"]) == 1, found["python sort key"]
    assert len(set(found["upstream pattern"])) == 1, found["upstream pattern"]  # UPSTREAM_RE = re.compile(...)
    assert len(found["pin regex"]) <= 2, found["pin regex"]  # what a requirement is, and a local file reference


def test_the_scan_sees_a_second_definition(tmp_path):
    """The checks are not vacuous: the shapes the concepts had in several places are each seen."""
    package = tmp_path / "harness"
    package.mkdir()
    (package / "copies.py").write_text('''
import re
from packaging.version import InvalidVersion, Version
PIN_RE = re.compile(r"^([A-Za-z0-9._-]+)\\s*==\\s*(\\S+)$")
LATEST_PIN_RE = re.compile(r"^(\\w+)==" + "latest" + "$")
UPSTREAM_RE = re.compile(r"([\\w.-]+/[\\w.-]+)#(\\d+)")
def _sort_key(v):
    try:
        return (0, Version(v))
    except InvalidVersion:
        return (-1, v)
def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()
def wheel_name(wheel):
    return wheel.split("-")[0].lower().replace("_", "-")
def sort_key(wanted):
    return tuple(int(x) for x in wanted.split(".") if x.isdigit())
def bound(k, n, confidence):
    from statistics import NormalDist
    return (1 - confidence) ** (1 / n)
''')
    found = findings(package)
    assert {concept: len(places) for concept, places in found.items()} == {
        "version sort key": 1, "name normaliser": 3, "pin regex": 2, "upstream pattern": 2, "rate bound": 2,
        "python sort key": 1}

