"""Files written whole or not at all, and a lock file shared by concurrent runs.

The child side uses it too (harness.attempt.CHILD_CODE).
"""
import fcntl
import os
import tempfile
from contextlib import contextmanager


def write_atomically(path, text, durable=True, mode=None):
    """Write a file so that a reader sees all of it or nothing (temp file, fsync, rename); with
    `durable`, the directory is synced too, so after a crash the file is whole or absent. The file
    gets `mode`; by default the mode it had, 0644 if new (not the temp file's 0600: a README or a
    published page must stay readable)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        # UTF-8 whatever the locale; a lone surrogate (from a child's output) becomes \udXXX.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)



def write_published(path, text, mode=0o644):
    """A file of a report or a page: its directories made, written whole or not at all, with
    `mode` (world-readable by default: a web server must read it); not synced, as it can be
    written again from the results."""
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    write_atomically(path, text, durable=False, mode=mode)

@contextmanager
def locked(path):
    """Hold an exclusive lock on `path` (created if missing) for the block: one builder among
    parallel runs, the others wait and then reuse what it built."""
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
