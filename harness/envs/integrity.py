"""What a cached env must still be to be reused: `check_env` raises StaleEnv (saying what it found) otherwise.

The facts come from the env itself, never from its own env.json (that records what was built, and can be
edited with it): an env is reused only while
- its interpreter is the key's: `bin/python` resolves to the keyed interpreter's file (else it is run once
  and its version cached next to it), and pyvenv.cfg names that version and no system site-packages;
- its distributions are exactly the recorded releases, each version read from the dist-info's METADATA
  (what `importlib.metadata` and pip report), and each requirement's pins (`==1.0`, `<2`) hold for it;
- nothing shadows site-packages: no `.pth` file that no wheel installed or that adds a directory outside
  site-packages, no `__editable__` file, no editable `direct_url.json`, no stray `sitecustomize.py`;
- each file a required distribution's RECORD lists exists with its size (stat calls only).
That is stat calls and small reads. With `full` (an env reused after a run that used it ended uncleanly:
see harness/envs/holds.py, or after a clean run during which a file of it changed: `changed_since`, asked
when a run releases the env) every file of every distribution is also hashed against its RECORD sha256.
Measured (`time` around check_env on envs of the cache, 2 cores at load 5-8): the deltalake 1.6.6 +
pyarrow env (306 MB, 845 RECORD lines) takes 1.2-1.5 s in full with its files in the page cache and
2.1-3.7 s after dropping it, the apache-beam 2.63.0 env (325 MB) 2.3 s / 3.8 s; the cheap check 0.03-0.6 s.
So the full check runs only where an unclean end left a reason to distrust the files.
"""
from __future__ import annotations

import base64
import csv
import glob
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

from harness.envs.interpreters import Interpreter
from harness.versions import requirement_name

STARTUP_FILES = ("sitecustomize.py", "usercustomize.py")  # imported at every start when present
INTERPRETER_SEEN = ".interpreter-seen.json"  # bin/python's version, cached by its target's stat


class StaleEnv(Exception):
    """A cached env is not what its env.json records (the message says how)."""


def check_env(root: Path, interpreter: Interpreter, installed: dict, requirements: list,
              full: bool = False) -> None:
    """The env at `root` is what was installed there for `requirements`, else StaleEnv."""
    check_interpreter(root, interpreter)
    site = site_packages(root)
    dists = _check_distributions(site, installed, requirements)
    _check_pins(requirements, dists)
    _check_shadows(site, dists)
    for name in sorted({requirement_name(r) for r in requirements}):
        if name not in dists:
            raise StaleEnv(f"{name} is required, not installed")
        _check_record_files(site, name, dists)
    if full:
        for name in sorted(dists):
            _check_record_hashes(site, name, dists)


# ------------------------------------------------------------------ the interpreter

def check_interpreter(root: Path, interpreter: Interpreter) -> None:
    python = root / "bin" / "python"
    # The env of an interpreter that is not on the host links to a path absent here: the link is all we see.
    present = python.exists() if interpreter.on_host else os.path.lexists(python)
    if not present:
        raise StaleEnv(f"its interpreter {python} is missing")
    config = _pyvenv_cfg(root)
    if config.get("include-system-site-packages", "false").lower() != "false":
        raise StaleEnv("pyvenv.cfg includes the system site-packages")
    recorded = config.get("version_info", "")
    if _release(recorded) != _release(interpreter.version):
        raise StaleEnv(f"pyvenv.cfg says Python {recorded or '(none)'}, the key {interpreter.version}")
    if interpreter.on_host and os.path.realpath(python) != os.path.realpath(interpreter.path):
        running = _running_version(root, python)
        if _release(running) != _release(interpreter.version):
            raise StaleEnv(f"its bin/python is Python {running}, the key {interpreter.version}")


def _pyvenv_cfg(root: Path) -> dict:
    try:
        lines = (root / "pyvenv.cfg").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        raise StaleEnv("pyvenv.cfg is unreadable") from None
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _release(version: str) -> tuple:
    """(3, 11, 7) of "3.11.7" or "3.11.7rc1": the part pyvenv.cfg and sys.version_info agree on."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(n) for n in match.groups()) if match else (version,)


def _running_version(root: Path, python: Path) -> str:
    """The version bin/python runs (it resolves to another file than the keyed interpreter's, as when
    the base was itself a venv): asked once, then cached by the target's path, inode, size and mtime."""
    target = os.path.realpath(python)
    stat = os.stat(target)
    seen = [target, stat.st_ino, stat.st_size, stat.st_mtime_ns]
    cache = root / INTERPRETER_SEEN
    try:
        cached = json.loads(cache.read_text())
        if cached["seen"] == seen:
            return str(cached["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not asked yet, or by another target
    try:
        done = subprocess.run([str(python), "-I", "-S", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StaleEnv(f"its bin/python does not run: {type(exc).__name__}") from None
    version = done.stdout.strip() if done.returncode == 0 else ""
    if not version:
        raise StaleEnv(f"its bin/python does not run (exit {done.returncode})")
    try:
        cache.write_text(json.dumps({"seen": seen, "version": version}))
    except OSError:
        pass  # a read-only cache: asked again next time
    return version


def site_packages(root: Path) -> str:
    found = glob.glob(os.path.join(glob.escape(str(root)), "lib", "python*", "site-packages"))
    if len(found) != 1:
        raise StaleEnv(f"{len(found)} site-packages directories, 1 expected")
    return found[0]


# ------------------------------------------------------------------ the distributions and their pins

def _check_distributions(site: str, installed: dict, requirements: list) -> dict:
    """The dist-info directories are exactly the recorded releases; returns name -> (version, dist-info path),
    the version as its METADATA says (the directory's name is only a name)."""
    from packaging.utils import canonicalize_name

    try:
        with os.scandir(site) as entries:
            found = [entry.path for entry in entries if entry.name.endswith(".dist-info") and entry.is_dir()]
    except OSError as exc:
        raise StaleEnv(f"cannot list {site}: {exc.strerror}") from None
    dists = {}
    for path in found:
        name, version = _metadata(path)
        name = canonicalize_name(name)
        if name in dists:
            raise StaleEnv(f"{name} installed twice ({dists[name][0]} and {version})")
        dists[name] = (version, path)
    expected = {canonicalize_name(name): version for name, version in installed.items()}
    expected.update(_reference_versions(requirements))
    for name in sorted(set(dists) | set(expected)):
        if name not in expected:
            raise StaleEnv(f"{name} {dists[name][0]} installed, not recorded")
        if name not in dists:
            raise StaleEnv(f"{name} {expected[name] or '(a local build)'} recorded, not installed")
        if expected[name] is not None and not _same_version(dists[name][0], expected[name]):
            raise StaleEnv(f"{name} {dists[name][0]} installed, {expected[name]} recorded")
    return dists


def _metadata(dist_info: str) -> tuple[str, str]:
    """(Name, Version) from the headers of a dist-info's METADATA."""
    fields = {}
    try:
        with open(os.path.join(dist_info, "METADATA"), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break  # the headers end at the first blank line; the description follows
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    if not fields.get("name") or not fields.get("version"):
        raise StaleEnv(f"{os.path.basename(dist_info)} has no readable METADATA")
    return fields["name"], fields["version"]


def _check_pins(requirements: list, dists: dict) -> None:
    """Each requirement's version specifiers (`==1.16.0`, `<2`) hold for the installed release."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise StaleEnv(f"requirement {text!r} does not parse") from None
        name = canonicalize_name(requirement.name)
        if not requirement.specifier or name not in dists:
            continue  # `name @ url`, or not installed: _check_distributions and check_env say so
        version = dists[name][0]
        if not requirement.specifier.contains(version, prereleases=True):
            raise StaleEnv(f"{name} {version} installed, {text} required")


def _reference_versions(requirements: list) -> dict:
    """name -> version of each `name @ file:///...` requirement: `uv pip freeze` lists these without
    a version, so `installed` lacks them; a wheel's file name has it (a source directory's: None, any)."""
    from packaging.utils import (
        InvalidWheelFilename,
        parse_wheel_filename,
    )

    versions = {}
    for requirement in requirements:
        if "@" in requirement:
            filename = unquote(requirement.split("@", 1)[1].strip().rsplit("/", 1)[-1])
            try:
                version = str(parse_wheel_filename(filename)[1])
            except InvalidWheelFilename:
                version = None
            versions[requirement_name(requirement)] = version
    return versions


def _same_version(left: str, right: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


# ------------------------------------------------------------------ what else site-packages imports

def _check_shadows(site: str, dists: dict) -> None:
    """Packages are imported from site-packages only: no editable install, no `.pth` that no wheel
    installed or that puts another directory on sys.path, no startup module that no wheel installed."""
    for name, (_, dist_info) in sorted(dists.items()):
        if _is_editable(dist_info):
            raise StaleEnv(f"{name} is an editable install")
    startup = sorted(entry for entry in os.listdir(site) if entry.endswith(".pth") or entry in STARTUP_FILES)
    if not startup:
        return
    recorded = {path for _, info in dists.values() for path in _record(info, os.path.basename(info))}
    for entry in startup:
        if entry.startswith("__editable__"):
            raise StaleEnv(f"{entry} is an editable install's path file")
        if entry not in recorded:
            raise StaleEnv(f"{entry} in site-packages is not installed by any distribution")
        if entry.endswith(".pth"):
            _check_pth(site, entry)


def _is_editable(dist_info: str) -> bool:
    try:
        with open(os.path.join(dist_info, "direct_url.json")) as handle:
            direct = json.load(handle)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # unreadable: not the ordinary install uv writes either
    return isinstance(direct, dict) and isinstance(direct.get("dir_info"), dict) \
        and bool(direct["dir_info"].get("editable"))


def _check_pth(site: str, entry: str) -> None:
    """Each path line of a .pth (site.py adds it to sys.path) stays inside site-packages."""
    try:
        with open(os.path.join(site, entry), encoding="utf-8", errors="replace") as handle:
            lines = [line.rstrip("\r\n") for line in handle]
    except OSError:
        raise StaleEnv(f"{entry} is unreadable") from None
    inside = os.path.realpath(site)
    for line in lines:
        if not line.strip() or line.startswith(("#", "import ", "import\t")):
            continue
        added = os.path.realpath(os.path.join(site, line.strip()))
        if added != inside and not added.startswith(inside + os.sep):
            raise StaleEnv(f"{entry} adds {line.strip()} to sys.path")


# ------------------------------------------------------------------ the files of each distribution

def _check_record_files(site: str, name: str, dists: dict) -> None:
    """Each file the distribution's RECORD lists exists with its recorded size (stat only: no hashing)."""
    for path, (_, size) in _record(dists[name][1], name).items():
        if not size:
            continue
        try:
            actual = str(os.stat(os.path.join(site, path)).st_size)
        except OSError:
            raise StaleEnv(f"{name}: {path} is missing") from None
        if actual != size and not _installed_by_another(path, 1, actual, name, dists):
            raise StaleEnv(f"{name}: {path} has {actual} bytes, {size} recorded")


def _check_record_hashes(site: str, name: str, dists: dict) -> None:
    """Each file the distribution's RECORD lists with a sha256 has that content."""
    for path, (digest, _) in _record(dists[name][1], name).items():
        if not digest.startswith("sha256="):
            continue  # RECORD itself, and what the installer wrote (INSTALLER, direct_url.json)
        try:
            actual = "sha256=" + _sha256(os.path.join(site, path))
        except OSError:
            raise StaleEnv(f"{name}: {path} is missing") from None
        if actual != digest and not _installed_by_another(path, 0, actual, name, dists):
            raise StaleEnv(f"{name}: {path} differs from its RECORD hash")


def changed_since(root: Path, since_ns: int) -> list[str]:
    """The files of the env's distributions (each RECORD's) whose inode changed after `since_ns`, by
    st_ctime: a write, a rename over it, a chmod, or a utime that puts the mtime back all set it, and
    nothing sets it back. Stat calls only; a file also linked elsewhere (uv's cache) may show up
    without an edit, which costs a full check, never a wrong verdict."""
    try:
        site = site_packages(root)
    except StaleEnv as why:
        return [str(why)]
    changed = []
    for dist_info in sorted(glob.glob(os.path.join(glob.escape(site), "*.dist-info"))):
        try:
            paths = _record(dist_info, os.path.basename(dist_info))
        except StaleEnv:
            return [os.path.join(dist_info, "RECORD")]
        for path in paths:
            try:
                if os.stat(os.path.join(site, path)).st_ctime_ns > since_ns:
                    changed.append(path)
            except OSError:
                changed.append(path)  # gone: changed too
    return changed


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _record(dist_info: str, name: str) -> dict:
    """path -> (hash, size) of each file in the distribution's RECORD."""
    try:
        with open(os.path.join(dist_info, "RECORD"), newline="") as handle:
            return {row[0]: (row[1].strip(), row[2].strip()) for row in csv.reader(handle) if len(row) >= 3}
    except (OSError, ValueError, csv.Error):
        raise StaleEnv(f"{name} has no readable RECORD") from None


def _installed_by_another(path: str, field: int, actual: str, name: str, dists: dict) -> bool:
    """Another distribution's RECORD has `actual` in `field` (0 hash, 1 size) for `path`: two wheels may put
    the same file at the top of site-packages (a README.md), and the last one installed wins."""
    return any(other != name and _record(info, other).get(path, ("", ""))[field] == actual
               for other, (_, info) in dists.items())
