"""The regression watch, end to end on a package index of its own.

The test makes tiny pure-Python wheels of a fake library (`watchlib`, whose Counter loses updates
under threads when its lock is missing) and of its dependency (`watchdep`), serves them from a
PEP 691 simple index on 127.0.0.1, and runs a repro of that bug through the real engine: real uv
envs, real child processes. A "new release" is a wheel dropped into the index's folder.
"""
import hashlib
import json
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import small_tmpfs
from harness import matrix, results, watch
from harness.cell import Options
from harness.envs import package_index
from harness.runner import Planned, run_cells
from test_bisect import LOCKED, TOY_REPRO, UNLOCKED
from test_envs import make_wheel

ROOT = Path(__file__).resolve().parent.parent
CURRENT = "%d.%d" % sys.version_info[:2]

# The toy bug of the git-bisect tests, on a library of its own (installed from the index, not a checkout).
REPRO = TOY_REPRO.replace("toylib-lost-update", "watchlib-lost-update").replace("toylib", "watchlib")

HISTORY = 'exclude_newer = "release"\ntier = "history"\n'


def cells(pin: str, expect: str, extra: str = "") -> str:
    return (f'\n[[cells]]\npython = ["{CURRENT}"]\npins = ["{pin}"]\nvariants = ["trigger"]\n'
            f'expect = "{expect}"\n{extra}')


# 1.0 has the bug, 1.1 fixed it; the watch follows the newest release.
MATRIX = ('bug = "watchlib-lost-update"\n' + cells("watchlib==1.0", "present", HISTORY)
          + cells("watchlib==1.1", "absent", HISTORY) + cells("watchlib==latest", "absent"))


VANISHED: set = set()  # wheels the index still lists but whose file is gone (404), as a deleted release


class Index(BaseHTTPRequestHandler):
    """A PEP 691 JSON simple index of the wheels in one folder; upload times from `uploaded`."""

    def __init__(self, *args, folder: Path, uploaded: dict, **kwargs):
        self.folder, self.uploaded = folder, uploaded
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_HEAD(self):  # uv asks first whether it may read a wheel's metadata by range: it may not
        self.head_only = True
        self.do_GET()

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:1] == ["files"] and len(parts) == 2 and (self.folder / parts[1]).is_file() \
                and parts[1] not in VANISHED:
            return self._send(200, (self.folder / parts[1]).read_bytes(), "application/octet-stream")
        if parts[:1] == ["simple"] and len(parts) == 2:
            wheels = sorted(self.folder.glob(f"{parts[1].replace('-', '_')}-*.whl"))
            if wheels:
                return self._send(200, json.dumps(self._page(parts[1], wheels)).encode(),
                                  "application/vnd.pypi.simple.v1+json")
        return self._send(404, b"not found", "text/plain")

    def _page(self, name: str, wheels: list) -> dict:
        files = [{"filename": w.name, "url": f"/files/{w.name}", "yanked": False, "requires-python": None,
                  "hashes": {"sha256": hashlib.sha256(w.read_bytes()).hexdigest()},
                  "upload-time": self.uploaded[w.name]} for w in wheels]
        versions = sorted({w.name.split("-")[1] for w in wheels})
        return {"meta": {"api-version": "1.1"}, "name": name, "files": files, "versions": versions}

    def _send(self, code: int, body: bytes, kind: str):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a new release shows at once
        self.end_headers()
        if not getattr(self, "head_only", False):
            self.wfile.write(body)


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """The index on 127.0.0.1, a REPRO_PATH with the repro, a matrix folder, caches of their own.
    Returns release(name, version, code, requires, date): a new release on the index."""
    folder, uploaded = tmp_path / "index", {}
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Index, folder=folder, uploaded=uploaded))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    repros = tmp_path / "repros"
    repros.mkdir()
    (repros / "watchlib_lost_update.py").write_text(REPRO)
    (tmp_path / "matrix").mkdir()
    (tmp_path / "matrix" / "watchlib_lost_update.toml").write_text(MATRIX)
    env = {"UV_DEFAULT_INDEX": f"http://127.0.0.1:{server.server_address[1]}/simple", "REPRO_PATH": str(repros),
           "REPRO_CACHE_DIR": str(tmp_path / "cache"), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def release(name, version, code, requires, date):
        wheel = make_wheel(folder, name, version, code, requires)
        uploaded[wheel.name] = date
        package_index.releases.cache_clear()  # what a new process would see
        return wheel

    release("watchdep", "1.0", "", [], "2026-01-01T00:00:00Z")
    release("watchlib", "1.0", UNLOCKED, ["watchdep>=1"], "2026-01-02T00:00:00Z")
    release("watchlib", "1.1", LOCKED, ["watchdep>=1"], "2026-02-01T00:00:00Z")
    yield release, tmp_path, env
    server.shutdown()
    server.server_close()
    package_index.releases.cache_clear()


def run_tracking_cell(matrix_dir: Path, results_dir: Path) -> dict:
    """One day of the watch: the `latest` cell resolved and run, judged as conftest.py does, kept."""
    entry = matrix.load(matrix_dir)["watchlib-lost-update"]
    latest = next(e for e in entry["cells"] if matrix.tracks_latest(e))
    cell = matrix.resolve(latest)
    record, = run_cells([Planned(cell, expect=latest.expect, extra=matrix.declared(latest, cell))], Options())
    watch.judge(record, latest, [results_dir])
    results.append(results_dir / "main.jsonl", record)
    return record


def repro(*args, env, cwd, python=False):
    """`repro ARGS` (or `python ARGS` with python=True) in `cwd`, on the index's environment."""
    command = [sys.executable, *args] if python else [sys.executable, "-m", "harness", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_a_new_release_that_brings_the_bug_back_fails_the_latest_cell_with_its_evidence(local_index):
    release, tmp, env = local_index
    day1, day2, published = tmp / "day1", tmp / "day2", tmp / "published"

    first = run_tracking_cell(tmp / "matrix", day1)
    assert first["verdict"] == "absent" and first["pins"] == ["watchlib==latest"], first["reason"]
    assert first["resolved"]["releases"] == {"watchlib": "1.1"} and first["installed"] == {"watchlib": "1.1"}
    assert first["watch"]["previous"] is None  # nothing recorded before: no diff to show
    (published / "main.jsonl").parent.mkdir()
    (published / "main.jsonl").write_text((day1 / "main.jsonl").read_text())

    # A new release brings the bug back, and with it a new release of its dependency.
    release("watchdep", "2.0", "", [], "2026-03-01T00:00:00Z")
    release("watchlib", "1.2", UNLOCKED, ["watchdep>=2"], "2026-03-02T00:00:00Z")
    second = run_tracking_cell(tmp / "matrix", day1)
    assert second["verdict"] == "present" and second["expected"] == ["absent"], second["reason"]
    assert second["resolved"]["releases"] == {"watchlib": "1.2"}
    assert second["watch"]["previous"]["verdict"] == "absent"
    assert second["watch"]["env_diff"]["moved"] == {"watchdep": ["1.0", "2.0"], "watchlib": ["1.1", "1.2"]}
    text = watch.explain(second)
    assert "resolved: watchlib 1.2" in text and "watchlib: 1.1 -> 1.2" in text and "watchdep: 1.0 -> 2.0" in text

    # The daily job: the payload of the tracking issue, against the published results.
    out = repro("matrix", "watch", str(day1), "--published", str(published), "--payloads", str(tmp / "p.json"),
                "--summary", str(tmp / "summary.md"), "--publish", str(tmp / "site" / "results.jsonl"),
                env=env, cwd=tmp)
    assert out.returncode == 0, out.stderr
    [payload] = json.loads((tmp / "p.json").read_text())
    assert payload["state"] == "open" and payload["labels"] == ["repro-watch", "watchlib-lost-update"]
    assert payload["title"] == f"[repro-watch] watchlib-lost-update: py{CURRENT} watchlib==latest"
    assert "| trigger | absent | **present** | absent | watchlib 1.2 |" in payload["body"]
    assert "resolved: watchlib 1.2" in payload["body"] and "watchdep: 1.0 -> 2.0" in payload["body"]
    assert "| watchlib-lost-update | trigger |" in (tmp / "summary.md").read_text()
    [kept] = results.read(tmp / "site" / "results.jsonl")  # the newest record of the cell, to publish
    assert kept["verdict"] == "present" and kept["started_at"] == second["started_at"]
    # What would be sent: a new issue; with the issue open, an update and a comment.
    [create] = watch.plan_requests([payload], [], "owner/repo")
    assert create == {"method": "POST", "url": "https://api.github.com/repos/owner/repo/issues",
                      "json": {"title": payload["title"], "body": payload["body"], "labels": payload["labels"]}}
    issue = {"number": 7, "title": payload["title"]}
    assert [(c["method"], c["url"].rsplit("/repos/owner/repo", 1)[1]) for c in
            watch.plan_requests([payload], [issue], "owner/repo")] == [("PATCH", "/issues/7"),
                                                                       ("POST", "/issues/7/comments")]

    # Fixed again: the issue is closed.
    (published / "main.jsonl").write_text((day1 / "main.jsonl").read_text())
    release("watchlib", "1.3", LOCKED, ["watchdep>=2"], "2026-04-01T00:00:00Z")
    third = run_tracking_cell(tmp / "matrix", day2)
    assert third["verdict"] == "absent" and third["resolved"]["releases"] == {"watchlib": "1.3"}
    [back] = watch.issue_payloads(watch.newest_records([day2]), watch.newest_records([published]))
    assert back["state"] == "closed" and "meets its expectation again" in back["body"]
    assert [(c["method"], c["json"].get("state")) for c in watch.plan_requests([back], [issue], "owner/repo")] == [
        ("POST", None), ("PATCH", "closed")]


@pytest.mark.slow
def test_refresh_runs_the_new_releases_and_writes_what_it_measured(local_index):
    release, tmp, env = local_index
    release("watchlib", "1.2", UNLOCKED, ["watchdep>=1"], "2026-03-02T00:00:00Z")
    path = tmp / "matrix" / "watchlib_lost_update.toml"
    before = path.read_text()
    listed = repro("matrix", "refresh", "--list", "--matrix-dir", str(tmp / "matrix"), env=env, cwd=tmp)
    assert listed.returncode == 0, listed.stderr
    assert "watchlib newest in the matrix 1.1; since: 1.2" in listed.stdout
    assert f"would run: py{CURRENT} watchlib==1.2 trigger" in listed.stdout and path.read_text() == before
    out = repro("matrix", "refresh", "--matrix-dir", str(tmp / "matrix"), "--quiet", "--results",
                str(tmp / "refresh.jsonl"), env=env, cwd=tmp)
    assert out.returncode == 0, out.stderr
    added = path.read_text()[len(before.rstrip("\n")):]
    assert 'pins = ["watchlib==1.2"]' in added and 'expect = "present"' in added and 'tier = "history"' in added
    assert "measured present (reproduced in 1 of 1 attempts)" in added
    assert "+expect = \"present\"" in out.stdout  # the diff for review
    [record] = results.read(tmp / "refresh.jsonl")
    assert record["verdict"] == "present" and record["installed"] == {"watchlib": "1.2"}
    cells = matrix.load(tmp / "matrix")["watchlib-lost-update"]["cells"]
    assert any(e.cell.pins == ("watchlib==1.2",) and e.expect == ("present",) and e.tier == "history" for e in cells)
    again = repro("matrix", "refresh", "--list", "--matrix-dir", str(tmp / "matrix"), env=env, cwd=tmp)
    assert "newest in the matrix 1.2; since: none" in again.stdout


def test_env_diff_names_what_moved():
    assert watch.env_diff({"a": "1", "b": "1", "c": "1"}, {"a": "1", "b": "2", "d": "1"}) == {
        "moved": {"b": ["1", "2"]}, "added": {"d": "1"}, "removed": {"c": "1"}}


def test_a_latest_pin_is_name_equals_latest_and_newest_is_the_newest_python_found(tmp_path, monkeypatch):
    from harness.errors import UsageError

    (tmp_path / "watchlib_lost_update.py").write_text(REPRO)
    monkeypatch.setenv("REPRO_PATH", str(tmp_path))
    path = tmp_path / "watchlib_lost_update.toml"
    path.write_text(MATRIX.replace("watchlib==latest", "watchlib>=latest"))
    with pytest.raises(UsageError, match="pinned as NAME==latest"):
        matrix.load_file(path)
    path.write_text(MATRIX.replace(f'python = ["{CURRENT}"]\npins = ["watchlib==latest"]',
                                   'python = ["newest"]\npins = ["watchlib==latest"]'))
    cells = matrix.load_file(path)["cells"]
    [latest] = [e for e in cells if matrix.tracks_latest(e)]
    assert latest.cell.python == "newest" and latest.cell.pins == ("watchlib==latest",)
    assert not any(matrix.tracks_latest(e) for e in cells if e is not latest)
    newest = matrix.newest_python()
    assert newest >= CURRENT.split(".")[0] and matrix.concrete_python("newest") == newest
    assert matrix.concrete_python("3.11.7") == "3.11.7"


@pytest.mark.slow
@pytest.mark.fault("fooled: a cell that cannot install")
def test_a_latest_cell_whose_release_vanished_fails_its_test(local_index):
    """The index lists watchlib 1.1 but its file is gone (404): the `latest` cell cannot install what
    it expects to test. That is a failed test (exit 1), not a skip that keeps the watch green."""
    release, tmp, env = local_index
    VANISHED.add("watchlib-1.1-py3-none-any.whl")
    try:
        out = run_latest_cell(tmp, env)
    finally:
        VANISHED.clear()
    assert out.returncode == 1, out.stdout[-3000:]
    [record] = results.read(next((tmp / "results").glob("*.jsonl")))  # main.jsonl, or gwN.jsonl under xdist
    assert record["verdict"] == "skipped" and record["skip_kind"] in ("not-installable", "env-broken")
    assert "1 failed" in out.stdout, out.stdout[-3000:]


def run_latest_cell(tmp: Path, env: dict, *args):
    return repro("-m", "pytest", "matrix/", "-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-q", "-rs",
                 "--attempts", "1", "--results-dir", str(tmp / "results"), "-k", "latest", *args, env=env, cwd=tmp,
                 python=True)


@pytest.mark.slow
@pytest.mark.fault("fooled: a cell that cannot install")
def test_a_full_disk_during_the_env_build_is_an_error_that_fails_the_cell(local_index):
    """The envs live on a 64 KiB tmpfs: the build hits ENOSPC. That is `error` (the machine broke), and
    the cell fails, never `skipped` with exit 0."""
    release, tmp, env = local_index
    with small_tmpfs(tmp / "small", "64k") as small:
        out = run_latest_cell(tmp, {**env, "REPRO_CACHE_DIR": str(small)})
    assert out.returncode == 1, out.stdout[-3000:]
    [record] = results.read(next((tmp / "results").glob("*.jsonl")))  # main.jsonl, or gwN.jsonl under xdist
    assert record["verdict"] == "error" and "disk space" in record["reason"], record["reason"]


@pytest.mark.slow
@pytest.mark.fault("CI publishing: code under test isolated")
def test_with_latest_executor_docker_and_no_engine_a_latest_cell_fails_and_runs_nothing(local_index):
    """CI runs the `latest` cells with --latest-executor docker. Without an engine the cell fails
    with the reason: the unreviewed release is never run on the host instead."""
    release, tmp, env = local_index
    out = repro("-m", "pytest", "matrix/", "-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-q", "-rs",
                "--attempts", "1", "--results-dir", str(tmp / "results"), "--latest-executor", "docker",
                "--tier", "all", env={**env, "DOCKER_HOST": f"unix://{tmp}/no-engine.sock"}, cwd=tmp, python=True)
    assert out.returncode == 1 and "1 failed, 2 passed" in out.stdout, out.stdout[-3000:]
    assert "cannot run this cell in a container" in out.stdout and "Traceback" not in out.stdout
    written = [r for f in (tmp / "results").glob("*.jsonl") for r in results.read(f)]
    assert len(written) == 2, "the two pinned cells ran (here), the latest one did not run at all"
    assert all(r["executor"]["kind"] == "local" for r in written)


@pytest.mark.slow
@pytest.mark.fault("CI publishing: code under test isolated")
def test_with_latest_executor_docker_a_latest_cell_runs_in_a_container(local_index):
    from harness.executors.docker import engine
    from harness.executors.docker.executor import DockerExecutor

    try:
        engine.client(timeout=10)
        DockerExecutor()
    except Exception as exc:  # noqa: BLE001 - no engine or no image here: nothing to show
        pytest.skip(f"no docker executor here: {exc}")
    release, tmp, env = local_index
    out = run_latest_cell(tmp, env, "--latest-executor", "docker")
    assert out.returncode == 0, out.stdout[-3000:]
    [record] = results.read(next((tmp / "results").glob("*.jsonl")))
    assert record["executor"]["kind"] == "docker" and record["verdict"] == "absent", record
