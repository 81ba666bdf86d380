"""beam-py311-gc-deadlock: sys._current_frames() deadlocks CPython 3.11 when a GC runs inside it.

On 3.11, `sys._current_frames()` holds the runtime's thread-list lock (HEAD_LOCK) while it
creates frame objects; such an allocation can start a collection right there, and freeing a
`threading.local` in that collection takes HEAD_LOCK again on the same thread: the process
stops for good with the GIL held (python/cpython#106883). Beam's worker status handler calls
it for every status request of the runner (apache/beam#33966).

The deadlock holds the GIL, so nothing inside the stuck process can notice it. Each variant
therefore runs the workload in a grandchild (this file run as a script) and watches it from
the attempt's child: progress counters in a shared memory map (CPython level), or status
requests of a gRPC runner on 127.0.0.1 that go unanswered (Beam level). A stall counts as this
bug only if a dump of every thread (faulthandler, written from a C signal handler without the
GIL) shows a thread stuck at the frame-dump call; a stall anywhere else is another failure.

Runs inside the target interpreter: stdlib at import time, apache_beam and grpc imported lazily.

Its cells and the verdict each should give: matrix/beam_py311_gc_deadlock.toml (schema: matrix/README.md);
what is known of the bug upstream and what was measured: repros/beam_py311_gc_deadlock.md.
"""
import json
import mmap
import os
import re
import signal
import struct
import subprocess
import sys
import time

BUG = {
    "id": "beam-py311-gc-deadlock",
    "title": "CPython 3.11: sys._current_frames() deadlocks when a GC runs inside it; Beam's worker "
             "status thread dump stops answering the runner",
    "upstream": [
        "python/cpython#106883 (report; fixed for 3.11 only in 3.11.12 by #117332: GC disabled during "
        "_PyThread_CurrentFrames; 3.12+ run the GC only from the eval breaker)",
        "apache/beam#33966 (report; workaround in 2.64.0: GC disabled around sys._current_frames() on 3.11)",
    ],
    "packages": ["apache-beam"],
    "requirements": ["apache-beam"],
    "failure_kind": "hang",
    # Measured under `flock /tmp/repro-measure.lock repro run ... --attempts 20 --measure`
    # (see the README's benchmark section); the verdict statistics use the weakest trigger.
    "trigger_rate": {"reproduced": 20, "attempts": 20,
                     "cell": "py3.11.7 apache-beam==2.63.0 (trigger, thread-dump); bare py3.11.7 (cpython-trigger)"},
    "services": [],
    "variants": {
        # Beam level, end to end: Beam's FnApiWorkerStatusHandler in an SDK worker answers the status
        # requests of a runner (a gRPC server in the attempt's child) while user code makes garbage.
        # Status requests come less often than a tight loop of dumps: more threads and shorter
        # garbage calls give each request more fresh frames to materialise (py3.11.7, 2.63.0: 4 threads,
        # 20 cycles, 6 s hung in 18 of 20 attempts; these settings in 20 of 20).
        "trigger": {"role": "trigger", "run": "beam_status", "timeout": 50,
                    "params": {"threads": 8, "cycles": 5, "duration": 8.0, "stall": 3.0, "startup": 25.0}},
        # Beam level, in process: Beam's own thread_dump() called in a loop under the same workload.
        "thread-dump": {"role": "trigger", "run": "beam_thread_dump", "timeout": 30,
                        "trigger_rate": {"reproduced": 50, "attempts": 50, "cell": "py3.11.7 apache-beam==2.63.0"},
                        "params": {"threads": 4, "duration": 4.0, "stall": 2.5, "startup": 20.0}},
        # CPython level on the bare interpreter: a thread calls sys._current_frames() in a loop.
        "cpython-trigger": {"role": "trigger", "run": "cpython_frames", "timeout": 20, "requirements": [],
                            "trigger_rate": {"reproduced": 50, "attempts": 50, "cell": "bare py3.11.7"},
                            "params": {"threads": 4, "duration": 4.0, "stall": 2.5, "startup": 10.0}},
        # The same CPython-level workload with the fix of CPython 3.11.12 and Beam 2.64.0 applied by
        # hand: the collector is off during the call. Must never hang.
        "control": {"role": "control", "run": "cpython_frames_gc_off", "timeout": 20, "requirements": [],
                    "params": {"threads": 4, "duration": 4.0, "stall": 2.5, "startup": 10.0}},
    },
}

SLOTS = 64                 # progress counters in the shared map, one per workload thread
CONFIRM_SECONDS = 1.0      # a stall must last this much longer after the stacks are taken


# ---------------------------------------------------------------------------------------------
# Grandchild side: the workload (this file run as a script with a JSON config).

def _garbage(count):
    """Reference cycles holding a threading.local: only the collector frees them, and freeing a
    local takes HEAD_LOCK (local_clear walks every thread state)."""
    import threading

    for _ in range(count):
        cycle = [threading.local()]
        cycle.append(cycle)


def _churn(config, counters, slot, stop_at):
    """Make cyclic garbage; each fresh call of _garbage is a frame without a frame object yet."""
    done = 0
    while time.monotonic() < stop_at:
        _garbage(config["cycles"])
        done += 1
        counters.bump(slot, done)


def _dump_function(config):
    """The frame dump to call: sys._current_frames(), guarded or not, or Beam's thread_dump()."""
    import gc

    if config["dumper"] == "beam":
        from apache_beam.runners.worker.worker_status import thread_dump

        return thread_dump
    if not config["gc_off"]:
        return sys._current_frames

    def dump():
        # What CPython 3.11.12 does inside the call and Beam 2.64.0 does around it.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return sys._current_frames()
        finally:
            if enabled:
                gc.enable()
    return dump


def _frame_dumper(dump, counters, slot, stop_at):
    done = 0
    while time.monotonic() < stop_at:
        dump()
        done += 1
        counters.bump(slot, done)


class _Counters(object):
    def __init__(self, path):
        self._file = open(path, "r+b")
        self._map = mmap.mmap(self._file.fileno(), SLOTS * 8)

    def bump(self, slot, value):
        struct.pack_into("<Q", self._map, slot * 8, value)

    def read(self):
        return struct.unpack_from("<%dQ" % SLOTS, self._map, 0)


def _start_status_handler():
    """Beam's own worker status handler, connected to the runner of the attempt's child.

    Beam is imported before the runner's address is read from stdin, so that both sides'
    slow imports overlap.
    """
    from apache_beam.runners.worker.worker_status import FnApiWorkerStatusHandler

    address = sys.stdin.readline().strip()
    return FnApiWorkerStatusHandler(address)


def _worker_main(config):
    import faulthandler
    import gc
    import threading

    stacks = open(config["stacks"], "w")
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)  # no GIL needed
    counters = _Counters(config["counters"])
    handler = _start_status_handler() if config.get("status_handler") else None
    dump = _dump_function(config) if config["dumper"] != "none" else None  # imports before the clock
    gc.set_threshold(config["gc_threshold"], 10, 10)
    sys.setswitchinterval(config["switch_interval"])
    stop_at = time.monotonic() + config["duration"]
    threads = [threading.Thread(target=_churn, args=(config, counters, n + 1, stop_at), name="churn-%d" % n)
               for n in range(config["threads"])]
    if config["dumper"] != "none":
        threads.append(threading.Thread(target=_frame_dumper, args=(dump, counters, 0, stop_at),
                                        name="frame-dumper"))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sys.stdout.write(json.dumps({"progress": list(counters.read()[:config["threads"] + 1]),
                                 "status_handler": handler is not None}) + "\n")
    sys.stdout.flush()
    os._exit(0)  # no interpreter shutdown (gRPC threads): the workload is done


# ---------------------------------------------------------------------------------------------
# Child side: start the workload, watch it from outside, judge a stall by its stacks.

def _config(ctx, **extra):
    config = {
        "threads": int(ctx.param("threads", 4)),
        "duration": float(ctx.param("duration", 4.0)),
        "cycles": int(ctx.param("cycles", 20)),
        "gc_threshold": int(ctx.param("gc_threshold", 10)),
        "switch_interval": float(ctx.param("switch_interval", 1e-5)),
        "dumper": ctx.param("dumper", "sys"),          # sys | beam | none
        "gc_off": False,
        "counters": os.path.join(ctx.workdir, "counters"),
        "stacks": os.path.join(ctx.workdir, "worker-stacks.txt"),
    }
    config.update(extra)
    with open(config["counters"], "wb") as handle:
        handle.write(b"\0" * SLOTS * 8)
    return config


def _spawn(ctx, config):
    log = open(os.path.join(ctx.workdir, "worker.log"), "w")
    # Same interpreter and env; same process group, so the harness kills it with the attempt.
    stdin = subprocess.PIPE if config.get("status_handler") else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), json.dumps(config)], stdin=stdin,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ctx.workdir, universal_newlines=True)


def _tail(ctx, name, size=3000):
    try:
        with open(os.path.join(ctx.workdir, name), errors="replace") as handle:
            return handle.read()[-size:]
    except OSError:
        return ""


def _stuck_threads(dump, pattern):
    """Threads of a faulthandler dump whose innermost frame is in a function matching pattern."""
    stuck = []
    for block in re.split(r"\n(?=(?:Current thread|Thread) 0x)", dump):
        frames = re.findall(r'^\s+File "([^"]+)", line (\d+) in (\S+)', block, re.MULTILINE)
        if frames and re.fullmatch(pattern, frames[0][2]):
            stuck.append("%s:%s in %s" % (os.path.basename(frames[0][0]), frames[0][1], frames[0][2]))
    return stuck


def _cpu_seconds(pid):
    """CPU time the process used so far (all its threads), from /proc."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def _judge_stall(ctx, proc, config, still_stalled, what):
    """The workload looks stuck: take every thread's stack, confirm the stall, find the call.

    A deadlock is permanent; a process that is merely slow (a loaded machine) moves on while the
    stall is confirmed. CPU time is only evidence: with a tiny switch interval the threads that
    wait for the GIL wake up every interval, so a deadlocked process still burns CPU.
    """
    open(config["stacks"], "w").close()
    cpu_before = _cpu_seconds(proc.pid)
    os.kill(proc.pid, signal.SIGUSR1)
    time.sleep(float(ctx.param("confirm", CONFIRM_SECONDS)))
    cpu_after = _cpu_seconds(proc.pid)
    if proc.poll() is not None or not still_stalled():
        ctx.note("%s, then it went on: a slow moment, not a deadlock" % what)
        return None
    cpu = round(cpu_after - cpu_before, 2) if None not in (cpu_before, cpu_after) else None
    dump = _tail(ctx, "worker-stacks.txt", 20000)
    stuck = _stuck_threads(dump, ctx.param("stuck_in", r"_frame_dumper|dump|thread_dump|_current_frames"))
    ctx.note("%s; no progress %gs later either, CPU used meanwhile: %s s; every thread's stack "
             "(faulthandler, no GIL needed):\n%s" % (what, float(ctx.param("confirm", CONFIRM_SECONDS)),
                                                     cpu, dump[-6000:]))
    if stuck:
        ctx.note("stuck at the frame-dump call: %s" % ", ".join(stuck))
        return {"hung": True, "stuck_at": stuck, "cpu_while_stuck": cpu}
    return {"errors": ["StallElsewhere: %s, but no thread is at the frame-dump call" % what]}


def _finish(ctx, proc, started):
    """The workload ended by itself: clean, or a loud failure of the workload."""
    rc = proc.wait()
    ctx.note("workload ran %.1fs; output: %s" % (time.monotonic() - started, _tail(ctx, "worker.log", 600).strip()))
    if rc < 0:
        return {"signal": -rc}
    if rc != 0:
        return {"errors": ["WorkloadFailed: exit code %d: %s" % (rc, _tail(ctx, "worker.log", 1500))]}
    return {}


def _kill(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _watch_counters(ctx, config):
    """Run the workload; a hang is no counter moving for `stall` seconds (after it has started)."""
    counters_path = config["counters"]
    proc = _spawn(ctx, config)
    started = time.monotonic()
    stall, startup = float(ctx.param("stall", 2.0)), float(ctx.param("startup", 10.0))
    try:
        with open(counters_path, "rb") as handle:
            view = mmap.mmap(handle.fileno(), SLOTS * 8, access=mmap.ACCESS_READ)
            last, changed, longest = bytes(view), None, 0.0
            while proc.poll() is None:
                time.sleep(0.05)
                now, current = time.monotonic(), bytes(view)
                if current != last:
                    longest = max(longest, now - changed) if changed else longest
                    last, changed = current, now
                elif changed is None and now - started > startup:
                    return {"errors": ["WorkloadNotStarted: no progress within %gs" % startup]}
                elif changed is not None and now - changed > stall:
                    verdict = _judge_stall(ctx, proc, config, lambda: bytes(view) == last,
                                           "no thread made progress for %.1fs, %.1fs into the run"
                                           % (now - changed, changed - started))
                    if verdict is not None:
                        return verdict
            ctx.note("longest pause of all progress counters: %.2fs (stall threshold %gs)" % (longest, stall))
            return _finish(ctx, proc, started)
    finally:
        _kill(proc)


def cpython_frames(ctx):
    return _watch_counters(ctx, _config(ctx))


def cpython_frames_gc_off(ctx):
    return _watch_counters(ctx, _config(ctx, gc_off=True))


def beam_thread_dump(ctx):
    return _watch_counters(ctx, _config(ctx, dumper="beam"))


# Beam level: this child plays the runner; the grandchild is an SDK worker with Beam's handler.

def _runner_server():
    """A gRPC BeamFnWorkerStatus service on 127.0.0.1 that sends status requests one at a time."""
    import queue
    import threading
    from concurrent import futures

    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc

    class Runner(beam_fn_api_pb2_grpc.BeamFnWorkerStatusServicer):
        def __init__(self):
            self.requests, self.responses = queue.Queue(), queue.Queue()
            self.connected = threading.Event()

        def WorkerStatus(self, responses, context):  # noqa: N802 - gRPC's name
            self.connected.set()
            threading.Thread(target=self._drain, args=(responses,), daemon=True).start()
            while context.is_active():
                try:
                    request = self.requests.get(timeout=0.1)
                except queue.Empty:
                    continue
                yield beam_fn_api_pb2.WorkerStatusRequest(id=request)

        def _drain(self, responses):
            try:
                for response in responses:
                    self.responses.put(response)
            except Exception:  # noqa: BLE001 - the stream ends when the worker goes away
                pass

    runner = Runner()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    beam_fn_api_pb2_grpc.add_BeamFnWorkerStatusServicer_to_server(runner, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, runner, "127.0.0.1:%d" % port


def _ask_status(proc, runner, stall, started):
    """Send status requests back to back until the worker exits or one goes unanswered."""
    import queue

    seen = {"answered": 0, "slowest": 0.0, "unanswered": None, "error": None}
    number = 0
    while proc.poll() is None:
        number += 1
        asked = time.monotonic()
        runner.requests.put(str(number))
        while proc.poll() is None:
            try:
                response = runner.responses.get(timeout=0.05)
            except queue.Empty:
                if time.monotonic() - asked > stall:
                    seen["unanswered"] = (number, asked - started)
                    return seen
                continue
            if response.id == str(number):
                if response.error:
                    seen["error"] = response.error
                    return seen
                seen["answered"] += 1
                seen["slowest"] = max(seen["slowest"], time.monotonic() - asked)
                break
    return seen


def beam_status(ctx):
    config = _config(ctx, dumper="none", status_handler=True)
    proc = _spawn(ctx, config)
    started = time.monotonic()
    stall, startup = float(ctx.param("stall", 3.0)), float(ctx.param("startup", 25.0))
    server = None
    try:
        server, runner, address = _runner_server()
        proc.stdin.write(address + "\n")
        proc.stdin.close()
        while not runner.connected.wait(0.1):
            if proc.poll() is not None:
                return _finish(ctx, proc, started) or {"errors": ["WorkloadFailed: exited before connecting"]}
            if time.monotonic() - started > startup:
                return {"errors": ["WorkloadNotStarted: the SDK did not connect within %gs" % startup]}
        ctx.note("SDK status handler connected after %.1fs" % (time.monotonic() - started))
        seen = _ask_status(proc, runner, stall, started)
        ctx.note("%d status requests answered, slowest in %.2fs" % (seen["answered"], seen["slowest"]))
        if seen["error"]:
            return {"errors": ["StatusError: %s" % seen["error"][:1500]]}
        if seen["unanswered"]:
            number, at = seen["unanswered"]
            verdict = _judge_stall(ctx, proc, config, runner.responses.empty,
                                   "status request %d (asked %.1fs into the run) not answered within %gs: "
                                   "'Unable to retrieve status info from SDK harness'" % (number, at, stall))
            if verdict is not None:
                return verdict
        return _finish(ctx, proc, started)
    finally:
        _kill(proc)
        if server is not None:
            server.stop(0)


if __name__ == "__main__":
    _worker_main(json.loads(sys.argv[1]))
