"""Reproduction and regression harness for concurrency bugs in Python data libraries.

The child side (harness.child, harness.kit and what they import: files, protocol, verdict,
stats) runs inside every interpreter under test: it is stdlib-only and Python 3.9 compatible,
and each attempt gets a copy of just those files on its path (harness.attempt.CHILD_CODE,
install_child_code), never this installation.
"""

__version__ = "0.1.0"
