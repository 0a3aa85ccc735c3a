"""The Spark recipe, for real: pyspark in local[2] mode pipes 300 records in 6 partitions through
tarjama (one process per partition), and the result must be the single run's, id for id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ARGS, check_same_as_reference
from pyspark.sql import SparkSession
from tarjama_spark import translate_rdd


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[2]")
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
