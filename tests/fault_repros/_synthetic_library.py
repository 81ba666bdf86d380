"""The 'library under test' of synthetic-attribution (stdlib only; a `_` file is not a repro)."""


def share():
    raise RuntimeError("synthetic bug: Already borrowed")
