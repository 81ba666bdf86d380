"""Errors the CLI turns into one clear line and exit code 2."""


class UsageError(Exception):
    """Bad input or an unusable setup: the user can act on the one-line message."""


class EnvBuildError(Exception):
    """An environment for a cell cannot be built (the cell is `skipped` with this reason).

    `lasting`: uv refused the requirements or the interpreter themselves, so a rerun fails the
    same way (bisect caches such a skip); otherwise the trouble was local (a damaged uv cache,
    a container engine) and a rerun may pass."""

    def __init__(self, message: str, lasting: bool = False):
        super().__init__(message)
        self.lasting = lasting
