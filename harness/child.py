"""Child side: runs one attempt of one variant inside the target interpreter.

Stdlib-only and Python 3.9+, because it runs in every environment under test.
Invoked by the parent as:

    python -m harness.child --repro FILE --variant NAME --result PATH --stacks PATH
                            --timeout SECONDS [--params JSON]

It arms faulthandler's C watchdog (which dumps every thread's stack even while a
deadlock holds the GIL) a little before the parent's deadline, runs the variant,
judges the observation with the bug's oracle, writes a JSON result atomically and
leaves with os._exit so a library that aborts at interpreter exit cannot spoil a
result that is already known.
"""
import argparse
import faulthandler
import importlib.util
import json
import os
import re
import sys
import threading
import time
import traceback

from harness.files import write_atomically

SCHEMA = 1
# How long before the parent's deadline the stacks are dumped, so the parent can read them.
STACK_DUMP_MARGIN = 1.0
# Written next to the result when the repro arms its deadline (Context.arm_deadline).
ARMED_FILE = "armed"
# Written next to the result when the repro sees its bug's stall begin (Context.hang_evidence).
HANG_EVIDENCE_FILE = "hang-evidence"


class Context:
    """What a variant function gets: its parameters, a private work dir, the result path."""

    def __init__(self, params, workdir, attempt_dir, arm=None):
        self.params = params
        self.workdir = workdir
        self.notes = []
        self._attempt_dir = attempt_dir
        self._arm = arm

    def arm_deadline(self):
        """Start the attempt's deadline now, right before the part that may hang.

        Only for variants with a setup_timeout: what ran before (imports, seeding) was slow
        at worst, not the bug. Only the first call counts; without a setup_timeout a no-op.
        """
        arm, self._arm = self._arm, None
        if arm:
            arm()

    def hang_evidence(self, text):
        """Say that the bug's own stall has begun (e.g. a worker not done long after a healthy
        one would be), right before waiting on it with no timeout.

        For a bug whose failure is a hang, the parent's deadline counts as the bug only after
        this: a deadline that runs out anywhere else (a slow import, a too short --timeout,
        the repro's own monitor) is a hang, but not this bug's.
        """
        self.note(text)
        write_atomically(os.path.join(self._attempt_dir, HANG_EVIDENCE_FILE), str(text))

    def param(self, name, default):
        return self.params.get(name, default)

    def note(self, text):
        """Record a line of evidence (shown with the result)."""
        self.notes.append(str(text))


def exception_text(exc):
    """'Type: message' for an exception and every exception chained to it."""
    parts = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append("%s: %s" % (type(exc).__name__, exc))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def load_repro(path):
    spec = importlib.util.spec_from_file_location("repro_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judge(bug, observation):
    """The bug's oracle: map what the variant observed to an outcome.

    observation keys (all optional): errors (list of 'Type: message' texts),
    lost (rows lost silently), hung (bool: the repro saw its own hang),
    signal (a sub-process of the repro died by this signal).
    """
    kind = bug["failure_kind"]
    errors = observation.get("errors") or []
    if kind == "exception":
        pattern = re.compile(bug["signature"], re.IGNORECASE)
        matching = [e for e in errors if pattern.search(e)]
        if matching:
            return "reproduced", "%d of %d errors match %r" % (len(matching), len(errors), bug["signature"])
    if kind == "hang" and observation.get("hung"):
        return "reproduced", "the repro observed a hang"
    if observation.get("signal"):
        return "other-failure", "a process of the repro died by signal %s" % observation["signal"]
    if errors:
        # For data-loss bugs a loud failure is explicitly not the (silent) bug.
        return "other-failure", "errors not matching the bug's signature: %s" % errors[0][:300]
    if kind == "data-loss" and (observation.get("lost") or 0) > 0:
        return "reproduced", "%s rows lost silently" % observation["lost"]
    return "clean", "no sign of the bug"


def installed_versions(names):
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _top_level_modules(dist):
    """The importable top-level names a distribution installs (from its file list)."""
    names = set()
    for file in dist.files or ():
        head = file.parts[0] if file.parts else ""
        if not head or head.endswith((".dist-info", ".data", ".pth")) or head in ("..", "__pycache__"):
            continue
        names.add(head.split(".")[0] if "." in head else head)
    return sorted(names)


def imported_from(names):
    """Per package under test: its installed version and the files its imported modules came
    from (what the attempt really ran, not what the env was meant to hold)."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found[name] = None
            continue
        modules = {top: getattr(sys.modules[top], "__file__", None)
                   for top in _top_level_modules(dist) if top in sys.modules}
        found[name] = {"version": dist.version, "modules": modules}
    return found


def foreign_modules():
    """Modules imported from a site-packages that is not this interpreter's own: something on
    the path shadowed the cell's env (the harness's own packages, a stray PYTHONPATH)."""
    import site

    own = [os.path.realpath(p) + os.sep for p in site.getsitepackages()]
    foreign = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        real = os.path.realpath(path)
        outside = not any(real.startswith(prefix) for prefix in own)
        if outside and (os.sep + "site-packages" + os.sep in real or os.sep + "dist-packages" + os.sep in real):
            foreign.append("%s: %s" % (name, real))
    return sorted(foreign)[:20]


def gil_state():
    """Whether this is a free-threaded build, and whether the GIL is on now, at the end of the
    attempt: importing an extension that does not declare free-threading support turns it back on."""
    import sysconfig

    is_enabled = getattr(sys, "_is_gil_enabled", None)  # 3.13+
    return {"free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
            "abiflags": getattr(sys, "abiflags", ""), "enabled": is_enabled() if is_enabled else True}


def run_variant(bug, function, ctx):
    """Run the variant; an exception that escapes it counts as an observed error."""
    try:
        observation = function(ctx) or {}
    except BaseException as exc:  # noqa: BLE001 - everything the repro raises is evidence
        observation = {"errors": [exception_text(exc)], "traceback": traceback.format_exc()[-4000:]}
    return observation


def _setup_deadline(variant, args, stacks, attempt_dir, started):
    """For a variant with a setup allowance: push the stack dump back to the end of the
    allowance, and return the function that arms the real deadline (else None)."""
    setup = float(variant.get("setup_timeout", 0))
    if not setup:
        return None
    left = setup + args.timeout - (time.monotonic() - started)
    faulthandler.dump_traceback_later(max(0.1, left - STACK_DUMP_MARGIN), exit=False, file=stacks)

    def arm():
        faulthandler.dump_traceback_later(max(0.1, args.timeout - STACK_DUMP_MARGIN), exit=False, file=stacks)
        write_atomically(os.path.join(attempt_dir, ARMED_FILE), "")

    return arm


def main(argv=None):
    parser = argparse.ArgumentParser(prog="harness.child")
    parser.add_argument("--repro", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--stacks", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--params", default="{}")
    args = parser.parse_args(argv)

    stacks = open(args.stacks, "w")
    faulthandler.enable(file=stacks, all_threads=True)  # segfaults and aborts leave stacks too
    faulthandler.dump_traceback_later(max(0.1, args.timeout - STACK_DUMP_MARGIN), exit=False, file=stacks)

    started = time.monotonic()
    module = load_repro(args.repro)
    bug = module.BUG
    variant = bug["variants"][args.variant]
    params = dict(variant.get("params", {}))
    params.update(json.loads(args.params))
    attempt_dir = os.path.dirname(os.path.abspath(args.result))
    workdir = os.path.join(attempt_dir, "work")
    os.makedirs(workdir, exist_ok=True)
    ctx = Context(params, workdir, attempt_dir, _setup_deadline(variant, args, stacks, attempt_dir, started))

    observation = run_variant(bug, getattr(module, variant["run"]), ctx)
    outcome, reason = judge(bug, observation)
    if variant["role"] == "control" and outcome == "reproduced":
        reason = "control reproduced the bug's signature: " + reason
    result = {
        "schema": SCHEMA,
        "outcome": outcome,
        "reason": reason,
        "observation": observation,
        "notes": ctx.notes,
        "versions": installed_versions(bug.get("packages", [])),
        "imported": imported_from(bug.get("packages", [])),
        "foreign_modules": foreign_modules(),
        "python": sys.version.split()[0],
        "duration": round(time.monotonic() - started, 3),
        "threads_alive": threading.active_count(),
        "gil": gil_state(),
    }
    faulthandler.cancel_dump_traceback_later()
    write_atomically(args.result, json.dumps(result, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    if os.environ.get("REPRO_CHILD_EXIT") == "interpreter":
        # Diagnostic: leave through normal interpreter shutdown (atexit, finalizers) to see
        # whether the library aborts there; the result above is already safe on disk.
        sys.exit(0)
    os._exit(0)


if __name__ == "__main__":
    main()
