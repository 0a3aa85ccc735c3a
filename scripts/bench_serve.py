"""The load generator of scripts/bench-serve: requests/s and p50/p99 latency of `tarjama serve`
at several concurrencies, and of the baseline (the command line run once per request).

    python3 scripts/bench_serve.py serve URL WORKLOAD CONCURRENCY REQUESTS
    python3 scripts/bench_serve.py cli "BIN ARGS..." WORKLOAD CONCURRENCY REQUESTS
    python3 scripts/bench_serve.py table RESULTS.jsonl

WORKLOAD is `sentence` (one ntrex line a request) or `paragraph` (5 consecutive lines joined
into one paragraph). Each prints one line of JSON. Standard library only: a thread per client,
each with its own keep-alive connection, which at these rates costs far less than the server.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

SHARED = Path(os.environ.get("TARJAMA_SHARED", Path(__file__).resolve().parents[2] / "shared" / "data"))


def texts(workload: str, n: int) -> list[str]:
    lines = (SHARED / "ntrex" / "ar.txt").read_text(encoding="utf-8").splitlines()
    if workload == "sentence":
        return [lines[i % len(lines)] for i in range(n)]
    if workload == "paragraph":
        return [" ".join(lines[(5 * i + k) % len(lines)] for k in range(5)) for i in range(n)]
    raise SystemExit(f"unknown workload {workload}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(send, work: list[str], concurrency: int) -> dict:
    """Sends `work` from `concurrency` clients, each taking the next text when it is free."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(len(work)))

    def client() -> None:
        state: dict = {}
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                send(state, work[i])
            except Exception as e:  # noqa: BLE001 - every failure is reported
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * percentile(latencies, 50) if latencies else None,
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else None,
    }


def serve_sender(url: str):
    parsed = urllib.parse.urlparse(url)

    def send(state: dict, text: str) -> None:
        if "conn" not in state:
            state["conn"] = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
        body = json.dumps({"q": text, "source": "ar", "target": "en"})
        conn = state["conn"]
        try:
            conn.request("POST", "/translate", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            state.pop("conn").close()
            raise
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")
        json.loads(data)["translatedText"]

    return send


def cli_sender(command: str):
    argv = shlex.split(command)

    def send(_state: dict, text: str) -> None:
        subprocess.run(argv, input=text.encode(), stdout=subprocess.DEVNULL, check=True)

    return send


def table(path: str) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    by = {(r["system"], r["workload"], r["concurrency"]): r for r in rows}
    print("| system | workload | concurrency | requests | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['system']} | {r['workload']} | {r['concurrency']} | {r['requests']} | "
            f"{r['rps']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} |"
        )
    print()
    for workload in sorted({r["workload"] for r in rows}):
        one = by.get(("tarjama serve", workload, 1))
        many = by.get(("tarjama serve", workload, 64))
        if one and many:
            print(f"{workload}: tarjama serve at concurrency 64 / concurrency 1: {many['rps'] / one['rps']:.1f}x")
        for c in sorted({r["concurrency"] for r in rows}):
            s, b = by.get(("tarjama serve", workload, c)), by.get(("cli per request", workload, c))
            if s and b:
                print(f"{workload}: tarjama serve / cli per request at concurrency {c}: {s['rps'] / b['rps']:.1f}x")


def main() -> None:
    mode = sys.argv[1]
    if mode == "table":
        table(sys.argv[2])
        return
    target, workload, concurrency, requests = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    work = texts(workload, requests)
    if mode == "serve":
        send, system = serve_sender(target), "tarjama serve"
        # Warm up the connections and the model's first batches.
        run(send, texts(workload, concurrency)[:concurrency], concurrency)
    elif mode == "cli":
        send, system = cli_sender(target), "cli per request"
    else:
        raise SystemExit(f"unknown mode {mode}")
    result = run(send, work, concurrency)
    print(json.dumps({"system": system, "workload": workload, "concurrency": concurrency, **result}))


if __name__ == "__main__":
    main()
