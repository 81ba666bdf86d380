"""A cached env is checked against its own files, not its record (harness/envs/integrity.py).

Real uv envs with six from the index; the tampering is what a careless user or the code under test
can do to an env: another release over a pin, a shadowing .pth or editable install,
a relinked interpreter."""
import json
import subprocess
from pathlib import Path

import pytest

from harness.envs import interpreters
from test_envs import build, imported_version, site_packages

SIX = ["six==1.16.0"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def env_root(env) -> Path:
    return Path(env.python).parent.parent


def uv_pip(env, *args: str) -> None:
    done = subprocess.run(["uv", "pip", "install", "--quiet", "--python", env.python, *args],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_another_release_over_a_pin_is_rebuilt_also_when_env_json_says_so(cache):
    first, _ = build(SIX)
    uv_pip(first, "six==1.17.0")
    marker = env_root(first) / "env.json"
    meta = json.loads(marker.read_text())
    meta["installed"]["six"] = "1.17.0"  # the record now agrees with the env: only the pin does not
    marker.write_text(json.dumps(meta))
    again, notes = build(SIX)
    assert not again.reused, notes
    assert notes[0] == f"env cache {env_root(first).name} is stale (six 1.17.0 installed, six==1.16.0 required): " \
                       f"rebuilding", notes
    assert imported_version(again, "six") == "1.16.0" and again.installed == {"six": "1.16.0"}


def shadow_with_pth(env, tmp_path) -> str:
    """A .pth no wheel installed that puts a directory with another six first on sys.path."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "six.py").write_text("__version__ = '0.0-shadow'\n")
    (site_packages(env) / "zz_shadow.pth").write_text(f"import sys; sys.path.insert(0, {str(shadow)!r})\n")
    return "zz_shadow.pth in site-packages is not installed by any distribution"


def shadow_with_editable(env, tmp_path) -> str:
    """An editable install of a project that calls itself six 1.16.0: the same name and version as recorded."""
    project = tmp_path / "six-project"
    project.mkdir()
    (project / "six.py").write_text("__version__ = '0.0-shadow'\n")
    (project / "pyproject.toml").write_text('[project]\nname = "six"\nversion = "1.16.0"\n'
                                            '[build-system]\nrequires = ["setuptools"]\n'
                                            'build-backend = "setuptools.build_meta"\n')
    uv_pip(env, "-e", str(project))
    return "six is an editable install"


@pytest.mark.fault("env integrity")
@pytest.mark.slow
@pytest.mark.parametrize("shadow", [shadow_with_pth, shadow_with_editable], ids=["pth", "editable"])
def test_a_shadow_of_a_package_under_test_makes_the_env_stale(cache, tmp_path, shadow):
    first, _ = build(SIX)
    why = shadow(first, tmp_path)
    assert imported_version(first, "six") == "0.0-shadow", "the shadow is what the env imports"
    again, notes = build(SIX)
    assert not again.reused and f"is stale ({why}): rebuilding" in notes[0], notes
    assert imported_version(again, "six") == "1.16.0"


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_an_env_whose_python_points_at_another_interpreter_is_rebuilt(cache):
    current = interpreters.find("current")
    others = [v for v in ("3.12", "3.13", "3.11", "3.10") if v != current.minor]
    other = next((found for found in map(_find, others) if found), None)
    if other is None:
        pytest.skip("needs a second Python minor version")
    first, _ = build(SIX, current)
    python = Path(first.python)
    python.unlink()
    python.symlink_to(other.path)  # pyvenv.cfg, env.json and the key still say current's version
    assert _runs(first.python) == other.version
    again, notes = build(SIX, current)
    assert not again.reused, notes
    assert f"is stale (its bin/python is Python {other.version}, the key {current.version}): rebuilding" in notes[0]
    assert _runs(again.python) == current.version


def _find(version: str):
    try:
        return interpreters.find(version)
    except Exception:  # noqa: BLE001 - not here
        return None


def _runs(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True).stdout.strip()
