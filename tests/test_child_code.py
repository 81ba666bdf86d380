"""The child side is exactly harness.attempt.CHILD_CODE, imports only the stdlib, and runs on Python 3.9.

The closure is read from the source (every import statement, also those inside functions), starting
from harness.child (the program an attempt runs) and harness.kit (what repros import): a harness
module it reaches that CHILD_CODE does not copy would be missing in the child, one CHILD_CODE copies
that nothing reaches is dead weight, and a third-party import would come from the env under test.
"""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import FAULT_REPROS, skip_without_python
from harness.attempt import CHILD_CODE, HARNESS_DIR, install_child_code

ROOTS = ["child.py", "kit.py"]
FLOOR = "3.9"  # harness.envs.interpreters.FLOOR
REPRO_DIRS = [HARNESS_DIR.parent / "repros", FAULT_REPROS, Path(__file__).parent / "docker_repros"]


def imported_names(path: Path) -> set:
    """Every module an import statement of the file names (`from harness import kit` names harness.kit)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: a relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "harness")
    return names


def harness_file(name: str):
    """harness.X -> "X.py" when harness/X.py exists; None for the package itself or a name in it."""
    parts = name.split(".")
    path = "/".join(parts[1:]) + ".py"
    return path if parts[0] == "harness" and len(parts) > 1 and (HARNESS_DIR / path).is_file() else None


def closure(roots: list) -> tuple:
    """(the harness files reached from `roots`, the other top-level modules they import)."""
    reached, others, todo = set(), set(), list(roots)
    while todo:
        current = todo.pop()
        if current in reached:
            continue
        reached.add(current)
        for name in imported_names(HARNESS_DIR / current):
            found = harness_file(name)
            if found:
                todo.append(found)
            elif name.split(".")[0] != "harness":
                others.add(name.split(".")[0])
    return reached, others


def test_the_child_closure_is_exactly_child_code():
    reached, _ = closure(ROOTS)
    assert sorted(reached) == sorted(CHILD_CODE)


def test_the_child_side_imports_only_the_stdlib():
    _, others = closure(ROOTS)
    assert others - sys.stdlib_module_names == set()


def test_repros_import_only_the_child_side_of_the_harness():
    """A repro runs in the child: a harness module outside CHILD_CODE is not on its path there."""
    for path in (p for folder in REPRO_DIRS for p in sorted(folder.glob("*.py"))):
        wanted = {harness_file(name) for name in imported_names(path) if name.startswith("harness.")}
        assert wanted - {None} <= set(CHILD_CODE), path


def test_the_closure_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    """The check itself: a lazy import of a parent-side module from a child module is found."""
    copy = tmp_path / "harness"
    copy.mkdir()
    for name in CHILD_CODE:
        (copy / name).write_text((HARNESS_DIR / name).read_text())
    (copy / "text.py").write_text("")
    (copy / "kit.py").write_text((HARNESS_DIR / "kit.py").read_text() + "\n\ndef f():\n    from harness import text\n")
    monkeypatch.setattr(sys.modules[__name__], "HARNESS_DIR", copy)
    assert closure(ROOTS)[0] == set(CHILD_CODE) | {"text.py"}


def test_the_child_side_imports_on_python_3_9_with_nothing_but_its_copy(tmp_path):
    """The copy an attempt gets (install_child_code), imported by 3.9 without site-packages (-S)."""
    skip_without_python(FLOOR)
    from harness.envs import interpreters

    lib = install_child_code(tmp_path)
    modules = ", ".join(f"harness.{name[:-3]}" for name in CHILD_CODE)
    code = (f"import sys; sys.path.insert(0, {str(lib)!r}); import {modules}; import harness; "
            "print(sys.version_info[:2], harness.__file__)")
    out = subprocess.run([interpreters.find(FLOOR).path, "-S", "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(")")[0] == "(3, 9" and str(lib) in out.stdout, out.stdout
