"""What the parent and the child of one attempt tell each other: a request in, a result out.

Part of the child side (harness.attempt.CHILD_CODE). Both are JSON files in the attempt
dir, with the other files the two sides share there. The parent writes the request from the
validated bug (harness.registry), so the child never reads the repro's BUG dict itself; the
child writes the result atomically, and the parent alone turns it into the attempt's outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields

from harness.verdict import OUTCOMES

SCHEMA = 2
REQUEST_FILE = "request.json"
RESULT_FILE = "result.json"
STACKS_FILE = "stacks.txt"           # faulthandler's dump of every thread, before the deadline
ARMED_FILE = "armed"                 # the repro armed its deadline (Context.arm_deadline)
HANG_EVIDENCE_FILE = "hang-evidence"  # the repro saw its bug's stall begin (Context.hang_evidence)


class _Message:
    """A dataclass that travels as one JSON object with the protocol's schema version."""

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies, and an observation may hold anything.
        return json.dumps({"schema": SCHEMA, **{f.name: getattr(self, f.name) for f in fields(self)}},
                          default=str)

    @classmethod
    def from_json(cls, text: str):
        """The message; ValueError if the text is not one of this schema."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"not a {cls.__name__} of schema {SCHEMA}")
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"{cls.__name__} without {', '.join(missing)}")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Request(_Message):
    """Everything the child needs to run one attempt of one variant."""
    repro: str              # the repro file: loaded for its run function, nothing else
    variant: str
    run: str                # the name of the variant's function in the repro
    role: str               # trigger or control
    failure_kind: str       # exception, hang, data-loss or corruption: what the oracle looks for
    signature: str | None   # an exception bug's regular expression
    packages: list          # the packages under test: their versions and import paths are reported
    library: list | None    # the library's top-level modules (attribution); None: those of `packages`
    params: dict            # the variant's parameters, with the run's overrides
    timeout: float          # seconds; with a setup allowance, counted from ctx.arm_deadline()
    setup_timeout: float    # seconds allowed before the repro arms its deadline; 0: none
    deadline: float         # time.time() at which the parent gives up, whatever the child did


@dataclass(frozen=True)
class Result(_Message):
    """What the child saw, judged by the bug's oracle."""
    outcome: str            # reproduced, clean or other-failure
    reason: str
    observation: dict       # what the variant returned (errors, lost, hung, signal, ...)
    notes: list             # ctx.note() lines
    versions: dict          # package -> installed version
    imported: dict          # package -> version and the files its modules were imported from
    foreign_modules: list   # modules imported from outside the env: the attempt is an error
    python: str
    duration: float         # seconds, as the child measured them
    threads_alive: int      # threads still running when the variant returned
    gil: dict               # free-threaded build?, abiflags, GIL enabled at the end of the attempt

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"not an outcome: {self.outcome!r}")
