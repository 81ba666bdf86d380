"""Reproduction and regression harness for concurrency bugs in Python data libraries.

The child side (harness.child, harness.kit and what they import) runs inside every interpreter
under test, and each attempt gets a copy of just those files on its path (harness.attempt.CHILD_CODE,
where its rules are stated; install_child_code), never this installation.
"""

__version__ = "0.1.0"
