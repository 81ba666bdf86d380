"""Reproduction and regression harness for concurrency bugs in Python data libraries.

Importing this package must stay stdlib-only and Python 3.9 compatible: the child
side (harness.child) runs inside every interpreter under test.
"""
