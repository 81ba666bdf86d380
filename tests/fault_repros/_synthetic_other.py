"""Another library of synthetic-attribution's workload, whose error has the bug's message: polars'
DataFrame.__arrow_c_stream__ raising `Already borrowed` in delta-rs's own threaded test."""


def export():
    raise RuntimeError("synthetic bug: Already borrowed")
