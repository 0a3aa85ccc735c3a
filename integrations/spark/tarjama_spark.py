"""Translate a Spark RDD of records with tarjama through ``RDD.pipe``.

Each partition's records are written to one ``tarjama translate --input-format jsonl --format
jsonl`` process as JSON Lines, and the JSON records it writes become the partition's output.
``RDD.pipe`` closes the process' stdin at the end of the partition, so tarjama loads the model
once per partition: prefer a few large partitions (``rdd.repartition(n)``) to many small ones.

Usage::

    from pyspark.sql import SparkSession
    from tarjama_spark import translate_rdd

    spark = SparkSession.builder.getOrCreate()
    records = spark.read.json("articles.jsonl").rdd.map(lambda row: row.asDict())
    translate_rdd(records, model="opus-mt-ar-en").map(json.dumps).saveAsTextFile("translated/")

Each output record is tarjama's JSON record (README, "JSON records"): ``id``, ``arabic`` and
``english`` (the article's paragraphs and their translations), ``model``, ... and every input
field but the text field, passed through.

Every id comes out once: a failed task (tarjama exited non-zero, which ``checkCode`` turns into a
task failure, or a lost executor) is rerun whole by Spark, and only the output of the attempt
that succeeded is kept. A record tarjama cannot translate (exit code 1) therefore fails its
partition; Spark retries it ``spark.task.maxFailures`` times and then fails the job, naming
tarjama's error, rather than drop the record silently.

The tarjama binary must be on every executor: give its path (``binary=``), or ship it with
``spark-submit --files tarjama`` and pass ``binary="./tarjama"``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from typing import Any

from pyspark import RDD

__all__ = ["tarjama_command", "translate_rdd"]

# The driver's variables that tarjama's process gets besides HF_* (see translate_rdd).
PASSED_ENV = ("PATH", "HOME", "XDG_CACHE_HOME", "TMPDIR", "NO_COLOR")


def tarjama_command(
    model: str | None = None,
    *,
    binary: str = "tarjama",
    args: Sequence[str] = (),
    text_field: str = "text",
    id_field: str = "id",
) -> str:
    """The command line ``RDD.pipe`` runs (a string, as ``RDD.pipe`` takes it)."""
    command = [binary, "translate", "--quiet", "--input-format", "jsonl", "--format", "jsonl"]
    command += ["--text-field", text_field, "--id-field", id_field]
    if model is not None:
        command += ["--model", model]
    return shlex.join(command + list(args))


def translate_rdd(
    records: RDD[dict[str, Any]],
    model: str | None = None,
    *,
    binary: str = "tarjama",
    args: Sequence[str] = (),
    text_field: str = "text",
    id_field: str = "id",
    env: dict[str, str] | None = None,
) -> RDD[dict[str, Any]]:
    """Translates an RDD of dicts holding ``id_field`` and ``text_field`` and returns an RDD of
    tarjama's output records. ``args``: more tarjama flags (e.g. ``["--beams", "1"]``);
    ``env``: environment for tarjama, over the driver's ``PATH``, ``HOME``, ``XDG_CACHE_HOME``,
    ``TMPDIR`` and ``HF_*`` variables (``RDD.pipe`` gives the process no other)."""
    command = tarjama_command(
        model, binary=binary, args=args, text_field=text_field, id_field=id_field
    )
    # RDD.pipe runs the command with exactly the environment it is given (an empty one by
    # default), so tarjama would not find its model cache: these come from the driver.
    environment = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("HF_")}
    environment.update(env or {})
    return (
        records.map(lambda record: json.dumps(record, ensure_ascii=False))
        .pipe(command, env=environment, checkCode=True)
        .map(json.loads)
    )
