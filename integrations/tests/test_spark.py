"""The Spark recipe, for real: pyspark in local mode with 2 threads pipes 300 records in 6
partitions through tarjama (one process per partition), and the result must be the single run's,
id for id, also when a task fails after writing its records and Spark reruns it."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ARGS, check_same_as_reference
from pyspark.sql import SparkSession
from tarjama_spark import translate_rdd


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = (
        # local[2] with up to 4 attempts per task (plain local[2] never retries a task), so that
        # a failed task is rerun as on a cluster.
        SparkSession.builder.master("local[2,4]")
        .appName("tarjama-test")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_rdd_pipe_translates_every_record_once_as_a_single_run_does(
    spark: SparkSession,
    binary: str,
    model: str,
    tarjama_env: dict[str, str],
    records: list[dict[str, Any]],
    reference: dict[str, dict[str, Any]],
) -> None:
    rdd = spark.sparkContext.parallelize(records, 6)
    assert rdd.getNumPartitions() == 6
    out = translate_rdd(rdd, model, binary=binary, args=ARGS, env=tarjama_env)
    check_same_as_reference(out.collect(), reference)


def test_a_failing_tarjama_fails_the_job_instead_of_dropping_records(
    spark: SparkSession,
    binary: str,
    model: str,
    tarjama_env: dict[str, str],
    records: list[dict[str, Any]],
) -> None:
    # A record with a field tarjama writes is refused (exit 1): checkCode turns that into a
    # failed task, so the job fails rather than return the partition without it.
    bad = [*records[:10], {"id": "bad", "text": records[0]["text"], "english": "x"}]
    out = translate_rdd(
        spark.sparkContext.parallelize(bad, 1), model, binary=binary, args=ARGS, env=tarjama_env
    )
    with pytest.raises(Exception, match="PIPE_FUNCTION_EXITED|exited"):
        out.collect()


def test_a_task_that_fails_after_writing_its_records_is_rerun_without_duplicates(
    spark: SparkSession,
    tmp_path: Path,
    binary: str,
    model: str,
    tarjama_env: dict[str, str],
    records: list[dict[str, Any]],
    reference: dict[str, dict[str, Any]],
) -> None:
    # The first tarjama to finish exits 1 after all its records went out: Spark must drop that
    # attempt's output and keep only the rerun's.
    wrapper = tmp_path / "tarjama-fails-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        '"$TARJAMA_REAL" "$@" || exit\n'
        'mkdir "$TARJAMA_MARK" 2>/dev/null && exit 1\n'
        "exit 0\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    mark = tmp_path / "failed-once"
    env = {**tarjama_env, "TARJAMA_REAL": binary, "TARJAMA_MARK": str(mark)}
    rdd = spark.sparkContext.parallelize(records, 6)
    out = translate_rdd(rdd, model, binary=str(wrapper), args=ARGS, env=env)
    rows = out.collect()
    assert mark.is_dir(), "no task failed"
    check_same_as_reference(rows, reference)
