"""Errors the CLI turns into one clear line and exit code 2."""


class UsageError(Exception):
    """Bad input or an unusable setup: the user can act on the one-line message."""


class EnvBuildError(Exception):
    """An environment for a cell cannot be built (the cell is `skipped` with this reason)."""
