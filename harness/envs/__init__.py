"""Where a cell runs: interpreters, the package index, env builds, checkouts."""
