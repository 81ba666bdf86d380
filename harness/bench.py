"""Benchmark figures (printed, never asserted): `nox -s bench` or `python -m harness.bench`.

Per bug, from its matrix [verify] cells: env build cold (empty harness cache; uv's own
download cache as it is) and warm, warm time to a `present` and to an `absent` verdict,
and the trigger rate observed over N attempts on the present cell; the start time of each
service the bugs need (the moto server).

`--matrix` instead times the whole default matrix (`nox`, the default tier of every
matrix file for every Python found) twice, cold (empty harness, uv and nox caches) and
warm, counts the envs and packages each run had to install, and compares the wall time
with the floor: the attempts the verdicts rest on, each as long as it ran (the child's
interpreter start, its imports and its workload), controls run in the cells included,
controls reused from another cell not (`floor_seconds`).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import matrix, results, services
from harness.cell import Options, requirements_for
from harness.errors import UsageError
from harness.executors.base import Executor
from harness.executors.local import LocalExecutor
from harness.paths import ROOT
from harness.record import cells, verdicts_of
from harness.registry import get_bug
from harness.runner import run_cells
from harness.services import ServicePool
from harness.verdict import ABSENT, PRESENT


def _timed(fn):
    started = time.monotonic()
    value = fn()
    return value, time.monotonic() - started


def _row(label: str, value: str) -> str:
    return f"  {label:<44} {value}"


def env_builds(cell, executor: Executor) -> tuple[float, float, bool]:
    """Seconds for a cold build (fresh harness cache) and a warm one, and whether warm reused it."""
    bug = get_bug(cell.bug)
    interpreter = executor.find_interpreter(cell.python)
    requirements = requirements_for(bug, bug.variant(cell.variant), cell.pins)
    old = os.environ.get("REPRO_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as fresh:
        os.environ["REPRO_CACHE_DIR"] = fresh
        try:
            cold_env, cold = _timed(lambda: executor.ensure_env(interpreter, requirements, cell.exclude_newer))
            cold_env.release()  # done with it: the cache dir goes next
            warm_env, warm = _timed(lambda: executor.ensure_env(interpreter, requirements, cell.exclude_newer))
            warm_env.release()
        finally:
            if old is None:
                os.environ.pop("REPRO_CACHE_DIR", None)
            else:
                os.environ["REPRO_CACHE_DIR"] = old
    return cold, warm, warm_env.reused


def run_one(cell, options: Options, pool: ServicePool):
    return run_cells([cell], options, services=pool)[0]


def bench_bug(bug_id: str, rate_attempts: int, pool: ServicePool) -> list[str]:
    declared = (matrix.for_bug(bug_id) or {}).get("verify", {})
    if set(declared) != {PRESENT, ABSENT}:
        return [f"{bug_id}: no [verify] present and absent cells in its matrix file: not measured"]
    present, absent = matrix.resolve(declared[PRESENT]), matrix.resolve(declared[ABSENT])
    lines = [f"{bug_id}  (present cell: {present.label}; absent cell: {absent.label})"]
    cold, warm, reused = env_builds(present, LocalExecutor())  # the executor of Options()
    lines.append(_row("env build, cold (empty harness cache)", f"{cold:7.2f} s"))
    lines.append(_row("env build, warm", f"{warm:7.2f} s  (installed nothing: {reused})"))
    for name, cell in (("present", present), ("absent", absent)):
        run_one(cell, Options(attempts=1, control_attempts=0), pool)  # warm the env
        record, seconds = _timed(lambda: run_one(cell, Options(control_attempts=0), pool))
        lines.append(_row(f"time to verdict, warm, {name} cell",
                          f"{seconds:7.2f} s  -> {record.verdict} ({record.attempts} attempts)"))
        record, seconds = _timed(lambda: run_one(cell, Options(), pool))
        lines.append(_row("  same, with its controls (run unless clean)",
                          f"{seconds:7.2f} s  -> {record.verdict}"))
    record = run_one(present, Options(attempts=rate_attempts, measure=True, control_attempts=0), pool)
    hits = record.reproductions or 0
    lines.append(_row("trigger rate on the present cell", f"{hits}/{record.attempts} = "
                      f"{hits / max(1, record.attempts):.2f}  (outcomes {record.outcomes})"))
    return lines


def bench_matrix() -> list[str]:
    """The whole default matrix (`nox`), cold then warm; the warm run should install nothing.

    Cold: empty harness env cache, empty uv cache (every wheel downloaded again) and no nox
    venvs. Warm: the same again with everything the cold run left. nox's output streams to
    stderr as the run goes (cell k of n, attempt k of n, elapsed).
    """
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        env = {**os.environ, "REPRO_CACHE_DIR": str(Path(tmp) / "cache"), "UV_CACHE_DIR": str(Path(tmp) / "uv")}
        for label in ("cold", "warm"):
            shutil.rmtree(ROOT / "results" / "nox", ignore_errors=True)
            if label == "cold":
                shutil.rmtree(ROOT / ".nox", ignore_errors=True)
            print(f"[bench] whole default matrix, {label} run", file=sys.stderr, flush=True)
            started = time.monotonic()
            returncode, installed = _run_nox(env)
            seconds = time.monotonic() - started
            records = cells([r for f in (ROOT / "results" / "nox").rglob("*.jsonl") for r in results.read(f)])
            built = sum(1 for r in records if r.env and not r.env.get("reused", True))
            verdicts = Counter(r.verdict for r in records)
            expected = sum(bool(r.expected) and r.verdict in verdicts_of(r.expected) for r in records)
            floor, spent = floor_seconds(records), sum(r.seconds or 0 for r in records)
            lines.append(f"  whole default matrix, {label}: {seconds / 60:5.1f} min, {len(records)} cells "
                         f"({', '.join(f'{n} {v}' for v, n in sorted(verdicts.items()))}; {expected} of "
                         f"{len(records)} as expected), {built} envs built, {installed} packages installed "
                         f"into nox venvs, nox exit {returncode}")
            lines.append(f"    wall {seconds:6.1f} s, the cells {spent:6.1f} s, floor {floor:6.1f} s "
                         f"(the attempts themselves): ratio {seconds / floor if floor else float('nan'):.2f}")
    return lines


def floor_seconds(records: list) -> float:
    """The seconds the verdicts' attempts ran, as the records (or their JSON) say them: each attempt's
    wall time, and each control attempt run in the cell (one reused from another cell ran there, not here)."""
    total = 0.0
    for record in cells(records):
        total += sum(record.durations or [])
        total += sum(c.duration or 0 for c in record.controls or [] if not c.reused_from)
    return total


def _run_nox(env: dict) -> tuple[int, int]:
    """Run plain `nox` (verbose: uv's install summaries show), echoing its output to stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "nox", "--verbose", "--no-color"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    installed = 0
    try:
        for line in proc.stdout:
            sys.stderr.write(line)
            found = re.search(r"Installed (\d+) packages? in", line)
            installed += int(found.group(1)) if found else 0
        return proc.wait(), installed
    finally:
        if proc.poll() is None:  # interrupted: as Ctrl-C would, so pytest cleans up its cells
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def bench_service_starts(names, starts: int = 5) -> list[str]:
    """Start and stop each service `starts` times: the cost a run that needs it pays once."""
    lines = []
    for name in sorted(set(names)):
        seconds = []
        for _ in range(starts):
            started = time.monotonic()
            with services.started([name]):
                seconds.append(time.monotonic() - started)
        seconds.sort()
        lines.append(_row(f"{name} server start (ready to serve), {starts} starts",
                          f"median {seconds[len(seconds) // 2]:.2f} s, min {seconds[0]:.2f} s, "
                          f"max {seconds[-1]:.2f} s"))
    return lines


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="harness.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--bug", action="append", help="bugs to measure (default: every bug with [verify])")
    parser.add_argument("--rate-attempts", type=int, default=20)
    parser.add_argument("--matrix", action="store_true", help="time the whole default matrix, cold and warm")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up attempts and services like Ctrl-C does
    if args.matrix:
        print("\n".join(bench_matrix()), flush=True)
        return 0
    declared, broken = matrix.discover()
    for problem in broken.values():
        print(f"bench: broken matrix file left out: {problem}", file=sys.stderr)
    bugs = args.bug or [b for b, entry in declared.items() if set(entry["verify"]) == {PRESENT, ABSENT}]
    needed = {s for bug_id in bugs for s in get_bug(bug_id).services}
    if needed:
        print("services\n" + "\n".join(bench_service_starts(needed)), flush=True)
    with ServicePool() as pool:
        for bug_id in bugs:
            print("\n".join(bench_bug(bug_id, args.rate_attempts, pool)), flush=True)
    return 0


def _main() -> int:
    try:
        return main()
    except UsageError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(_main())
