"""Translate a Ray Dataset of records with tarjama, one long-lived tarjama process per actor.

Ray Data runs :class:`TarjamaTranslator` as a callable class in ``Dataset.map_batches``: each
actor starts ``tarjama translate --input-format jsonl --format jsonl`` once, so the model is
loaded once per actor, and talks to it in pipe mode: a batch's records go to the process' stdin
as JSON Lines, and exactly as many records come back on its stdout (each written as soon as it
is done), matched to the batch by id. A batch's output is returned only when every one of its
records has come back, so it holds each of its ids exactly once. When Ray retries a batch (the
actor died and was restarted), the failed attempt returned nothing, so the retry cannot add
duplicates.

Usage::

    import ray
    from tarjama_ray import translate_dataset

    ds = ray.data.read_json("articles.jsonl")            # records with "id" and "text"
    out = translate_dataset(ds, model="opus-mt-ar-en", concurrency=4)
    out.write_json("translated/")

or, to choose every ``map_batches`` option yourself::

    ray.cloudpickle.register_pickle_by_value(tarjama_ray)  # or runtime_env={"py_modules": ...}
    ds.map_batches(TarjamaTranslator, fn_constructor_kwargs={"model": "opus-mt-ar-en"},
                   batch_format="pyarrow", concurrency=4, max_restarts=-1, max_task_retries=-1)

Each output record is tarjama's JSON record (README, "JSON records"): ``id``, ``arabic`` and
``english`` (the article's paragraphs and their translations), ``model``, ... and every input
field but the text field, passed through.

GPUs: ``translate_dataset(..., num_gpus=1)`` reserves one GPU per actor; Ray sets the actor's
``CUDA_VISIBLE_DEVICES``, and the actor passes ``--device cuda`` to tarjama (which must be built
with ``--features cuda``), so each process uses the GPU Ray gave it. ``device=`` overrides that.

The tarjama binary must be on every node: give its path (``binary=``), or put it on ``PATH``.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import ray.data

__all__ = ["TarjamaTranslator", "TarjamaError", "translate_dataset"]

# The default for the longest wait for one record: a tarjama that hangs fails the batch after
# this (TarjamaError) instead of holding the pipeline forever.
DEFAULT_RECORD_TIMEOUT_S = 600.0

# How many times one batch restarts a tarjama process that died under it before it fails the
# batch with TarjamaError.
PROCESS_RESTARTS_PER_BATCH = 2

_EOF = object()


class TarjamaError(RuntimeError):
    """tarjama did not give back a batch's records: the message says why, with its last
    lines on stderr."""


class TarjamaTranslator:
    """A callable class for ``Dataset.map_batches(..., batch_format="pyarrow")``.

    It holds one tarjama process in pipe mode for the actor's lifetime and restarts it if it
    died. Records must hold ``id_field`` (unique within a batch, and across the dataset if the
    output is to be joined back by id) and ``text_field`` (the Arabic text).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        binary: str = "tarjama",
        args: Sequence[str] = (),
        text_field: str = "text",
        id_field: str = "id",
        device: str | None = None,
        env: dict[str, str] | None = None,
        record_timeout_s: float = DEFAULT_RECORD_TIMEOUT_S,
    ) -> None:
        """``model``: a preset, Hub repo id or local directory (``--model``; tarjama's default
        when None). ``args``: more tarjama flags, e.g. ``["--beams", "1"]``. ``device``: the
        ``--device`` flag; when None, ``cuda`` if Ray gave this actor a GPU, else tarjama's
        default. ``env``: extra environment for the process (e.g. ``HF_HOME``).
        """
        if device is None and _ray_gave_gpus():
            device = "cuda"
        self.command: list[str] = [
            binary,
            "translate",
            "--quiet",
            "--input-format",
            "jsonl",
            "--format",
            "jsonl",
            "--text-field",
            text_field,
            "--id-field",
            id_field,
        ]
        if model is not None:
            self.command += ["--model", model]
        if device is not None:
            self.command += ["--device", device]
        self.command += list(args)
        self.text_field = text_field
        self.id_field = id_field
        self.env = {**os.environ, **(env or {})}
        self.record_timeout_s = record_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)

    def __call__(self, batch: pa.Table) -> pa.Table:
        records = batch.to_pylist()
        return pa.Table.from_pylist(self.translate(records))

    def translate(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Translates ``records`` and returns tarjama's output records in the same order."""
        pending = {}
        for record in records:
            key = self._key(record)
            if key in pending:
                raise ValueError(f"the id {key} appears twice in one batch; ids must be unique")
            if not isinstance(record.get(self.text_field), str):
                raise ValueError(f"the record with id {key} has no text field {self.text_field!r}")
            pending[key] = record
        done: dict[str, dict[str, Any]] = {}
        restarts = 0
        try:
            while pending:
                if not self._alive():
                    self._start()
                try:
                    self._send(pending.values())
                    self._receive(pending, done)
                except _ProcessDied as died:
                    restarts += 1
                    if restarts > PROCESS_RESTARTS_PER_BATCH:
                        raise TarjamaError(f"{died}; {self._stderr_tail()}") from None
                    # What it finished is kept; the rest goes to a fresh process.
                    self._stop()
        except BaseException:
            # A process left with records of this batch in flight would hand them to the next
            # batch: never reuse it.
            self._stop()
            raise
        return [done[self._key(record)] for record in records]

    def __del__(self) -> None:
        self._stop()

    # The process and its pipes.

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        self._stop()
        self._lines = queue.Queue()
        self._stderr.clear()
        self._proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        # Both output pipes are drained by threads, so tarjama never blocks writing while this
        # side is still writing a batch into its stdin.
        threading.Thread(
            target=self._read_stdout, args=(self._proc, self._lines), daemon=True
        ).start()
        threading.Thread(
            target=self._read_stderr, args=(self._proc, self._stderr, self._lines), daemon=True
        ).start()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    @staticmethod
    def _read_stdout(proc: subprocess.Popen[bytes], lines: queue.Queue[Any]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(_EOF)

    @staticmethod
    def _read_stderr(
        proc: subprocess.Popen[bytes], tail: collections.deque[str], lines: queue.Queue[Any]
    ) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            tail.append(line)
            # tarjama reports a record it cannot translate on stderr and writes no output
            # record for it: the batch fails now, naming it, instead of waiting out the timeout.
            if line.startswith("tarjama: error:"):
                lines.put(_Failed(line))

    def _send(self, records: Iterable[dict[str, Any]]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = b"".join(
            json.dumps(record, ensure_ascii=False).encode() + b"\n" for record in records
        )
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise _ProcessDied(f"tarjama exited before it read the batch ({e})") from None

    def _receive(self, pending: dict[str, dict[str, Any]], done: dict[str, dict[str, Any]]) -> None:
        while pending:
            try:
                line = self._lines.get(timeout=self.record_timeout_s)
            except queue.Empty:
                raise TarjamaError(
                    f"no record from tarjama for {self.record_timeout_s:.0f} s with "
                    f"{len(pending)} of the batch outstanding (a hung process); "
                    f"{self._stderr_tail()}"
                ) from None
            if isinstance(line, _Failed):
                raise TarjamaError(f"{line.message}; {self._stderr_tail()}")
            if line is _EOF:
                assert self._proc is not None
                code = self._proc.wait()
                raise _ProcessDied(
                    f"tarjama exited (code {code}) with {len(pending)} records of the batch "
                    "outstanding"
                )
            if not line.endswith(b"\n"):
                # The last line of a process that died mid-write: its record is redone.
                continue
            out = json.loads(line)
            key = self._key(out)
            if key not in pending:
                raise TarjamaError(f"tarjama wrote a record with id {key}, which was not asked for")
            del pending[key]
            done[key] = out

    def _key(self, record: dict[str, Any]) -> str:
        # The output's id is the input's id field, written as the same JSON value.
        field = self.id_field if self.id_field in record else "id"
        if field not in record:
            raise ValueError(f"a record has no id field {self.id_field!r}: {str(record)[:200]}")
        return json.dumps(record[field], sort_keys=True, ensure_ascii=False)

    def _stderr_tail(self) -> str:
        lines = list(self._stderr)
        return "tarjama's stderr: " + (" | ".join(lines) if lines else "(nothing)")


class _ProcessDied(Exception):
    pass


class _Failed:
    """A record tarjama reported as failed (its stderr line)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _ray_gave_gpus() -> bool:
    try:
        import ray

        return ray.is_initialized() and bool(ray.get_gpu_ids())
    except Exception:
        return False


def translate_dataset(
    ds: ray.data.Dataset,
    model: str | None = None,
    *,
    concurrency: int = 1,
    num_gpus: float = 0,
    batch_size: int | None = 64,
    translator: type[TarjamaTranslator] = TarjamaTranslator,
    **translator_kwargs: Any,
) -> ray.data.Dataset:
    """``ds.map_batches`` with :class:`TarjamaTranslator` (or ``translator``, a subclass) on
    ``concurrency`` actors.

    ``num_gpus``: GPUs reserved per actor (``--device cuda`` is passed when it is above 0).
    ``batch_size``: records per batch (one write to tarjama, which batches sentences across
    them). An actor that dies is restarted and its batch retried (``max_restarts`` and
    ``max_task_retries`` unlimited). ``translator_kwargs`` go to :class:`TarjamaTranslator`
    (``binary``, ``args``, ``text_field``, ``id_field``, ``device``, ``env``, ...).
    """
    import ray.cloudpickle

    # The actors need this module too: shipped with the class, it does not have to be installed
    # or on the workers' path (a subclass from elsewhere still does).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ds.map_batches(
        translator,
        fn_constructor_args=(model,),
        fn_constructor_kwargs=translator_kwargs,
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=concurrency,
        num_gpus=num_gpus,
        max_restarts=-1,
        max_task_retries=-1,
    )
