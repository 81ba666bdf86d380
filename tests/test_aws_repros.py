"""The two AWS repros end to end: real awswrangler/deltalake releases against the harness's moto server.

One attempt is enough to show `present` (each trigger measured 20 of 20); `absent` is asserted with the
attempts the confidence rule asks for. The controls run after a reproduction, as in the matrix.
"""
import pytest

from conftest import skip_without_python
from harness import services, stats
from harness.cell import Cell, Options, run_cell
from harness.envs import package_index
from harness.registry import get_bug

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def needs_python_311():
    skip_without_python("3.11")


@pytest.fixture(scope="module")
def moto_env():
    with services.started(["moto"]) as env:
        yield env


def run(moto_env, bug, variant, pins, as_of_release=True, **options):
    """The cell with the dependencies of its first pin's release date (as the matrix does), or today's."""
    name, version = pins[0].split("==")
    cutoff = package_index.release_date_cutoff(name, version) if as_of_release else None
    cell = Cell(bug, variant, "3.11", tuple(pins), cutoff)
    return run_cell(cell, Options(service_env=moto_env, **options))


DELTA_OLD = ["awswrangler==3.11.0", "deltalake==0.22.3"]  # the last releases before conditional put
DELTA_NEW = ["awswrangler==3.17.1", "deltalake==1.6.6"]  # deltalake 1.6.6 came after awswrangler 3.17.1


def test_delta_s3_loses_rows_silently_with_unsafe_rename(moto_env):
    record = run(moto_env, "delta-s3-silent-data-loss", "trigger-deltalake", DELTA_OLD)
    assert record["verdict"] == "present", record["reason"]
    assert [c["outcome"] for c in record["controls"]] == ["clean", "clean"]  # DynamoDB lock, conditional put
    observation = record["evidence"][0]["evidence"]["observation"]
    assert observation["lost"] > 0 and not observation["errors"]  # every writer returned normally


def test_delta_s3_refused_rename_is_a_loud_other_failure(moto_env):
    record = run(moto_env, "delta-s3-silent-data-loss", "trigger-deltalake", DELTA_OLD,
                 attempts=1, control_attempts=0, params={"unsafe_rename": False})
    assert record["verdict"] == "other-failure", record["reason"]
    assert "LockClient" in record["reason"]


def test_delta_s3_absent_with_conditional_put_by_default(moto_env):
    record = run(moto_env, "delta-s3-silent-data-loss", "trigger-deltalake", DELTA_NEW, as_of_release=False,
                 control_attempts=0)
    assert record["verdict"] == "absent", record["reason"]
    assert record["installed"]["deltalake"] == "1.6.6" and record["confidence"] >= 0.99


def test_athena_cache_race_present_before_the_fix_absent_after(moto_env):
    record = run(moto_env, "wrangler-athena-cache-race", "trigger", ["awswrangler==3.11.0"])
    assert record["verdict"] == "present", record["reason"]
    errors = record["evidence"][0]["evidence"]["observation"]["errors"]
    assert any("dictionary changed size during iteration" in e or "keys changed" in e for e in errors)
    record = run(moto_env, "wrangler-athena-cache-race", "trigger", ["awswrangler==3.12.0"], control_attempts=0)
    assert record["verdict"] == "absent", record["reason"]
    bug = get_bug("wrangler-athena-cache-race")
    own_rate = bug.trigger_rate_lower_bound(variant=bug.variant("trigger"))  # not read-sql's weaker one
    assert record["attempts"] == stats.attempts_needed(own_rate, 0.99) < 7 and record["confidence"] >= 0.99


def test_athena_read_sql_query_end_to_end(moto_env):
    record = run(moto_env, "wrangler-athena-cache-race", "read-sql", ["awswrangler==3.11.0"],
                 control_attempts=0, max_attempts=3)  # 19 of 20 on this cell: 3 attempts all but settle it
    assert record["verdict"] == "present", record["reason"]
