"""Environments: interpreter discovery, the content-hash cache and its file lock (real uv, real index)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.envs import interpreters, venv
from harness.envs.requirements import merge_requirements
from harness.envs.seeds import era_seeds
from harness.errors import EnvBuildError, UsageError

ROOT = Path(__file__).resolve().parent.parent


def test_finds_an_interpreter_by_minor_and_exact_version():
    current = interpreters.find("current")
    assert interpreters.find(current.minor).minor == current.minor
    assert interpreters.find(current.version).version == current.version


def test_missing_interpreter_says_where_it_looked():
    with pytest.raises(UsageError, match=r"no Python 3\.99 interpreter found \(looked on PATH"):
        interpreters.find("3.99")


def test_key_depends_on_interpreter_pins_and_date():
    py = interpreters.find("current")
    base = venv.env_key(py, ["a==1"], None)
    assert base == venv.env_key(py, ["a==1"], None)
    assert base != venv.env_key(py, ["a==2"], None)
    assert base != venv.env_key(py, ["a==1"], "2024-01-01")


def test_keys_of_host_envs_are_those_of_the_existing_cache():
    """Keys as the harness has always computed them: a changed key would rebuild every cached env."""
    py = interpreters.Interpreter("/usr/bin/python3.11", "3.11.2")
    assert venv.env_key(py, ["six==1.16.0"], None) == "8113b9882d4da301fa09"
    # An env of a past date on <= 3.11 now holds its era's pip and setuptools (harness/envs/seeds.py):
    # a new key by design, so an old env without them is rebuilt, not reused.
    assert venv.env_key(py, ["six==1.16.0", "a==1"], "2024-06-01") == "1bbd764b1fd0faed8961"
    # An env's marker records describe(); read back, it names the same interpreter, hence the same key.
    assert interpreters.Interpreter.from_record(py.describe()) == py and py.on_host


def test_merge_replaces_by_name():
    merged = merge_requirements(["deltalake", "pyarrow"], ["DeltaLake==0.20.1", "numpy<2"])
    assert merged == ["DeltaLake==0.20.1", "numpy<2", "pyarrow"]


def test_unsatisfiable_requirement_is_an_env_build_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    with pytest.raises(EnvBuildError, match="cannot install"):
        venv.ensure_env(interpreters.find("current"), ["six==0.0.0.1"])
    assert not [p for p in (tmp_path / "envs").iterdir() if p.is_dir()], "a failed build leaves nothing"


BUILD = """
import json, sys
from harness.envs import venv
from harness.envs import interpreters
env = venv.ensure_env(interpreters.find("current"), ["six==1.16.0"], "2024-06-01")
print(json.dumps({"python": env.python, "reused": env.reused}))
"""


def test_concurrent_builds_share_one_env(tmp_path):
    env = {**os.environ, "REPRO_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert len({o["python"] for o in outs}) == 1
    assert sorted(o["reused"] for o in outs) == [False, True, True], "exactly one process built the env"
    python = outs[0]["python"]
    version = subprocess.run([python, "-c", "import six; print(six.__version__)"], capture_output=True, text=True)
    assert version.stdout.strip() == "1.16.0"


# A cached env is reused only while it is what its env.json records; tampered with, it is rebuilt.
SIX_AND_INICONFIG = ["iniconfig==2.0.0", "six==1.16.0"]


def build(requirements=SIX_AND_INICONFIG, interpreter=None, uv_for=None):
    """ensure_env, and what it told on_build."""
    notes = []
    env = venv.ensure_env(interpreter or interpreters.find("current"), requirements, on_build=notes.append,
                          uv_for=uv_for)
    return env, notes


def site_packages(env) -> Path:
    [site] = Path(env.python).parent.parent.glob("lib/python*/site-packages")
    return site


def imported_version(env, module: str) -> str:
    """The version of `module` as the env imports it (its own __version__ or its distribution's), or the error."""
    code = (f"import importlib.metadata as m, {module}; "
            f"print(getattr({module}, '__version__', None) or m.version({module!r}))")
    done = subprocess.run([env.python, "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_an_untouched_env_is_reused(cache):
    first, _ = build()
    marker = Path(first.python).parent.parent / "env.json"
    written = marker.stat().st_mtime_ns
    again, notes = build()
    assert (first.reused, again.reused) == (False, True) and notes == [], notes
    assert again.python == first.python and again.installed == {"iniconfig": "2.0.0", "six": "1.16.0"}
    assert marker.stat().st_mtime_ns == written, "nothing rebuilt"


@pytest.mark.fault("fooled: a tampered env cache")
@pytest.mark.slow
def test_another_release_installed_into_the_env_is_rebuilt(cache):
    first, _ = build()
    done = subprocess.run(["uv", "pip", "install", "--quiet", "--python", first.python, "six==1.17.0"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and imported_version(first, "six") == "1.17.0", done.stderr
    again, notes = build()
    key = Path(first.python).parent.parent.name
    assert not again.reused and again.installed["six"] == "1.16.0"
    assert notes[0] == f"env cache {key} is stale (six 1.17.0 installed, 1.16.0 recorded): rebuilding", notes
    assert imported_version(again, "six") == "1.16.0"
    assert build()[0].reused


@pytest.mark.fault("fooled: a tampered env cache")
@pytest.mark.slow
def test_a_truncated_env_json_is_rebuilt(cache):
    first, _ = build()
    marker = Path(first.python).parent.parent / "env.json"
    marker.write_text(marker.read_text()[:40])
    again, notes = build()
    assert not again.reused and again.installed == first.installed
    assert "is stale (env.json is unreadable or incomplete: JSONDecodeError): rebuilding" in notes[0], notes
    assert json.loads(marker.read_text())["installed"] == first.installed


@pytest.mark.fault("fooled: a tampered env cache")
@pytest.mark.slow
def test_a_deleted_package_directory_is_rebuilt(cache):
    first, _ = build()
    shutil.rmtree(site_packages(first) / "iniconfig")
    assert "No module named 'iniconfig'" in imported_version(first, "iniconfig")
    again, notes = build()
    assert not again.reused and "is stale (iniconfig: iniconfig/__init__.py is missing): rebuilding" in notes[0], notes
    assert imported_version(again, "iniconfig") == "2.0.0"


def edit(path: Path, text: str, in_place: bool = False) -> None:
    """Append to the file; unless in_place, as a new file (uv hard-links env files to its cache: an edit in
    place edits the cache too)."""
    if not in_place:
        content = path.read_bytes()
        path.unlink()
        path.write_bytes(content)
    with open(path, "a") as handle:
        handle.write(text)


@pytest.mark.fault("fooled: a tampered env cache")
@pytest.mark.slow
def test_a_file_of_a_requirement_with_another_size_is_rebuilt(cache):
    first, _ = build()
    edit(site_packages(first) / "six.py", "# edited\n")
    again, notes = build()
    assert not again.reused and "is stale (six: six.py has 34558 bytes, 34549 recorded): rebuilding" in notes[0], notes
    assert build()[0].reused


@pytest.mark.slow
def test_an_env_built_from_a_damaged_uv_cache_is_an_env_build_error(cache, monkeypatch):
    """An edit in place reaches uv's cache (a hard link): every rebuild would be damaged too; one clear error."""
    monkeypatch.setenv("UV_CACHE_DIR", str(cache / "uv"))  # a cache of its own, to damage
    first, _ = build(["six==1.16.0"])
    six = site_packages(first) / "six.py"
    assert six.stat().st_nlink > 1, "uv linked the file from its cache"
    edit(six, "# edited\n", in_place=True)
    with pytest.raises(EnvBuildError, match=r"the env just built for six==1.16.0 is not what uv installed \(six: "
                                            r"six.py has 34558 bytes, 34549 recorded\): is uv's cache damaged\?"):
        build(["six==1.16.0"])
    assert not Path(first.python).parent.parent.exists(), "the damaged env is not kept"


@pytest.mark.slow
def test_an_image_env_whose_interpreter_exists_only_in_the_image_is_reused(cache):
    """An env built in a container links to the image's interpreter (not on the host); only the link is checked.

    Stand-in for harness/executors/docker/interpreters.py: uv runs on the host, then the env's links
    point into "the image"."""
    from harness.executors.docker.interpreters import ImageInterpreter

    host = interpreters.find("current")
    image = ImageInterpreter(host.path, host.version, image="fake:1", image_id="sha256:" + "0" * 64)

    def uv_for(root):
        def run(*args, timeout=900):
            done = venv.run_uv(*args, timeout=timeout)
            if args[:2] == ("pip", "freeze"):  # the build's last step
                for link in (root / "bin").iterdir():
                    if link.is_symlink() and link.name.startswith("python"):
                        link.unlink()
                        link.symlink_to("/opt/only-in-the-image/bin/python3")
            return done
        return run

    first, _ = build(["six==1.16.0"], image, uv_for)
    assert not Path(first.python).exists() and os.path.lexists(first.python)
    again, notes = build(["six==1.16.0"], image, uv_for)
    assert (first.reused, again.reused) == (False, True) and notes == [], notes
    # The same dangling link in a host env means its interpreter is gone: rebuilt.
    host_env, _ = build(["six==1.16.0"])
    Path(host_env.python).unlink()
    Path(host_env.python).symlink_to("/opt/only-in-the-image/bin/python3")
    rebuilt, notes = build(["six==1.16.0"])
    assert not rebuilt.reused and "python is missing): rebuilding" in notes[0], notes


def make_wheel(where: Path, name: str, version: str, code: str = "", requires: tuple = ()) -> Path:
    """A pure-Python wheel of one module `name` (what harness/envs/checkout.py builds from a source tree),
    with `code` after its __version__ and `requires` as its dependencies."""
    import base64
    import hashlib
    import zipfile

    files = {f"{name}.py": f"__version__ = {version!r}\n{code}",
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                                     + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(text.encode())}" for path, text in files.items()]
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record + [f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    wheel = where / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.mark.fault("fooled: a tampered env cache")
@pytest.mark.slow
def test_a_local_build_is_reused_and_another_release_over_it_is_rebuilt(cache):
    """`name @ file:///...whl` (repro check, bisect over a checkout): `uv pip freeze` gives no version for it,
    the wheel's file name does."""
    wheel, other = make_wheel(cache, "toylocal", "1.0"), make_wheel(cache, "toylocal", "2.0")
    requirements = [f"toylocal @ {wheel.as_uri()}"]
    first, _ = build(requirements)
    again, notes = build(requirements)
    assert (first.reused, again.reused, notes) == (False, True, [])
    done = subprocess.run(["uv", "pip", "install", "--quiet", "--python", first.python, str(other)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and imported_version(first, "toylocal") == "2.0", done.stderr
    rebuilt, notes = build(requirements)
    assert not rebuilt.reused and "is stale (toylocal 2.0 installed, 1.0 recorded): rebuilding" in notes[0], notes
    assert imported_version(rebuilt, "toylocal") == "1.0"


def test_era_seeds_are_those_of_a_venv_of_that_date():
    assert era_seeds("3.11.7", "2023-08-24", ["apache-beam==2.50.0"]) == ["pip", "setuptools"]
    assert era_seeds("3.9.18", "2023-08-24", ["setuptools<60", "six"]) == ["pip"]  # a named one wins
    assert era_seeds("3.12.1", "2023-08-24", ["six"]) == []  # 3.12's venv no longer seeds setuptools
    assert era_seeds("3.11.7", None, ["six"]) == []  # today's index: what a user gets today


@pytest.mark.slow
def test_an_env_of_a_past_date_has_the_setuptools_and_pip_of_that_date(cache):
    py = interpreters.find("3.11")
    env = venv.ensure_env(py, SIX_AND_INICONFIG, "2023-08-24T00:00:00Z")
    # setuptools 68.1.2 (2023-08-18) and pip 23.2.1 (2023-07-15) were the newest then.
    assert (env.installed.get("setuptools"), env.installed.get("pip")) == ("68.1.2", "23.2.1"), env.installed
    done = subprocess.run([env.python, "-c", "import pkg_resources, pip; print(pkg_resources.__file__)"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and str(Path(env.python).parent.parent) in done.stdout, done.stderr
    again = venv.ensure_env(py, SIX_AND_INICONFIG, "2023-08-24T00:00:00Z")
    assert again.reused, "an env with its seeds is reused as it is, not rebuilt"
    assert "setuptools" not in venv.ensure_env(py, SIX_AND_INICONFIG).installed  # today's: bare, as uv makes it
