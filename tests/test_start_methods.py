"""Every repro that starts processes through multiprocessing names its start method.

Python 3.14 made forkserver the default on Linux (fork before): a repro that relies on the
default would test another start method on 3.14, and a fork-only bug would look fixed there.
So a repro may create pools, processes or queues only from a context of a named method
(`multiprocessing.get_context("fork")`, `ProcessPoolExecutor(mp_context=...)`).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPROS = sorted((ROOT / "repros").glob("*.py"))
# What starts processes (or makes objects bound to a start method) from the default context.
DEFAULT_CONTEXT = {"Pool", "Process", "Queue", "SimpleQueue", "JoinableQueue", "Manager", "Barrier", "Event",
                   "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Value", "Array"}


def unnamed_start_methods(source: str) -> list[str]:
    """Each use of multiprocessing or a process pool that does not name a start method, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("multiprocessing", "multiprocessing.pool"):
            for alias in node.names:
                if alias.name in DEFAULT_CONTEXT:
                    found.append(f"{node.lineno}: from {node.module} import {alias.name} (the default context)")
        if not isinstance(node, ast.Call):
            continue
        name = _called(node.func)
        if name.endswith("ProcessPoolExecutor") and not any(k.arg == "mp_context" for k in node.keywords):
            found.append(f"{node.lineno}: {name}() without mp_context")
        elif name.endswith("get_context") and not (node.args or node.keywords):
            found.append(f"{node.lineno}: {name}() without a method (the platform's default)")
        elif name.startswith("multiprocessing.") and name.split(".")[-1] in DEFAULT_CONTEXT:
            found.append(f"{node.lineno}: {name}() from the default context")
    return found


def _called(func) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


@pytest.mark.parametrize("path", REPROS, ids=[p.stem for p in REPROS])
def test_repro_names_its_start_method(path):
    assert unnamed_start_methods(path.read_text()) == []


def test_the_repros_are_checked():
    assert len(REPROS) >= 5
    # lancedb's repro is the one that starts processes: it passes get_context(method) to its pool
    assert any("mp_context=multiprocessing.get_context(method)" in p.read_text() for p in REPROS)


@pytest.mark.parametrize("source", [
    "from concurrent.futures import ProcessPoolExecutor\nProcessPoolExecutor(2)",
    "import concurrent.futures\nconcurrent.futures.ProcessPoolExecutor(max_workers=2)",
    "import multiprocessing\nmultiprocessing.Pool(2)",
    "import multiprocessing\nmultiprocessing.Process(target=print).start()",
    "import multiprocessing\nmultiprocessing.get_context().Pool(2)",
    "from multiprocessing import Pool\nPool(2)",
    "from multiprocessing.pool import Pool\nPool(2)",
])
def test_a_default_start_method_is_found(source):
    assert unnamed_start_methods(source)


@pytest.mark.parametrize("source", [
    "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor\n"
    "ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('fork'))",
    "import multiprocessing\nmultiprocessing.get_context('spawn').Pool(2)",
    "from concurrent.futures import ThreadPoolExecutor\nThreadPoolExecutor(4)",
    "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'pass'])",
])
def test_a_named_start_method_or_no_process_passes(source):
    assert unnamed_start_methods(source) == []
