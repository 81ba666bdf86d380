"""Reproduction and regression harness for concurrency bugs in Python data libraries.

The child side (harness.child and harness.kit) runs inside every interpreter under test:
it is stdlib-only and Python 3.9 compatible, and each attempt gets a copy of just those
files on its path (harness.attempt.install_child_code), never this installation.
"""

__version__ = "0.1.0"
