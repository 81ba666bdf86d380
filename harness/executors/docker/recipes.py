"""Interpreters from image recipes: the Python axis the host lacks (3.13.x, 3.14, free-threaded builds).

A Python spec names a recipe and a build of it:

    debian-trixie:3.13     Debian trixie's own python3.13 (3.13.5)
    debian-sid:3.14        Debian sid's python3.14
    debian-trixie:3.13t    CPython 3.13 built with --disable-gil on trixie, from SOURCES
    3.13t                  the first recipe with that free-threaded build (here: debian-trixie:3.13t)

Debian has no free-threaded package (its builds refuse PYTHON_GIL=0), so a `t` build is compiled
by the harness: a build image of the suite (debootstrap + the -dev packages), then `configure
--disable-gil && make altinstall` in a container of it with no network, from a source tarball
whose sha256 is pinned here, installed at /opt/python3.Xt of a runtime root of the suite. Every
image is built once and tagged with a hash of its recipe, so the same matrix runs on a fresh
machine with no hand steps and a second run builds nothing. A cell of such a Python runs on the
docker executor with the recipe's image (`executor_for`); the record's executor and interpreter
name the recipe.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from harness.envs.interpreters import image_python
from harness.errors import UsageError
from harness.executors.docker import image as base_image
from harness.executors.docker.engine import client
from harness.executors.docker.executor import DockerExecutor
from harness.executors.docker.interpreters import find_in_image, run_container
from harness.paths import cache_dir, cache_lock
from harness.text import last_lines

REPOSITORY = "repro-harness/python"
BUILD_REPOSITORY = "repro-harness/build"
RECIPE_VERSION = 1
DEBIAN_MIRROR = "http://deb.debian.org/debian"   # when the host's apt sources name none
# The Debian suites a recipe can name, and the python3.X packages each has (debootstrap of this
# host has scripts for trixie and sid; forky is `testing`). Trixie first: `3.13t` alone is trixie's.
SUITES = {"trixie": ("3.13",), "sid": ("3.13", "3.14")}
# What CPython and manylinux wheels link against (trixie's and sid's names: t64, no libnsl2).
RUNTIME = ["ca-certificates", "libbz2-1.0", "libexpat1", "libffi8", "libgcc-s1", "liblzma5", "libmpdec4",
           "libncursesw6", "libreadline8t64", "libsqlite3-0", "libssl3t64", "libstdc++6", "libtirpc3t64",
           "libuuid1", "libzstd1", "zlib1g"]
BUILD_DEPS = ["build-essential", "pkg-config", "xz-utils", "libssl-dev", "zlib1g-dev", "libffi-dev", "libbz2-dev",
              "liblzma-dev", "libsqlite3-dev", "libreadline-dev", "uuid-dev", "libzstd-dev", "libexpat1-dev",
              "libmpdec-dev", "libncurses-dev"]
# The CPython source of a free-threaded build: the orig tarballs of Debian's python3.X source
# packages. 3.13.5 is trixie's own python3.13; Debian's pool serves no python3.14 orig tarball
# here (404), Ubuntu's pool has 3.14.4 (the same upstream tarball Debian packages).
SOURCES = {
    "3.13": ("3.13.5", "http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz",
             "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"),
    "3.14": ("3.14.4", "http://archive.ubuntu.com/ubuntu/pool/main/p/python3.14/python3.14_3.14.4.orig.tar.xz",
             "d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8"),
}
CONFIGURE = ["--disable-gil", "--with-ensurepip=install"]   # no PGO/LTO: minutes, not an hour
COMPILE_TIMEOUT = 3600.0
DOWNLOAD_TIMEOUT = 300.0


@dataclass(frozen=True)
class Recipe:
    suite: str
    minor: str             # "3.13"
    version: str           # as asked: "3.13" or "3.13.5"
    free_threaded: bool

    @property
    def name(self) -> str:
        return f"debian-{self.suite}:{self.minor}{'t' if self.free_threaded else ''}"

    @property
    def prefix(self) -> str:
        return f"/opt/python{self.minor}t"

    def describe(self) -> dict:
        """Everything the image is built from: its hash is the image's tag."""
        data = {"suite": self.suite, "python": self.minor, "free_threaded": self.free_threaded,
                "runtime": RUNTIME, "trim": base_image.TRIM, "version": RECIPE_VERSION}
        if self.free_threaded:
            data.update({"source": SOURCES[self.minor], "configure": CONFIGURE, "build_deps": BUILD_DEPS,
                         "prefix": self.prefix})
        else:
            data["packages"] = [f"python{self.minor}"]
        return data

    @property
    def tag(self) -> str:
        digest = hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{REPOSITORY}:debian-{self.suite}-{self.minor}{'t' if self.free_threaded else ''}-{digest}"


def parse(wanted: str) -> Recipe:
    """The recipe of a Python spec (`debian-trixie:3.13t`, `3.13t`); UsageError for anything else."""
    found = image_python(wanted)
    if found is None:
        raise UsageError(f"{wanted!r} names no image recipe: expected e.g. debian-trixie:3.13 or 3.13t")
    name, version, free_threaded = found
    minor = ".".join(version.split(".")[:2])
    if name is None:  # `3.13t` alone: the first suite that has it
        suites = [suite for suite, minors in SUITES.items() if minor in minors]
        if not suites:
            raise UsageError(f"no image recipe has Python {minor} ({wanted!r}); name one, e.g. debian-sid:3.14t")
        name = f"debian-{suites[0]}"
    suite = name.removeprefix("debian-")
    if not name.startswith("debian-") or suite not in SUITES:
        raise UsageError(f"unknown image recipe {name!r} in {wanted!r}: one of "
                         f"{', '.join('debian-' + s for s in SUITES)}")
    if minor not in SUITES[suite]:
        raise UsageError(f"{name} has no Python {minor} (it has {', '.join(SUITES[suite])})")
    if free_threaded and minor not in SOURCES:
        raise UsageError(f"no free-threaded build of Python {minor}: no CPython {minor} source is pinned "
                         f"(free-threaded: {', '.join(SOURCES)})")
    if free_threaded and version != minor and version != SOURCES[minor][0]:
        raise UsageError(f"the free-threaded build of {minor} is {SOURCES[minor][0]}, not {version}")
    return Recipe(suite, minor, version, free_threaded)


def ensure_image(engine, recipe: Recipe, log=None) -> str:
    """The tag of the recipe's image, built first (once: minutes) if the engine lacks it."""
    import docker.errors

    tag = recipe.tag
    with cache_lock(f"recipe-{tag.split(':')[1]}.lock"):  # one build among parallel runs
        try:
            engine.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        say = log or (lambda text: None)
        started = time.monotonic()
        say(f"building image {tag} for {recipe.name} (once; "
            f"{'about 6 minutes on 2 cores' if recipe.free_threaded else 'about a minute'})")
        mirror = _mirror()
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="recipe-", dir=cache_dir()) as work:
            root = Path(work) / "root"
            packages = RUNTIME if recipe.free_threaded else [*RUNTIME, f"python{recipe.minor}"]
            _step(recipe, say, f"debootstrap {recipe.suite} ({len(packages)} packages)",
                  lambda: base_image.debootstrap(recipe.suite, root, packages, mirror))
            if recipe.free_threaded:
                _add_free_threaded(engine, recipe, root, Path(work), mirror, say)
            _step(recipe, say, "import the root file system",
                  lambda: base_image.import_root(engine, root, tag))
        say(f"image {tag} built in {time.monotonic() - started:.0f}s")
    return tag


def _step(recipe: Recipe, say, what: str, action):
    """Run one build step, timed; its failure is one UsageError naming the recipe and the step."""
    say(f"{recipe.name}: {what} ...")
    started = time.monotonic()
    try:
        result = action()
    except Exception as exc:  # every failure of a step is reported the same way
        raise UsageError(f"building the image of {recipe.name} failed at '{what}': "
                         f"{last_lines(str(exc), limit=1200)}") from exc
    say(f"{recipe.name}: {what}: done in {time.monotonic() - started:.0f}s")
    return result


def _mirror() -> str:
    """The Debian mirror apt already uses on this host (only package registries are reachable)."""
    try:
        return base_image.apt_mirror(base_image.host_release())
    except UsageError:
        return DEBIAN_MIRROR


def _add_free_threaded(engine, recipe: Recipe, root: Path, work: Path, mirror: str, say) -> None:
    """CPython built with --disable-gil in a container of the suite's build image, with no network,
    installed at the recipe's prefix in `root` and linked as /usr/local/bin/python3.Xt."""
    version, url, sha256 = SOURCES[recipe.minor]
    builder = _step(recipe, say, f"build image of {recipe.suite} (compilers and -dev packages)",
                    lambda: ensure_build_image(engine, recipe.suite, mirror))
    tarball = _step(recipe, say, f"CPython {version} source ({url})", lambda: fetch_source(url, sha256))
    out = work / "out"
    _step(recipe, say, f"compile CPython {version} with {' '.join(CONFIGURE)} (no network)",
          lambda: compile_cpython(engine, builder, tarball, out, recipe))
    shutil.copytree(out, root / recipe.prefix.lstrip("/"), symlinks=True)
    link = root / "usr" / "local" / "bin" / f"python{recipe.minor}t"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(f"{recipe.prefix}/bin/python{recipe.minor}t")


def ensure_build_image(engine, suite: str, mirror: str) -> str:
    """The suite's build image (RUNTIME + BUILD_DEPS), built once; its id."""
    import docker.errors

    recipe = {"suite": suite, "packages": [*RUNTIME, *BUILD_DEPS], "trim": base_image.TRIM, "version": RECIPE_VERSION}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    tag = f"{BUILD_REPOSITORY}:debian-{suite}-{digest}"
    try:
        return engine.images.get(tag).id
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="build-image-", dir=cache_dir()) as work:
        root = Path(work) / "root"
        base_image.debootstrap(suite, root, recipe["packages"], mirror)
        base_image.import_root(engine, root, tag)
    return engine.images.get(tag).id


def fetch_source(url: str, sha256: str) -> Path:
    """The source tarball at `url`, downloaded once into the cache and checked against its sha256."""
    path = cache_dir() / "sources" / url.rsplit("/", 1)[-1]
    if path.is_file() and _sha256(path) == sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(partial, "wb") as handle:
        shutil.copyfileobj(response, handle)
    found = _sha256(partial)
    if found != sha256:
        partial.unlink()
        raise UsageError(f"{url}: sha256 {found}, {sha256} expected")
    partial.replace(path)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compile_script(tarball_name: str, recipe: Recipe) -> str:
    """configure, make and altinstall in the container; on a failure, the tail of that step's log.
    The install is trimmed of the test suite and the static library, and must run without the GIL."""
    prefix, py = recipe.prefix, f"python{recipe.minor}t"
    return f"""set -e
cd /tmp && tar --no-same-owner -xf /src/{tarball_name} && cd Python-*/
step() {{ name=$1; shift; "$@" > /tmp/$name.log 2>&1 || {{ echo "$name failed:"; tail -40 /tmp/$name.log; exit 1; }}; }}
step configure ./configure --prefix={prefix} {' '.join(CONFIGURE)}
step make make -j"$(nproc)"
step install make altinstall
rm -rf {prefix}/lib/{py}/test
find {prefix} -name 'libpython*.a' -delete
{prefix}/bin/{py} -c 'import sys, sysconfig, ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal; \
assert sysconfig.get_config_var("Py_GIL_DISABLED") and not sys._is_gil_enabled(), "the GIL is on"; \
print(sys.version)'
"""


def compile_cpython(engine, builder_id: str, tarball: Path, out: Path, recipe: Recipe) -> str:
    """Compile the free-threaded CPython into `out` in a container of `builder_id`, network none."""
    out.mkdir(parents=True, exist_ok=True)
    mounts = [[str(tarball.parent), "/src", "ro"], [str(out), recipe.prefix, "rw"]]
    status, stdout, stderr = run_container(
        engine, builder_id, ["/bin/sh", "-c", compile_script(tarball.name, recipe)],
        labels={"repro-harness": "1", "repro-harness.purpose": "compile"}, env={"HOME": "/tmp"},
        mounts=mounts, network="none", timeout=COMPILE_TIMEOUT, entrypoint=[])
    if status is None:
        raise UsageError(f"did not finish within {COMPILE_TIMEOUT:g}s")
    if status != 0:
        raise UsageError(f"exit status {status}: {last_lines(stdout + stderr, lines=30, limit=1200)}")
    return stdout.strip()


class RecipeExecutor(DockerExecutor):
    """The docker executor with the recipe's image, its interpreter taken from the image."""

    def __init__(self, recipe: Recipe, log=None, **limits):
        super().__init__(ensure_image(client(), recipe, log), python_from="image", log=log, **limits)
        self.recipe = recipe

    def describe(self) -> dict:
        return {**super().describe(), "recipe": self.recipe.name}

    def find_interpreter(self, wanted: str):
        recipe = parse(wanted)
        if (recipe.suite, recipe.minor, recipe.free_threaded) != (self.recipe.suite, self.recipe.minor,
                                                                  self.recipe.free_threaded):
            raise UsageError(f"{wanted} is not an interpreter of recipe {self.recipe.name}")
        found = find_in_image(self.engine, self.image, self.image_id,
                              recipe.version + ("t" if recipe.free_threaded else ""), self._labels("probe"))
        return replace(found, recipe=wanted)


_EXECUTORS: dict = {}   # one per recipe and limits in a process: many cells share it


def executor_for(wanted: str, executor, log=None):
    """The executor that runs a cell of Python `wanted`: `executor` itself for a host version; for an
    image recipe's Python, a RecipeExecutor with the recipe's image (built on first use), with the
    resource limits of `executor` when it is a docker executor."""
    if image_python(wanted) is None:
        return executor
    recipe = parse(wanted)
    limits = {name: getattr(executor, name) for name in ("memory", "cpus", "pids") if hasattr(executor, name)}
    key = (recipe.tag, tuple(sorted(limits.items())))
    if key not in _EXECUTORS:
        _EXECUTORS[key] = RecipeExecutor(recipe, log, **limits)
    return _EXECUTORS[key]
