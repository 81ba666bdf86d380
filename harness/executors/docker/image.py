"""The docker executor's default image, built locally: no image hub is needed.

A `debootstrap --variant=minbase` root of the host's own Debian release plus the shared
libraries CPython builds and manylinux wheels link against, imported with `docker import`.
The interpreter and the cell's env are not in the image: the executor mounts them, so the
image must provide the libraries of the release they were built on (the host's). The tag is
a hash of the recipe, so a second run (or a second machine with the same recipe) reuses it.

`include` adds Debian packages to the recipe, e.g. `python3`: an image that carries its own
interpreter (Debian's build, such as 3.11.2 in bookworm), which the executor can use for
versions the host lacks (harness/executors/docker/interpreters.py).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import UsageError
from harness.paths import cache_dir, cache_lock
from harness.text import last_lines

REPOSITORY = "repro-harness/base"
RECIPE_VERSION = 1
# Runtime libraries of pyenv/uv CPython builds (ldd of python and lib-dynload) and of wheels.
PACKAGES = ["libbz2-1.0", "libexpat1", "libffi8", "libgcc-s1", "liblzma5", "libncursesw6", "libnsl2",
            "libreadline8", "libsqlite3-0", "libssl3", "libstdc++6", "libtirpc3", "libuuid1", "zlib1g"]
TRIM = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists"]
SOURCES = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]


def host_release() -> str:
    """The host's Debian/Ubuntu code name: the image must match the libraries the interpreters use."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        text = ""
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)\"?$", text, re.MULTILINE)
    if not match:
        raise UsageError("cannot build the base image: the host is not a Debian-like system with "
                         "VERSION_CODENAME in /etc/os-release; pass --image IMAGE")
    return match.group(1)


def apt_mirror(release: str) -> str:
    """The mirror apt already uses for `release` (only package registries are reachable here)."""
    for path in SOURCES:
        try:
            text = path.read_text()
        except OSError:
            continue
        # One-line format: deb [options] URI SUITE COMPONENTS...
        for line in text.splitlines():
            match = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if match and match.group(3) == release:
                return match.group(2)
        # deb822 format: stanzas with URIs: and Suites:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(URIs|Suites|Types):\s*(.+)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "deb").split() and release in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    raise UsageError(f"cannot build the base image: no apt source for {release} in /etc/apt")


def image_tag(release: str, include: tuple = ()) -> str:
    recipe = {"release": release, "packages": PACKAGES, "trim": TRIM, "version": RECIPE_VERSION}
    if include:  # only then: the base recipe's tag stays what it was
        recipe["include"] = sorted(include)
    digest = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    return f"{REPOSITORY}:{'-'.join([release, *sorted(include), digest])}"


def ensure_base_image(client, log=None, include: tuple = ()) -> str:
    """The tag of the base image (plus `include`d packages), built (about a minute, once per
    machine) if the engine lacks it."""
    import docker.errors

    for name in include:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", name):
            raise UsageError(f"bad Debian package name {name!r}")
    release = host_release()
    tag = image_tag(release, tuple(include))
    with cache_lock("docker-image.lock"):  # one build among parallel runs
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        if log:
            log(f"building the docker executor's base image {tag} (debootstrap {release}, once)")
        _build(client, release, tag, [*PACKAGES, *include])
    return tag


def _build(client, release: str, tag: str, packages: list) -> None:
    _debootstrap_binary("cannot build the base image")
    mirror = apt_mirror(release)
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="docker-base-", dir=cache_dir()) as work:
        root = Path(work) / "root"
        debootstrap(release, root, packages, mirror)
        import_root(client, root, tag)


def _debootstrap_binary(what: str) -> str:
    found = shutil.which("debootstrap")
    if not found:
        raise UsageError(f"{what}: debootstrap is not installed (apt-get install debootstrap), or pass --image IMAGE")
    return found


def debootstrap(release: str, root: Path, packages: list, mirror: str) -> None:
    """A minbase root of `release` with `packages` at `root`, trimmed of docs and apt lists."""
    done = subprocess.run([_debootstrap_binary(f"cannot build an image of {release}"), "--variant=minbase",
                           f"--include={','.join(packages)}", release, str(root), mirror],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        log_text = _read(root / "debootstrap" / "debootstrap.log") or done.stdout + done.stderr
        raise UsageError(f"debootstrap {release} from {mirror} failed: {last_lines(log_text)}")
    for path in TRIM:
        shutil.rmtree(root / path, ignore_errors=True)


def import_root(client, root: Path, tag: str) -> None:
    """`docker import` of the file tree at `root` as `tag`, labelled with its recipe (the tag's name)."""
    tarball = root.parent / "root.tar"
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."], check=True,
                   capture_output=True, timeout=600)
    try:
        repository, name = tag.split(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=name,
                                          changes=[f"LABEL repro-harness.recipe={name}"])
    finally:
        tarball.unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
