"""The load generator of scripts/bench-serve: requests/s and p50/p99 latency of `tarjama serve`
at several concurrencies, and of the baseline (the command line run once per request).

    python3 scripts/bench_serve.py serve URL WORKLOAD CONCURRENCY REQUESTS
    python3 scripts/bench_serve.py cli "BIN ARGS..." WORKLOAD CONCURRENCY REQUESTS
    python3 scripts/bench_serve.py table RESULTS.jsonl
    python3 scripts/bench_serve.py model OUT_DIR
    python3 scripts/bench_serve.py model-tc-big OUT_DIR

`model` writes a random model shaped like Helsinki-NLP/opus-mt-ar-en (vocab 62834, d_model 512,
6+6 layers, 77M parameters, as scripts/bench_translate.py builds with torch, here with the
standard library only) on the tiny fixture's tokenizer: a real model's cost per step, where the
tiny fixture's weights fit in cache and gain little from batching. Its output is noise; run it
with --max-length 40 --min-length 39 so every sentence costs 40 decoder steps. `model-tc-big`
writes the shape of the default model, Helsinki-NLP/opus-mt-tc-big-ar-en (vocab 61109, d_model
1024, 16 heads, FFN 4096, 6+6 layers).

WORKLOAD is `sentence` (one ntrex line a request) or `paragraph` (5 consecutive lines joined
into one paragraph). Each prints one line of JSON. Standard library only: a thread per client,
each with its own keep-alive connection, which at these rates costs far less than the server.
"""

from __future__ import annotations

import array
import http.client
import json
import os
import random
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


REPO = Path(__file__).resolve().parents[1]
VOCAB = 62834  # Helsinki-NLP/opus-mt-ar-en
SHAPE = {"d_model": 512, "ffn": 2048, "layers": 6, "heads": 8}
# Helsinki-NLP/opus-mt-tc-big-ar-en, the default model: transformer-big.
TC_BIG = ({"d_model": 1024, "ffn": 4096, "layers": 6, "heads": 16}, 61109)


def build_model(out: Path, arch: dict = SHAPE, vocab_size: int = VOCAB) -> None:
    tiny = REPO / "tests" / "fixtures" / "marian-tiny"
    config = json.loads((tiny / "config.json").read_text())
    d, ffn, vocab = config["d_model"], config["encoder_ffn_dim"], config["vocab_size"]
    dims = {d: arch["d_model"], ffn: arch["ffn"], vocab: vocab_size}
    with open(tiny / "model.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    header.pop("__metadata__", None)
    # Layer 0's tensors stand for every layer of the bigger stacks.
    names = {}
    for name, info in header.items():
        parts = name.split(".")
        if "layers" in parts:
            i = parts.index("layers")
            if parts[i + 1] != "0":
                continue
            for layer in range(arch["layers"]):
                parts[i + 1] = str(layer)
                names[".".join(parts)] = info["shape"]
        else:
            names[name] = info["shape"]
    shapes = {n: [dims.get(x, x) for x in shape] for n, shape in sorted(names.items())}
    # Uniform weights of std 0.02 from a pool, each tensor from its own offset: random enough
    # for the arithmetic, and fast in pure Python.
    rng = random.Random(0)
    bound = 0.02 * 3 ** 0.5
    pool = array.array("f", (rng.uniform(-bound, bound) for _ in range(1 << 20)))
    out.mkdir(parents=True, exist_ok=True)
    meta, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        size = 4 * eval("*".join(map(str, shape)) or "1")
        meta[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(meta).encode()
    head += b" " * (-len(head) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
        for name, shape in shapes.items():
            count = meta[name]["data_offsets"][1] // 4 - meta[name]["data_offsets"][0] // 4
            if "layer_norm" in name and name.endswith("weight"):
                f.write(array.array("f", [1.0]) * count)
            elif name.endswith("bias"):
                f.write(bytes(4 * count))
            else:
                start = rng.randrange(len(pool))
                rotated = pool[start:] + pool[:start]
                whole, rest = divmod(count, len(pool))
                f.write(rotated * whole + rotated[:rest])
    # The fixture's vocabulary padded to the real size, <pad> last as in opus-mt-ar-en.
    pieces = json.loads((tiny / "vocab.json").read_text())
    ordered = [p for p, _ in sorted(pieces.items(), key=lambda kv: kv[1]) if p != "<pad>"]
    ordered += [f"<unused{i}>" for i in range(vocab_size - 1 - len(ordered))] + ["<pad>"]
    (out / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(ordered)}, ensure_ascii=False))
    pad = vocab_size - 1
    config.update(
        d_model=arch["d_model"], encoder_ffn_dim=arch["ffn"], decoder_ffn_dim=arch["ffn"],
        encoder_layers=arch["layers"], decoder_layers=arch["layers"],
        encoder_attention_heads=arch["heads"], decoder_attention_heads=arch["heads"],
        vocab_size=vocab_size, decoder_vocab_size=vocab_size, pad_token_id=pad, decoder_start_token_id=pad,
        max_position_embeddings=512,
    )
    (out / "config.json").write_text(json.dumps(config, indent=2))
    generation = json.loads((tiny / "generation_config.json").read_text())
    generation.update(bad_words_ids=[[pad]], decoder_start_token_id=pad, pad_token_id=pad)
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2))
    tokenizer = json.loads((tiny / "tokenizer_config.json").read_text())
    added = tokenizer["added_tokens_decoder"]
    added[str(pad)] = added.pop(str(config_pad(tiny)))
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2))
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes((tiny / name).read_bytes())


def config_pad(tiny: Path) -> int:
    return json.loads((tiny / "config.json").read_text())["pad_token_id"]


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
    if mode == "model":
        build_model(Path(sys.argv[2]))
        return
    if mode == "model-tc-big":
        build_model(Path(sys.argv[2]), *TC_BIG)
        return
    target, workload, concurrency, requests = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    work = texts(workload, requests)
    if mode == "serve":
        send, system = serve_sender(target), "tarjama serve"
        # Warm up the model's first batches.
        run(send, texts(workload, min(concurrency, 8)), min(concurrency, 8))
    elif mode == "cli":
        send, system = cli_sender(target), "cli per request"
    else:
        raise SystemExit(f"unknown mode {mode}")
    result = run(send, work, concurrency)
    print(json.dumps({"system": system, "workload": workload, "concurrency": concurrency, **result}))


if __name__ == "__main__":
    main()
