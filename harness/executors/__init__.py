"""Executors: how a cell's attempts are started (local processes, containers)."""
