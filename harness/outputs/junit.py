"""A JUnit XML summary for CI: a testsuite per bug, a testcase per cell; a cell whose verdict is
not the expected one is a failure, a skipped cell is skipped. Record text a character XML 1.0
cannot hold is written escaped, so no record can make the file unreadable."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.record import CellRecord, cells, expected_verdicts, pin_label, unexpected
from harness.verdict import SKIPPED

# What XML 1.0 cannot hold: C0 controls but tab, newline and CR; lone surrogates; U+FFFE and U+FFFF.
NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value) -> str:
    """Text XML 1.0 can hold: a character it cannot (NUL, ESC, ...) is written as \\xNN."""
    return NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))


def _element(parent, tag: str, text: str | None = None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def junit(records: list) -> str:
    suites: dict[str, list[CellRecord]] = {}
    for r in cells(records):
        suites.setdefault(r.bug, []).append(r)
    root = ET.Element("testsuites")
    for bug, members in suites.items():
        suite = _element(root, "testsuite", name=bug, tests=len(members), failures=sum(map(unexpected, members)),
                         skipped=sum(r.verdict == SKIPPED for r in members))
        for r in members:
            classname = f"{bug}.py{r.python_requested}-{pin_label(r).replace(' ', '-')}"
            seconds = r.seconds if r.seconds is not None or "seconds" in r.nulls else 0
            case = _element(suite, "testcase", classname=classname, name=r.variant, time=seconds)
            if r.verdict == SKIPPED:
                _element(case, "skipped", message=str(r.reason)[:500])
            elif unexpected(r):
                message = "expected %s, got %s" % (" or ".join(expected_verdicts(r)), r.verdict)
                _element(case, "failure", r.reason, message=message)
            _element(case, "system-out", "%s: %s" % (r.verdict, r.reason))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
