"""The routes of scripts/bench-cluster, timed on the same records (see that script).

Usage: bench_cluster.py BINARY MODEL NTREX_AR RECORDS REPEATS THREADS_PER_WORKER
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "integrations" / "ray"))


def main() -> None:
    binary, model, ntrex, count, repeats, worker_threads = sys.argv[1:7]
    count, repeats = int(count), int(repeats)
    work = Path(tempfile.mkdtemp(prefix="tarjama-bench-cluster-"))
    lines = Path(ntrex).read_text(encoding="utf-8").splitlines()
    # ntrex has 1997 lines: the count is reached by starting over, each record with its own id.
    records = [{"id": f"r{i}", "text": lines[i % len(lines)]} for i in range(count)]
    source = work / "in.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    env = {**os.environ, "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1"}
    base = [binary, "translate", "--quiet", "--model", model, "--beams", "1"]
    base += ["--input-format", "jsonl", "--format", "jsonl"]
    worker = ["--threads", worker_threads]

    def file_mode() -> list[Path]:
        out = work / "file.jsonl"
        out.unlink(missing_ok=True)
        subprocess.run([*base, str(source), "-o", str(out)], check=True, env=env)
        return [out]

    def pipe_mode() -> list[Path]:
        # stdin and stdout are pipes, as for a co-process: each record is flushed when done.
        out = work / "pipe.jsonl"
        line = (
            f"cat {shlex.quote(str(source))} | {shlex.join(base)} | cat > {shlex.quote(str(out))}"
        )
        subprocess.run(["bash", "-o", "pipefail", "-c", line], check=True, env=env)
        return [out]

    def shards() -> list[Path]:
        outs = [work / f"shard{i}.jsonl" for i in range(2)]
        procs = []
        for i, out in enumerate(outs):
            out.unlink(missing_ok=True)
            cmd = [*base, *worker, "--shard", f"{i}/2", str(source), "-o", str(out)]
            procs.append(subprocess.Popen(cmd, env=env))
        for p in procs:
            if p.wait():
                raise SystemExit(f"a shard exited {p.returncode}")
        return outs

    ray_state: dict[str, float] = {}

    def ray_data() -> list[Path]:
        import ray
        from tarjama_ray import translate_dataset

        if not ray.is_initialized():
            t = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_state["init_s"] = time.perf_counter() - t
        ds = ray.data.from_items(records, override_num_blocks=8)
        out_ds = translate_dataset(
            ds,
            model,
            concurrency=2,
            batch_size=64,
            binary=binary,
            args=["--beams", "1", *worker],
            env={"HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1"},
        )
        out = work / "ray.jsonl"
        rows = out_ds.take_all()
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return [out]

    routes: dict[str, Callable[[], list[Path]]] = {
        "one process, file": file_mode,
        "one process, pipe": pipe_mode,
        f"2 shards side by side (--threads {worker_threads} each)": shards,
        f"Ray Data, 2 actors (--threads {worker_threads} each)": ray_data,
    }
    # TARJAMA_BENCH_ROUTES=file,shards runs only some (file always: it is the reference).
    chosen = os.environ.get("TARJAMA_BENCH_ROUTES")
    if chosen:
        keys = ["file", "pipe", "shards", "ray"]
        wanted = {"file", *chosen.split(",")}
        routes = {n: r for k, (n, r) in zip(keys, routes.items(), strict=True) if k in wanted}
    times: dict[str, list[float]] = {name: [] for name in routes}
    reference: dict[str, list[str]] | None = None
    # Rounds interleave the routes, so a noisy machine's drift falls on all of them alike.
    for round_ in range(repeats):
        for name, route in routes.items():
            t = time.perf_counter()
            outs = route()
            times[name].append(time.perf_counter() - t)
            got = english_by_id(outs)
            if reference is None:
                reference = got
            if got != reference or len(got) != count:
                raise SystemExit(f"{name}: the output differs from the single file-mode run")
            print(f"round {round_ + 1}: {name}: {times[name][-1]:.2f} s", file=sys.stderr)

    single = statistics.median(times["one process, file"])
    print(f"{count} records, tiny Marian fixture, greedy; medians of {repeats} interleaved rounds")
    print(f"{'route':<48} {'s':>7} {'records/s':>10} {'vs one process':>15}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<48} {t:7.2f} {count / t:10.1f} {f'{(t / single - 1) * 100:+.1f}% time':>15}")
    if "one process, pipe" in times:
        pipe_ratio = statistics.median(
            f / p
            for f, p in zip(times["one process, file"], times["one process, pipe"], strict=True)
        )
        print(f"pipe / file throughput: {pipe_ratio:.3f} (median of the per-round ratios)")
    if "init_s" in ray_state:
        print(f"(ray.init, once, not in the Ray times: {ray_state['init_s']:.1f} s)")


def english_by_id(paths: list[Path]) -> dict[str, list[str]]:
    """Every output record's translation by id; an id written twice is an error."""
    out: dict[str, list[str]] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["id"] in out:
                raise SystemExit(f"{path}: id {record['id']} written twice")
            out[record["id"]] = record["english"]
    return out


if __name__ == "__main__":
    main()
