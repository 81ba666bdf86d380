"""Discovery and validation of repros: every `repros/*.py` that declares a BUG dict.

Adding a bug is writing one file; nothing here names a bug. Repros are looked for, in this
order, in `./repros` of the current directory (a maintainer's own project), in the directories
of REPRO_PATH (os.pathsep separated; the harness's own tests put their synthetic bugs there),
and in the bugs shipped with the harness. The first file of an id wins: a maintainer's own
repro replaces a shipped one of the same id.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from harness import stats
from harness.errors import UsageError
from harness.paths import shipped, unique_paths
from harness.results import plain_name
from harness.text import did_you_mean, unknown_keys

FAILURE_KINDS = ("exception", "hang", "data-loss", "corruption")
ROLES = ("trigger", "control")
# A reference in a BUG's upstream entry: `owner/repo#12`, or `#13` of the repository named before it.
UPSTREAM_RE = re.compile(r"(?:([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+))?#(\d+)")


@dataclass(frozen=True)
class Variant:
    name: str
    role: str
    run: str
    timeout: float
    params: dict = field(default_factory=dict)
    requirements: list | None = None  # replaces the bug's requirements (e.g. a stdlib-only level)
    # Seconds allowed before the repro arms its deadline (ctx.arm_deadline()): slow imports and
    # seeding are not a hang. 0: the deadline runs from the start of the attempt.
    setup_timeout: float = 0.0
    # Package -> version specifier an installed release must meet for the variant to apply (e.g. a
    # control whose workaround old releases lack); elsewhere the variant is skipped, not run.
    requires: dict = field(default_factory=dict)
    # This trigger's own measured rate, when it differs from the bug's (the bug's is the weakest
    # trigger's): an `absent` verdict of this variant needs attempts by its own rate.
    trigger_rate: dict | None = None
    # The controls that validate this trigger (each is the trigger's workload with one workaround);
    # None: every control of the bug.
    controls: tuple | None = None


@dataclass(frozen=True)
class Bug:
    id: str
    title: str
    path: Path
    upstream: list
    packages: list          # the packages under test: the axes of matrix and bisect
    requirements: list      # what an env installs by default; --with overrides by name
    failure_kind: str
    signature: str | None
    services: list
    trigger_rate: dict      # measured: {"reproduced": k, "attempts": n, "cell": "..."}
    variants: dict
    notes: str = ""
    # The top-level modules that are "the library under test": an exception bug's matching error
    # must be raised from one of them (attribution). None: those of the `packages` distributions,
    # found in the child's env.
    library: tuple | None = None

    @property
    def own_package(self) -> str | None:
        """The package of the project the repro lives in (the [project] name of the nearest
        pyproject.toml above it, normalized), or None: a maintainer's bug of their own code."""
        return project_name(self.path.resolve().parent)

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise UsageError(f"bug {self.id} has no variant {name!r}; it has: {', '.join(self.variants)}"
                             f"{did_you_mean(name, self.variants)}")
        return self.variants[name]

    @property
    def controls(self) -> list:
        return [v for v in self.variants.values() if v.role == "control"]

    def controls_for(self, variant: Variant) -> list:
        """The controls that validate a trigger variant: the ones it names, else all of them."""
        if variant.controls is None:
            return self.controls
        return [self.variants[name] for name in variant.controls]

    def validated_by(self, control: Variant) -> list:
        """The triggers a control validates: those that name it, and those that name none."""
        return [v for v in self.variants.values() if v.role == "trigger" and control in self.controls_for(v)]

    def rate_of(self, variant: Variant | None = None) -> dict:
        """The measured trigger rate a variant's attempts are planned and judged by: a trigger's own if
        it has one, else the bug's (its weakest trigger's). A control's `absent` says its workaround
        avoids the bug its triggers show, so it is planned by the weakest rate among the triggers it
        validates (Athena's serialised control by the library-level trigger's 50 of 50, not by
        read-sql's 14 of 20)."""
        if variant is None:
            return self.trigger_rate
        if variant.trigger_rate:
            return variant.trigger_rate
        if variant.role == "control":
            rates = [self.rate_of(t) for t in self.validated_by(variant)]
            if rates:
                return min(rates, key=lambda rate: _lower_bound(rate, 0.95))
        return self.trigger_rate

    def trigger_rate_lower_bound(self, confidence: float = 0.95, variant: Variant | None = None) -> float:
        """One-sided lower confidence bound of the measured per-attempt trigger rate (stats.rate_lower_bound):
        the bound instead of k/n keeps an `absent` verdict honest when the rate was measured on few attempts."""
        return _lower_bound(self.rate_of(variant), confidence)


def _lower_bound(rate: dict, confidence: float) -> float:
    """Bug.trigger_rate_lower_bound of a measured rate {"reproduced": k, "attempts": n}."""
    return stats.rate_lower_bound(rate["reproduced"], rate["attempts"], confidence)


@functools.lru_cache(maxsize=None)
def project_name(directory: Path) -> str | None:
    """The normalized [project] name of the nearest pyproject.toml at or above `directory`."""
    from packaging.utils import canonicalize_name

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    for each in (directory, *directory.parents):
        try:
            name = tomllib.loads((each / "pyproject.toml").read_text()).get("project", {}).get("name")
        except (OSError, ValueError):
            continue
        return canonicalize_name(name) if isinstance(name, str) else None
    return None


def issue_url(repo: str, number: str) -> str:
    """GitHub's page of an issue or pull request (it redirects an issue number to the pull request)."""
    return f"https://github.com/{repo}/issues/{number}"


def upstream_reference(entry: str) -> tuple[str, str] | None:
    """(kind, url) of an upstream entry that starts with `owner/repo#N`, else None. The kind is
    OSV's reference type: FIX if the rest of the entry says fix (fixed, fixes), REPORT if it
    says report, else WEB."""
    match = UPSTREAM_RE.match(entry)
    if not match or not match.group(1):
        return None
    rest = entry[match.end():]
    kind = "FIX" if re.search(r"\bfix", rest) else "REPORT" if "report" in rest else "WEB"
    return kind, issue_url(match.group(1), match.group(2))


def repro_dirs() -> list[Path]:
    """Where repros are looked for, first wins: ./repros, REPRO_PATH, the shipped bugs."""
    extra = [Path(p) for p in os.environ.get("REPRO_PATH", "").split(os.pathsep) if p]
    return unique_paths([Path.cwd() / "repros", *extra, shipped("repros")])


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"repros.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _problem(path: Path, text: str) -> UsageError:
    return UsageError(f"{path}: {text}")


def _known_keys(path: Path, where: str, raw: dict, record) -> None:
    """Refuse a key the record type has no field for: a misspelt key would otherwise be ignored
    (a 'servics' list loads as no service). The name and the path are the loader's, not the file's."""
    problem = unknown_keys(raw, [f.name for f in fields(record) if f.name not in ("name", "path")])
    if problem:
        raise _problem(path, f"{where}: {problem}")


def _variant(path: Path, module, name: str, raw: dict) -> Variant:
    if not isinstance(raw, dict):
        raise _problem(path, f"variant {name!r}: must be a dict")
    _known_keys(path, f"variant {name!r}", raw, Variant)
    if raw.get("role") not in ROLES:
        raise _problem(path, f"variant {name!r}: role must be one of {ROLES}")
    if not callable(getattr(module, raw.get("run", ""), None)):
        raise _problem(path, f"variant {name!r}: run={raw.get('run')!r} is not a function of the file")
    timeout = raw.get("timeout")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise _problem(path, f"variant {name!r}: timeout must be a positive number of seconds")
    requirements = raw.get("requirements")
    if requirements is not None and not isinstance(requirements, list):
        raise _problem(path, f"variant {name!r}: requirements must be a list")
    setup = raw.get("setup_timeout", 0)
    if not isinstance(setup, (int, float)) or setup < 0:
        raise _problem(path, f"variant {name!r}: setup_timeout must be a number of seconds >= 0")
    rate = raw.get("trigger_rate")
    if rate is not None and (raw["role"] != "trigger" or not _valid_rate(rate)):
        raise _problem(path, f"variant {name!r}: trigger_rate is for trigger variants: "
                             "{'reproduced': k, 'attempts': n} with 0 < k <= n")
    controls = raw.get("controls")
    if controls is not None and (raw["role"] != "trigger" or not isinstance(controls, list) or not controls):
        raise _problem(path, f"variant {name!r}: controls is a non-empty list, on trigger variants only")
    return Variant(name, raw["role"], raw["run"], float(timeout), dict(raw.get("params", {})), requirements,
                   float(setup), requires=_requires(path, name, raw.get("requires", {})),
                   trigger_rate=dict(rate) if rate else None,
                   controls=tuple(controls) if controls is not None else None)


def _valid_rate(rate) -> bool:
    return isinstance(rate, dict) and 0 < rate.get("reproduced", 0) <= rate.get("attempts", 0)


def _requires(path: Path, name: str, requires) -> dict:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if not isinstance(requires, dict):
        raise _problem(path, f"variant {name!r}: requires must map package names to version specifiers")
    for package, spec in requires.items():
        try:
            SpecifierSet(spec)
        except (InvalidSpecifier, TypeError):
            raise _problem(path, f"variant {name!r}: requires {package!r}: bad specifier {spec!r}") from None
    return dict(requires)


def load_bug(path: Path) -> Bug:
    module = _load_module(path)
    raw = getattr(module, "BUG", None)
    if not isinstance(raw, dict):
        raise _problem(path, "declares no BUG dict")
    _known_keys(path, "BUG", raw, Bug)
    for key in ("id", "title", "failure_kind", "variants", "trigger_rate"):
        if key not in raw:
            raise _problem(path, f"BUG lacks {key!r}")
    if raw["failure_kind"] not in FAILURE_KINDS:
        raise _problem(path, f"failure_kind must be one of {FAILURE_KINDS}")
    if raw["failure_kind"] == "exception" and not raw.get("signature"):
        raise _problem(path, "an exception bug needs a signature (regular expression)")
    rate = raw["trigger_rate"]
    if not _valid_rate(rate):
        raise _problem(path, "trigger_rate must be {'reproduced': k, 'attempts': n} with 0 < k <= n")
    variants = {name: _variant(path, module, name, v) for name, v in raw["variants"].items()}
    if "trigger" not in variants or not any(v.role == "control" for v in variants.values()):
        raise _problem(path, "needs a 'trigger' variant and at least one control")
    for variant in variants.values():
        unknown = [c for c in variant.controls or () if getattr(variants.get(c), "role", None) != "control"]
        if unknown:
            raise _problem(path, f"variant {variant.name!r}: controls {unknown} are not control variants")
    if raw["id"].replace("-", "_") != path.stem:
        raise _problem(path, f"file name must be the bug id with '_' for '-': {raw['id'].replace('-', '_')}.py")
    return Bug(
        id=raw["id"], title=raw["title"], path=path, upstream=list(raw.get("upstream", [])),
        packages=list(raw.get("packages", [])), requirements=list(raw.get("requirements", raw.get("packages", []))),
        failure_kind=raw["failure_kind"], signature=raw.get("signature"), services=list(raw.get("services", [])),
        trigger_rate=dict(rate), variants=variants, notes=raw.get("notes", ""),
        library=_library(path, raw.get("library")),
    )


def _library(path: Path, library) -> tuple | None:
    if library is None:
        return None
    if not isinstance(library, list) or not all(isinstance(m, str) and m.isidentifier() for m in library):
        raise _problem(path, "library must be a list of top-level module names (['deltalake'])")
    return tuple(library)


def discover() -> tuple[dict[str, Bug], dict[str, str]]:
    """Every valid repro by id, and every repro file that cannot be loaded with its problem.

    One broken file (a repro being written) must not hide the others.
    """
    bugs, broken, claimed = {}, {}, set()
    for directory in repro_dirs():
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_") or path.stem in claimed:
                continue  # a file of this id in an earlier directory wins, even a broken one
            claimed.add(path.stem)
            bug, problem = _try_load(path)
            if bug is None:
                broken[str(path)] = problem
            else:
                bugs[bug.id] = bug
    return bugs, broken


def bugs_of(bug_ids) -> dict[str, Bug]:
    """The bugs of these ids as `discover()` finds them (the first file of an id wins, a broken one
    is left out), importing those files only: a command that reads records runs no other repro."""
    bugs = {}
    for stem in sorted({bug_id.replace("-", "_") for bug_id in bug_ids if plain_name(bug_id)}):
        files = [directory / f"{stem}.py" for directory in repro_dirs() if (directory / f"{stem}.py").exists()]
        bug = _try_load(files[0])[0] if files and not stem.startswith("_") else None
        if bug is not None:
            bugs[bug.id] = bug
    return bugs


def _try_load(path: Path) -> tuple[Bug | None, str | None]:
    """(the bug, None), or (None, the problem) for a file that cannot be loaded."""
    try:
        return load_bug(path), None
    except UsageError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a syntax or import error in the file itself
        return None, f"{path}: cannot be loaded: {type(exc).__name__}: {exc}"


def all_bugs() -> dict[str, Bug]:
    return discover()[0]


def get_bug(bug_id: str) -> Bug:
    bugs, broken = discover()
    if bug_id not in bugs:
        hint = next((problem for path, problem in broken.items()
                     if Path(path).stem == bug_id.replace("-", "_")), None)
        if hint:
            raise UsageError(f"bug {bug_id!r} is broken: {hint}")
        raise UsageError(f"unknown bug {bug_id!r}; known bugs: {', '.join(sorted(bugs)) or '(none)'}"
                         f"{did_you_mean(bug_id, bugs)}")
    return bugs[bug_id]
