"""Interpreters inside an image, and cell envs built in a container from them.

With `--executor docker`, an image can bring an exact interpreter build the host lacks (for
example python:3.12.0-slim, or Debian's own python3). The image's interpreters are listed by
one short container run (cached per image id: an id names immutable content), and a cell's
env is built with uv inside a container of that image: the host's uv binary mounted
read-only, the env dir read-write at its host path (the executor later mounts it read-only
at the same path), the host's uv cache shared, and the host network only for that build.
The env key adds the image id, so the second run of a cell installs nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import procs
from harness.envs import uvbin, venv
from harness.envs.interpreters import Interpreter, version_matches
from harness.errors import EnvBuildError, UsageError
from harness.executors.docker.engine import host_binary
from harness.files import write_atomically
from harness.paths import cache_dir
from harness.text import last_lines

PROBE_TIMEOUT = 120.0          # a container that lists the image's interpreters
UV_IN_CONTAINER = "/opt/repro-harness/uv"
# Every python3.N, python3.Nt, python3 and python on the image's PATH: implementation, version,
# real path, and whether it is a free-threaded build (sysconfig's Py_GIL_DISABLED; abiflags "t").
PROBE_SCRIPT = """
IFS=:
for dir in $PATH; do
  for exe in "$dir"/python3.[0-9] "$dir"/python3.[0-9][0-9] "$dir"/python3.[0-9]t "$dir"/python3.[0-9][0-9]t \\
             "$dir"/python3 "$dir"/python; do
    [ -x "$exe" ] || continue
    "$exe" -I -S -c 'import os, sys, sysconfig; print(sys.implementation.name, \
"%d.%d.%d" % sys.version_info[:3], os.path.realpath(sys.executable), \
"free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "gil")' 2>/dev/null
  done
done
"""
# Host settings that decide how uv reaches the package index; paths among them are mounted.
PASSED_ENV = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "HTTP_PROXY", "HTTPS_PROXY",
              "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class ImageInterpreter(Interpreter):
    """An interpreter at `path` inside the image `image_id` (not on the host)."""
    image: str = ""       # the name it was asked for, e.g. python:3.12.0-slim
    image_id: str = ""    # sha256:..., part of the env key
    free_threaded: bool = False   # built with --disable-gil (abiflags "t")
    recipe: str = ""      # the image recipe's Python spec, e.g. debian-trixie:3.13t (recipes.py)

    on_host = False       # its env's bin/python links to a path that exists only in the image

    @property
    def label(self) -> str:
        build = f"Python {self.version}{' (free-threaded)' if self.free_threaded else ''}"
        return f"{build} in image {self.image}" if self.image else build

    @property
    def cell_python(self) -> str:
        return self.recipe or super().cell_python

    @property
    def wheels_only(self) -> bool:
        # No free-threaded build of a library can come from a source build offline; and one that
        # builds would say nothing of the release users install.
        return self.free_threaded

    def describe(self) -> dict:
        extra = {"free_threaded": True} if self.free_threaded else {}
        if self.recipe:
            extra["recipe"] = self.recipe
        return {"path": self.path, "version": self.version, "source": "image", "image": self.image,
                "image_id": self.image_id, **extra}

    @classmethod
    def from_record(cls, record: dict) -> ImageInterpreter:
        return cls(record["path"], record["version"], image=record.get("image", ""), image_id=record["image_id"],
                   free_threaded=record.get("free_threaded", False), recipe=record.get("recipe", ""))

    def key_fields(self) -> dict:
        # free_threaded only when true: the keys of the envs already cached stay what they were
        extra = {"free_threaded": True} if self.free_threaded else {}
        return {**super().key_fields(), "image_id": self.image_id, **extra}


def image_pythons(engine, image_id: str, labels: dict, free_threaded: bool = False) -> list[tuple[str, str]]:
    """(path, version) of each CPython on the image's PATH, newest first: the default (GIL) builds,
    or with `free_threaded` the free-threaded ones; cached per image id."""
    cache = cache_dir() / "docker-pythons" / f"{image_id.replace(':', '-')}.json"
    kind = "free_threaded" if free_threaded else "pythons"
    try:
        return [tuple(entry) for entry in json.loads(cache.read_text())[kind]]
    except (OSError, ValueError, KeyError):
        pass
    try:
        status, output, _ = run_container(engine, image_id, ["/bin/sh", "-c", PROBE_SCRIPT], labels=labels,
                                          timeout=PROBE_TIMEOUT, entrypoint=[])
    except Exception as exc:  # e.g. no /bin/sh in the image (distroless)
        reason = last_lines(str(exc), limit=400)
        raise UsageError(f"cannot list the interpreters of image {image_id[:19]}: {reason}") from exc
    if status != 0:
        raise UsageError(f"cannot list the interpreters of image {image_id[:19]}: /bin/sh -c exited with "
                         f"{status}: {last_lines(output, limit=400)}")
    found = {"pythons": {}, "free_threaded": {}}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "cpython":
            found["free_threaded" if parts[3] == "free-threaded" else "pythons"].setdefault(parts[2], parts[1])
    listed = {name: sorted(paths.items(), key=lambda item: _version_tuple(item[1]), reverse=True)
              for name, paths in found.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(cache, json.dumps({"image_id": image_id, **listed}), durable=False)
    return listed[kind]


def find_in_image(engine, image: str, image_id: str, wanted: str, labels: dict) -> ImageInterpreter:
    """The newest interpreter of the image matching `wanted` (3.11 or 3.11.2; 3.13t: a free-threaded
    build, which a plain version never matches), or a UsageError."""
    free_threaded = wanted.endswith("t")
    pythons = image_pythons(engine, image_id, labels, free_threaded)
    for path, version in pythons:
        if version_matches(version, wanted.removesuffix("t")):
            return ImageInterpreter(path, version, image=image, image_id=image_id, free_threaded=free_threaded)
    has = ", ".join(f"{version}{'t' if free_threaded else ''} at {path}" for path, version in pythons) \
        or f"no {'free-threaded ' if free_threaded else ''}CPython on its PATH"
    raise UsageError(f"image {image} has no Python {wanted} ({has})")


def uv_runner(engine, interpreter: ImageInterpreter, root: Path, labels: dict):
    """A stand-in for venv.run_uv that runs uv in a container of the interpreter's image."""
    uv = host_binary("uv", uvbin.find())  # pyenv's `uv` on PATH is a shell script shim
    if uv is None:
        raise UsageError("building an env in the image needs the uv executable itself (an ELF binary, "
                         "not a wrapper script): pip install uv")
    cache = _uv_cache_dir()
    env = {"HOME": "/tmp", "UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_CACHE_DIR": str(cache),
           # The cache and the env are different mounts: hard links between them cannot work.
           "UV_LINK_MODE": "copy",
           **{name: os.environ[name] for name in PASSED_ENV if os.environ.get(name)}}
    mounts = [[uv, UV_IN_CONTAINER, "ro"], [str(root), str(root), "rw"], [str(cache), str(cache), "rw"]]
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):  # the host's CA bundle, as the host's uv uses it
        if env.get(name) and Path(env[name]).exists():
            mounts.append([env[name], env[name], "ro"])

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        root.mkdir(parents=True, exist_ok=True)   # the mount point; `uv venv` fills the empty dir
        cache.mkdir(parents=True, exist_ok=True)
        argv = [UV_IN_CONTAINER, *args]
        try:
            status, stdout, stderr = run_container(engine, interpreter.image_id, argv, labels=labels, env=env,
                                                   mounts=mounts, network="host", timeout=timeout, entrypoint=[])
        except Exception as exc:  # the engine refused the container (e.g. uv cannot start)
            reason = last_lines(str(exc), limit=400)
            raise EnvBuildError(f"cannot run uv in image {interpreter.image}: {reason}") from exc
        if status is None:
            raise EnvBuildError(f"uv {args[0]} in image {interpreter.image} did not finish within {timeout:g}s")
        return subprocess.CompletedProcess(argv, status, stdout, stderr)

    return run


def run_container(engine, image_id: str, argv: list, *, labels: dict, env: dict | None = None,
                  mounts: list | None = None, network: str = "none", timeout: float,
                  entrypoint=None) -> tuple[int | None, str, str]:
    """Run a short container to its end: (exit status or None on timeout, stdout, stderr)."""
    container = None
    try:
        with procs.signals_deferred():  # a container being created when Ctrl-C comes would be left behind
            container = engine.containers.create(
                image_id, argv, entrypoint=entrypoint, environment=env or {}, network_mode=network,
                volumes={host: {"bind": inside, "mode": mode} for host, inside, mode in mounts or []},
                user=f"{os.getuid()}:{os.getgid()}", labels=labels, working_dir="/tmp",
                cap_drop=["ALL"], security_opt=["no-new-privileges"])
        container.start()
        try:
            status = container.wait(timeout=timeout)["StatusCode"]
        except Exception:  # noqa: BLE001 - the SDK's read timeout: the container is still running
            status = None
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        return status, stdout, stderr
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


def _uv_cache_dir() -> Path:
    """The host's uv cache (shared with local builds: wheels already fetched are not fetched again)."""
    done = venv.run_uv("cache", "dir", timeout=30)
    path = done.stdout.strip()
    if done.returncode != 0 or not path:
        return cache_dir() / "uv-cache"
    return Path(path)


def _version_tuple(version: str) -> tuple:
    return tuple(int(part) for part in version.split("."))
