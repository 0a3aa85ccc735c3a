"""The Ray Data module, for real: ray in local mode (2 CPUs) translates 300 records in 6 blocks
over 2 actors, each holding one tarjama process in pipe mode, and the result must be the single
run's, id for id, also when a tarjama process or a whole actor dies mid-run."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import ray
from conftest import ARGS, REPO, check_same_as_reference
from tarjama_ray import TarjamaTranslator, translate_dataset

BLOCKS = 6
BATCH = 50  # one batch per block


@pytest.fixture(scope="module", autouse=True)
def ray_local() -> Iterator[None]:
    # The actors import this module (its classes below) and tarjama_ray by name.
    paths = [str(REPO / "integrations" / "ray"), str(Path(__file__).parent)]
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}},
    )
    yield
    ray.shutdown()


class Recorded(TarjamaTranslator):
    """Adds which actor process translated each record, and logs every tarjama start, so a
    test can see that the work was spread and what was restarted."""

    def __init__(self, *args: Any, log_dir: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_dir = Path(log_dir)
        self.batches = 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.batches += 1
        out = super().__call__(batch)
        return out.append_column("actor_pid", pa.array([os.getpid()] * out.num_rows))

    def _start(self) -> None:
        super()._start()
        with open(self.log_dir / "starts.log", "a") as log:
            log.write(f"{os.getpid()} {self.batches}\n")

    def first_time(self, marker: str) -> bool:
        """True for exactly one caller across all actors and restarts."""
        try:
            os.close(os.open(self.log_dir / marker, os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False


class KillsItsTarjama(Recorded):
    """On its second batch, the first actor to get there SIGKILLs its tarjama process right after
    writing the batch into it, while the records are being translated."""

    def _send(self, records: Iterable[dict[str, Any]]) -> None:
        super()._send(records)
        if self.batches == 2 and self.first_time("killed-tarjama"):
            assert self._proc is not None
            os.kill(self._proc.pid, signal.SIGKILL)


class DiesOnce(Recorded):
    """On its second batch, the first actor to get there exits at once, mid-batch (after its
    tarjama was given the batch): Ray restarts the actor and retries the batch."""

    def _send(self, records: Iterable[dict[str, Any]]) -> None:
        super()._send(records)
        if self.batches == 2 and self.first_time("actor-died"):
            os._exit(1)


def run(
    translator: type,
    tmp_path: Path,
    binary: str,
    model: str,
    env: dict[str, str],
    records: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    ds = ray.data.from_items(records, override_num_blocks=BLOCKS)
    assert ds.materialize().num_blocks() == BLOCKS
    out = translate_dataset(
        ds,
        model,
        concurrency=2,
        batch_size=BATCH,
        translator=translator,
        binary=binary,
        args=ARGS,
        env=env,
        log_dir=str(tmp_path),
        record_timeout_s=120,
    )
    return out.take_all()


def starts(tmp_path: Path) -> list[tuple[int, int]]:
    lines = (tmp_path / "starts.log").read_text().split("\n")
    return [(int(pid), int(batch)) for pid, batch in (line.split() for line in lines if line)]


def without_pid(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "actor_pid"} for row in rows]


def test_two_actors_translate_every_record_once_as_a_single_run_does(
    tmp_path, binary, model, tarjama_env, records, reference
):
    rows = run(Recorded, tmp_path, binary, model, tarjama_env, records)
    check_same_as_reference(without_pid(rows), reference)
    assert len({row["actor_pid"] for row in rows}) == 2, "both actors should have translated"
    # One long-lived tarjama per actor: started once, for its first batch.
    assert len(starts(tmp_path)) == 2, starts(tmp_path)


def test_a_killed_tarjama_is_restarted_and_its_batch_redone(
    tmp_path, binary, model, tarjama_env, records, reference
):
    rows = run(KillsItsTarjama, tmp_path, binary, model, tarjama_env, records)
    assert (tmp_path / "killed-tarjama").exists(), "no tarjama process was killed"
    check_same_as_reference(without_pid(rows), reference)
    # The killed process was replaced within the batch it died in, by the same actor.
    assert any(batch == 2 for _, batch in starts(tmp_path)), starts(tmp_path)


def test_an_actor_that_dies_mid_batch_is_restarted_and_the_batch_retried(
    tmp_path, binary, model, tarjama_env, records, reference
):
    rows = run(DiesOnce, tmp_path, binary, model, tarjama_env, records)
    assert (tmp_path / "actor-died").exists(), "no actor died"
    check_same_as_reference(without_pid(rows), reference)
    # Three actor processes started a tarjama: the two first ones and the one Ray restarted.
    assert len({pid for pid, _ in starts(tmp_path)}) == 3, starts(tmp_path)


def test_a_record_tarjama_refuses_fails_the_run_at_once_naming_it(
    binary, model, tarjama_env, records
):
    # A field tarjama writes ("english") makes it refuse the record: it writes no record for it,
    # only an error line, so the batch must fail with that line rather than wait or drop it.
    bad = [*records[:10], {"id": "bad", "text": records[0]["text"], "english": "x"}]
    ds = ray.data.from_items(bad, override_num_blocks=1)
    out = translate_dataset(ds, model, binary=binary, args=ARGS, env=tarjama_env)
    started = time.monotonic()
    with pytest.raises(Exception, match="english") as failure:
        out.take_all()
    assert "TarjamaError" in str(failure.value) or "TarjamaError" in repr(failure.value)
    assert time.monotonic() - started < 120, "it waited for the record timeout"


def test_the_device_flag_is_passed_through(binary, model):
    translator = TarjamaTranslator(model, binary=binary, device="cuda:1", args=["--beams", "1"])
    assert translator.command[-4:] == ["--device", "cuda:1", "--beams", "1"]
