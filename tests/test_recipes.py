"""Interpreters from image recipes (harness/executors/docker/recipes.py): the spec, the recipe's
hash, the compile step on a tiny fake source tree (seconds), and the real free-threaded image
(run only where it is already built: building it takes minutes, so CI does not)."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from harness.cell import Cell, Options, run_cell
from harness.envs import interpreters, venv
from harness.errors import UsageError
from harness.executors.docker import engine as docker_engine
from harness.executors.docker import image as docker_image
from harness.executors.docker import recipes
from harness.executors.docker.interpreters import ImageInterpreter
from harness.versions import python_key


@pytest.mark.parametrize("spec, recipe", [
    ("debian-trixie:3.13", ("trixie", "3.13", False)),
    ("debian-trixie:3.13t", ("trixie", "3.13", True)),
    ("3.13t", ("trixie", "3.13", True)),        # the first suite that has it
    ("debian-sid:3.14", ("sid", "3.14", False)),
    ("3.14t", ("sid", "3.14", True)),
    ("debian-trixie:3.13.5t", ("trixie", "3.13", True)),
])
def test_a_spec_names_a_recipe(spec, recipe):
    found = recipes.parse(spec)
    assert (found.suite, found.minor, found.free_threaded) == recipe
    assert interpreters.image_python(spec) is not None


@pytest.mark.parametrize("spec, problem", [
    ("debian-foo:3.13", "unknown image recipe"),
    ("debian-trixie:3.14", "has no Python 3.14"),
    ("3.15t", "no image recipe has Python 3.15"),
    ("debian-trixie:3.13.4t", "is 3.13.5, not 3.13.4"),
    ("3.11", "names no image recipe"),
])
def test_a_bad_spec_is_one_line(spec, problem):
    with pytest.raises(UsageError, match=problem):
        recipes.parse(spec)


def test_host_versions_are_no_image_pythons():
    for spec in ("3.11", "3.11.7", "current", "3.13"):
        assert interpreters.image_python(spec) is None


def test_specs_sort_by_version_then_build():
    specs = ["debian-sid:3.14t", "3.13", "3.9", "debian-trixie:3.13t", "3.13.0", "debian-sid:3.14", "3.10.13",
             "debian-trixie:3.13"]
    assert sorted(specs, key=python_key) == [
        "3.9", "3.10.13", "3.13", "debian-trixie:3.13", "3.13.0", "debian-trixie:3.13t", "debian-sid:3.14",
        "debian-sid:3.14t"]
    assert python_key("current") < python_key("3.9")   # no crash on a non-version


def test_the_tag_is_the_recipe_hash():
    tags = {recipes.parse(s).tag for s in ("debian-trixie:3.13", "debian-trixie:3.13t", "debian-sid:3.13",
                                           "debian-sid:3.14t")}
    assert len(tags) == 4
    assert recipes.parse("3.13t").tag == recipes.parse("debian-trixie:3.13.5t").tag
    # the pinned source is part of the recipe: another tarball is another image
    before = recipes.parse("3.13t").tag
    version, url, sha = recipes.SOURCES["3.13"]
    try:
        recipes.SOURCES["3.13"] = (version, url, "0" * 64)
        assert recipes.parse("3.13t").tag != before
    finally:
        recipes.SOURCES["3.13"] = (version, url, sha)


def test_free_threaded_interpreters_install_wheels_only():
    ft = ImageInterpreter("/usr/local/bin/python3.13t", "3.13.5", image="i", image_id="sha256:1",
                          free_threaded=True, recipe="debian-trixie:3.13t")
    gil = ImageInterpreter("/usr/bin/python3.13", "3.13.5", image="i", image_id="sha256:1")
    assert ft.wheels_only and not gil.wheels_only
    assert ft.cell_python == "debian-trixie:3.13t" and gil.cell_python == "3.13.5"
    assert ImageInterpreter.from_record(ft.describe()) == ft
    assert venv.env_key(ft, ["six"], None) != venv.env_key(gil, ["six"], None)
    assert "free-threaded" in ft.label


# ------------------------------------------------------------------ the compile step, with a fake source

FAKE_CONFIGURE = """#!/bin/sh
# a stand-in for CPython's configure: writes a Makefile that installs a fake python3.13t
prefix=; for arg; do case $arg in --prefix=*) prefix=${arg#--prefix=};; esac; done
echo "$@" | grep -q -- --disable-gil || { echo "configure: --disable-gil missing" >&2; exit 1; }
[ -z "$FAIL" ] || { echo "configure: error: no C compiler (as asked)" >&2; exit 1; }
printf 'all:\\n\\ttrue\\naltinstall:\\n' > Makefile
printf '\\tmkdir -p %s/bin %s/lib/python3.13t/test\\n\\tcp fake-python %s/bin/python3.13t\\n' \\
  "$prefix" "$prefix" "$prefix" >> Makefile
"""
FAKE_PYTHON = """#!/bin/sh
echo "3.13.5 fake free-threading build"
"""


def _fake_tarball(directory: Path, fail: bool) -> Path:
    path = directory / "python3.13_3.13.5.orig.tar.xz"   # gzip inside: tar reads the content, not the name
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("configure", FAKE_CONFIGURE.replace('[ -z "$FAIL" ]', f'[ -z "{"1" if fail else ""}" ]')),
                           ("fake-python", FAKE_PYTHON)):
            data = text.encode()
            info = tarfile.TarInfo(f"Python-3.13.5/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def builder():
    """An image with make (the compile step's tools but a compiler): the base image plus make."""
    try:
        engine = docker_engine.client()
        tag = docker_image.ensure_base_image(engine, include=("make",))
    except UsageError as exc:
        pytest.skip(f"no Docker engine or image: {exc}")
    return engine, engine.images.get(tag).id


def test_compile_runs_configure_make_altinstall_without_network(builder, tmp_path):
    engine, image_id = builder
    out = tmp_path / "out"
    printed = recipes.compile_cpython(engine, image_id, _fake_tarball(tmp_path, fail=False), out,
                                      recipes.parse("3.13t"))
    assert (out / "bin" / "python3.13t").is_file()
    assert not (out / "lib" / "python3.13t" / "test").exists()   # trimmed
    assert "fake free-threading build" in printed


def test_a_failed_compile_step_says_which_and_why(builder, tmp_path):
    engine, image_id = builder
    with pytest.raises(UsageError, match=r"configure failed:.*no C compiler \(as asked\)"):
        recipes.compile_cpython(engine, image_id, _fake_tarball(tmp_path, fail=True), tmp_path / "out",
                                recipes.parse("3.13t"))


def test_a_source_with_another_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    tarball = _fake_tarball(tmp_path, fail=False)
    with pytest.raises(UsageError, match="sha256"):
        recipes.fetch_source(tarball.as_uri(), "0" * 64)
    assert not list((tmp_path / "sources").glob("*"))


# ------------------------------------------------------------------ the real free-threaded image

@pytest.fixture(scope="module")
def free_threaded_image():
    """The image of debian-trixie:3.13t if it is built (building it takes ~6 min on 2 cores)."""
    recipe = recipes.parse("debian-trixie:3.13t")
    try:
        engine = docker_engine.client()
        engine.images.get(recipe.tag)
    except Exception:  # noqa: BLE001 - no engine, or the image is not built here
        pytest.skip(f"image {recipe.tag} is not built: python -m harness.executors.docker build-image "
                    f"--python {recipe.name} (about 6 minutes)")
    return recipe


@pytest.mark.slow
def test_a_free_threaded_cell_records_the_gil_off(free_threaded_image, tmp_path, monkeypatch):
    """A stdlib-only trigger on 3.13t: the cell runs in the recipe's image and its record says which
    recipe and that the GIL stayed off in the child."""
    monkeypatch.setenv("REPRO_CACHE_DIR", os.environ.get("REPRO_CACHE_DIR") or str(tmp_path))
    record = run_cell(Cell("beam-py311-gc-deadlock", "cpython-trigger", "debian-trixie:3.13t"),
                      Options(attempts=1, control_attempts=0))
    assert record["executor"]["recipe"] == "debian-trixie:3.13t", record.get("reason")
    assert record["interpreter"]["free_threaded"] and record["python"] == "3.13.5"
    assert record["gil"]["state"] == "off" and record["gil"]["abiflags"] == "t"
    assert record["verdict"] == "absent", record["reason"]


# ------------------------------------------------------------------ the GIL as the child saw it

def _attempt(gil: dict):
    from harness.attempt import Attempt

    return Attempt("clean", "no sign of the bug", 0.1, {"gil": gil})


FT_OFF = {"free_threaded_build": True, "abiflags": "t", "enabled": False}
FT_ON = {"free_threaded_build": True, "abiflags": "t", "enabled": True}
DEFAULT = {"free_threaded_build": False, "abiflags": "", "enabled": True}


def test_an_extension_that_re_enabled_the_gil_is_its_own_fact():
    from harness.cell import gil_summary
    from harness.record import python_label as _python_label

    assert gil_summary([_attempt(FT_OFF), _attempt(FT_OFF)])["state"] == "off"
    re_enabled = gil_summary([_attempt(FT_OFF), _attempt(FT_ON)])
    assert re_enabled["state"] == "re-enabled" and re_enabled["attempts_with_gil"] == 1
    assert gil_summary([_attempt(DEFAULT)])["state"] == "on"
    assert gil_summary([]) is None
    base = {"python": "3.13.5", "python_requested": "3.13t"}
    assert _python_label({**base, "gil": gil_summary([_attempt(FT_OFF)])}) == "3.13.5t"
    assert _python_label({**base, "gil": re_enabled}) == "3.13.5t (GIL re-enabled)"
    assert _python_label({**base, "gil": gil_summary([_attempt(DEFAULT)])}) == "3.13.5"


def test_the_child_reports_the_gil_of_its_interpreter():
    import sys
    import sysconfig

    from harness.child import gil_state

    state = gil_state()
    assert state["free_threaded_build"] == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert state["enabled"] == (sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True)
