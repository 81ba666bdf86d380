"""A synthetic exception bug for attribution (stdlib only): its message counts only when raised
from the library under test, `_synthetic_library`; the same message from `_synthetic_other` (or
from the repro itself) is another failure."""
import os
import sys

BUG = {
    "id": "synthetic-attribution",
    "title": "synthetic bug whose message another module raises too",
    "packages": [],
    "requirements": [],
    "library": ["_synthetic_library"],
    "failure_kind": "exception",
    "signature": r"synthetic bug",
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {
        "trigger": {"role": "trigger", "run": "library_raises", "timeout": 20},
        "in-a-thread": {"role": "trigger", "run": "library_raises_in_a_thread", "timeout": 20},
        "foreign": {"role": "trigger", "run": "other_module_raises", "timeout": 20},
        "foreign-escapes": {"role": "trigger", "run": "other_module_raises_uncaught", "timeout": 20},
        "repro-raises": {"role": "trigger", "run": "repro_raises", "timeout": 20},
        "as-text": {"role": "trigger", "run": "reported_as_text", "timeout": 20},
        "control": {"role": "control", "run": "clean", "timeout": 20},
    },
}


def _modules():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _synthetic_library
    import _synthetic_other

    return _synthetic_library, _synthetic_other


def _caught(function):
    try:
        function()
    except RuntimeError as exc:
        return exc
    raise AssertionError("%s did not raise" % function)


def library_raises(ctx):
    return {"errors": [_caught(_modules()[0].share)]}


def library_raises_in_a_thread(ctx):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        future = pool.submit(_modules()[0].share)
    return {"errors": [_caught(future.result)]}  # re-raised by the stdlib: still the library's


def other_module_raises(ctx):
    return {"errors": [_caught(_modules()[1].export)]}


def other_module_raises_uncaught(ctx):
    _modules()[1].export()


def repro_raises(ctx):
    raise RuntimeError("synthetic bug: raised by the repro itself")


def reported_as_text(ctx):
    exc = _caught(_modules()[1].export)
    return {"errors": ["%s: %s" % (type(exc).__name__, exc)]}  # no frame: taken at its word


def clean(ctx):
    return {}
