"""Child side: runs one attempt of one variant inside the target interpreter.

It runs in every environment under test, with the rest of the child side (harness.attempt.CHILD_CODE).
Invoked by the parent as:

    python -m harness.child --request ATTEMPT_DIR/request.json [--variant NAME]

The request (harness.protocol.Request) says everything: which function of which repro,
the bug's oracle, the parameters and the deadline; `--variant` is only a label for process
listings. The child arms faulthandler's C watchdog (which dumps every thread's stack even
while a deadlock holds the GIL) a little before the parent's deadline, runs the variant,
judges the observation with the bug's oracle, writes its result (harness.protocol.Result)
atomically next to the request and leaves with os._exit so a library that aborts at
interpreter exit cannot spoil a result that is already known.
"""
import argparse
import faulthandler
import importlib.util
import os
import re
import signal
import sys
import threading
import time
import traceback

from harness.files import write_atomically
from harness.protocol import (
    ARMED_FILE,
    HANG_EVIDENCE_FILE,
    RESULT_FILE,
    STACKS_FILE,
    Request,
    Result,
)
from harness.verdict import CLEAN, OTHER_FAILURE, REPRODUCED

# How long before the parent's deadline the stacks are dumped, so the parent can read them.
STACK_DUMP_MARGIN = 1.0
# How long after the parent's deadline the child ends itself, whatever the parent does (it may
# be stopped, or dead): past the parent's kill grace, its stack dumps and its watchdog's slack.
HARD_DEADLINE_SLACK = 60.0
HARD_DEADLINE_EXIT = 124     # as timeout(1)


class Context:
    """What a variant function gets: its parameters, a private work dir, a way to leave notes."""

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
        """Record a line of evidence (shown with the result), capped: the record stays small."""
        self.notes.append(capped(str(text)))


# A note or a reason longer than this keeps its start and says how long it was (a repro or the library
# under test can note 100 MiB; every record, and every page built from it, would carry it).
TEXT_LIMIT = 4000


def capped(text, limit=TEXT_LIMIT):
    """`text` whole, or its first `limit` characters and the original length."""
    if len(text) <= limit:
        return text
    return "%s... [cut: %d characters in all]" % (text[:limit], len(text))


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


def _is_stdlib(path):
    """Is this code file the interpreter's own library (not a site-packages under it)?"""
    import sysconfig

    if path.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return True
    real = os.path.realpath(path)
    roots = {os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib")}
    inside = any(real.startswith(root) for root in roots)
    return inside and os.sep + "site-packages" + os.sep not in real and os.sep + "dist-packages" + os.sep not in real


def raising_frame(exc):
    """Where an exception was raised: {"module", "function", "file", "line"} of the innermost frame
    of its traceback outside the stdlib (a stdlib frame raises on behalf of its caller: an asyncio
    future re-raising, a dict iterator), else the innermost one. None for an exception that was
    made, never raised (no traceback)."""
    frames = []
    tb = getattr(exc, "__traceback__", None)
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    if not frames:
        return None
    frame, line = next((f for f in reversed(frames) if not _is_stdlib(f[0].f_code.co_filename)), frames[-1])
    return {"module": str(frame.f_globals.get("__name__")), "function": frame.f_code.co_name,
            "file": frame.f_code.co_filename, "line": line}


def frame_text(frame):
    return "%s.%s (%s:%s)" % (frame["module"], frame["function"], frame["file"], frame["line"])


def reported_errors(observation):
    """The observation with its errors as 'Type: message' texts, and beside them `error_frames`:
    per error the frame that raised it. A repro that reports the exception object itself (or lets
    it escape) lets the oracle attribute it; a text has no frame (None) and is taken at its word."""
    errors = observation.get("errors") or []
    if not isinstance(errors, list):
        errors = [errors]
    texts, frames = [], []
    for error in errors:
        if isinstance(error, BaseException):
            texts.append(capped(exception_text(error)))
            frames.append(raising_frame(error))
        else:
            texts.append(capped(str(error)))
            frames.append(None)
    if not errors:
        return observation
    return dict(observation, errors=texts, error_frames=frames)


def library_modules(request):
    """The top-level modules of the library under test: the repro's `library`, else those of the
    distributions under test (what they install, from their file lists)."""
    from importlib import metadata

    if request.library is not None:
        return sorted(request.library)
    names = set()
    for package in request.packages:
        try:
            names.update(_top_level_modules(metadata.distribution(package)))
        except metadata.PackageNotFoundError:
            pass
    return sorted(names)


def attributed(errors, frames, library):
    """Split the indices of `errors` by origin: those that may be the library's (raised in one of
    its modules, or of unknown origin) and the frames of those raised elsewhere. With no library
    modules known, every error may be the library's."""
    mine, foreign = [], []
    for index in errors:
        frame = frames[index] if index < len(frames) else None
        if frame and library and frame["module"].split(".")[0] not in library:
            foreign.append(frame)
        else:
            mine.append(index)
    return mine, foreign


def judge(request, observation, library=()):
    """The bug's oracle: map what the variant observed to an outcome.

    An exception bug's error counts only if it was raised from the library under test
    (`library`, its top-level modules): one with the bug's message raised elsewhere (another
    library sharing the workload, the repro itself) is another failure, naming its frame.

    observation keys (all optional): errors (list of 'Type: message' texts, with error_frames
    beside them: the frame each was raised in, or None),
    lost (rows lost silently), corrupt (records the repro found wrong, e.g. a unique key stored
    twice, with corrupt_detail saying how), hung (bool: the repro saw its own hang),
    signal (a sub-process of the repro died by this signal).
    """
    kind = request.failure_kind
    errors = observation.get("errors") or []
    if kind == "exception":
        pattern = re.compile(request.signature, re.IGNORECASE)
        matching = [i for i, e in enumerate(errors) if pattern.search(e)]
        mine, foreign = attributed(matching, observation.get("error_frames") or [], library)
        if mine:
            return REPRODUCED, "%d of %d errors match %r" % (len(mine), len(errors), request.signature)
        if foreign:
            return OTHER_FAILURE, ("%d error(s) match %r but were raised outside the library under test (%s): "
                                   "by %s" % (len(foreign), request.signature, ", ".join(library),
                                              frame_text(foreign[0])))
    if kind == "hang" and observation.get("hung"):
        return REPRODUCED, "the repro observed a hang"
    if observation.get("signal"):
        return OTHER_FAILURE, "a process of the repro died by signal %s" % observation["signal"]
    if errors:
        # For data-loss and corruption bugs a loud failure is explicitly not the (silent) bug.
        return OTHER_FAILURE, "errors not matching the bug's signature: %s" % errors[0][:300]
    if kind == "data-loss" and (observation.get("lost") or 0) > 0:
        return REPRODUCED, "%s rows lost silently" % observation["lost"]
    if kind == "corruption" and (observation.get("corrupt") or 0) > 0:
        return REPRODUCED, "%s records corrupt with no error (%s)" % (
            observation["corrupt"], observation.get("corrupt_detail") or "the repro gave no detail")
    return CLEAN, "no sign of the bug"


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


def run_variant(function, ctx):
    """Run the variant; an exception that escapes it counts as an observed error."""
    try:
        observation = function(ctx) or {}
    except BaseException as exc:  # noqa: BLE001 - everything the repro raises is evidence
        observation = {"errors": [exc], "traceback": traceback.format_exc()[-4000:]}
    return reported_errors(observation)


def dump_stacks_before(deadline, stacks):
    """Have faulthandler write every thread's stack a little before `deadline` (a time.time()),
    so the parent, which gives up at the deadline, can read them."""
    faulthandler.dump_traceback_later(max(0.1, deadline - time.time() - STACK_DUMP_MARGIN), exit=False,
                                      file=stacks)


def hard_deadline(deadline, parent):
    """End this child `HARD_DEADLINE_SLACK` seconds after the parent's deadline (a time.time()),
    without the repro's cooperation: a thread that first continues a parent the repro stopped
    (SIGSTOP), and SIGALRM with its default action (the kernel's, even if a thread holds the GIL)."""
    slack = float(os.environ.get("REPRO_CHILD_HARD_SLACK") or HARD_DEADLINE_SLACK)
    left = max(0.1, deadline - time.time() + slack)

    def end():
        time.sleep(left)
        try:
            os.kill(parent, signal.SIGCONT)
        except OSError:
            pass
        os._exit(HARD_DEADLINE_EXIT)

    threading.Thread(target=end, name="repro-hard-deadline", daemon=True).start()
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(int(left) + 2)


def arming(request, stacks, attempt_dir):
    """For a variant with a setup allowance, the function that starts its real deadline: `timeout`
    from now, but never past the request's deadline (the parent's rule too). Else None."""
    if not request.setup_timeout:
        return None

    def arm():
        dump_stacks_before(min(request.deadline, time.time() + request.timeout), stacks)
        write_atomically(os.path.join(attempt_dir, ARMED_FILE), "")

    return arm


def main(argv=None):
    parser = argparse.ArgumentParser(prog="harness.child")
    parser.add_argument("--request", required=True, help="the attempt's request.json (harness.protocol)")
    parser.add_argument("--variant", help="the variant's name: only a label for process listings")
    args = parser.parse_args(argv)
    with open(args.request) as handle:
        request = Request.from_json(handle.read())
    attempt_dir = os.path.dirname(os.path.abspath(args.request))

    stacks = open(os.path.join(attempt_dir, STACKS_FILE), "w")
    faulthandler.enable(file=stacks, all_threads=True)  # segfaults and aborts leave stacks too
    dump_stacks_before(request.deadline, stacks)
    hard_deadline(request.deadline, os.getppid())

    started = time.monotonic()
    function = getattr(load_repro(request.repro), request.run)
    workdir = os.path.join(attempt_dir, "work")
    os.makedirs(workdir, exist_ok=True)
    ctx = Context(dict(request.params), workdir, attempt_dir, arming(request, stacks, attempt_dir))

    observation = run_variant(function, ctx)
    outcome, reason = judge(request, observation, library_modules(request))
    if request.role == "control" and outcome == REPRODUCED:
        reason = "control reproduced the bug's signature: " + reason
    result = Result(
        outcome=outcome,
        reason=capped(reason),
        observation=observation,
        notes=ctx.notes,
        versions=installed_versions(request.packages),
        imported=imported_from(request.packages),
        foreign_modules=foreign_modules(),
        python=sys.version.split()[0],
        duration=round(time.monotonic() - started, 3),
        threads_alive=threading.active_count(),
        gil=gil_state(),
    )
    faulthandler.cancel_dump_traceback_later()
    write_atomically(os.path.join(attempt_dir, RESULT_FILE), result.to_json())
    sys.stdout.flush()
    sys.stderr.flush()
    if os.environ.get("REPRO_CHILD_EXIT") == "interpreter":
        # Diagnostic: leave through normal interpreter shutdown (atexit, finalizers) to see
        # whether the library aborts there; the result above is already safe on disk.
        sys.exit(0)
    os._exit(0)


if __name__ == "__main__":
    main()
