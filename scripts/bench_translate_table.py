"""Summaries of scripts/bench-translate (kept apart from bench_translate.py, which imports torch).

    python scripts/bench_translate_table.py summarize NAME WORK_DIR RESULT...
        RESULT is "SYSTEM JSON", one per system and round (interleaved rounds). Prints the row's
        medians and per-round ratio medians, compares the first round's f32 and int8 ids of tarjama
        and of CTranslate2 (WORK_DIR/SYSTEM.ids, then removed) and appends the row to
        WORK_DIR/rows.jsonl.
    python scripts/bench_translate_table.py table WORK_DIR/rows.jsonl
        One Markdown table of every row.
"""
import json
import statistics
import sys
from pathlib import Path

SYSTEMS = ["tarjama-f32", "tarjama-int8", "transformers", "ct2-f32", "ct2-int8"]
RATIOS = [
    ("tarjama-f32", "transformers"),
    ("tarjama-f32", "ct2-f32"),
    ("tarjama-int8", "ct2-int8"),
    ("tarjama-int8", "tarjama-f32"),
]


def summarize(name, work, results):
    runs = {}
    for line in results:
        system, result = line.split(" ", 1)
        runs.setdefault(system, []).append(json.loads(result))
    tokens = {r["tokens"] for rs in runs.values() for r in rs}
    assert len(tokens) == 1, f"different work: {tokens}"
    row = {"name": name, "rounds": len(next(iter(runs.values()))), "systems": {}, "ratios": {}}
    print(f"{name}:")
    for system, rs in runs.items():
        med = {key: statistics.median(r[key] for r in rs) for key in ("tokens_per_s", "load_s", "peak_rss_mb")}
        row["systems"][system] = med
        print(f"  {system:<13} {med['tokens_per_s']:7.1f} tok/s   load {med['load_s']:5.2f} s   "
              f"peak RSS {med['peak_rss_mb']:5.0f} MB")
    for a, b in RATIOS:
        if a in runs and b in runs:
            r = statistics.median(x["tokens_per_s"] / y["tokens_per_s"] for x, y in zip(runs[a], runs[b]))
            row["ratios"][f"{a} / {b}"] = r
            print(f"  {a} / {b}: {r:.2f}x")
    for engine in ("tarjama", "ct2"):
        f32, int8 = Path(work) / f"{engine}-f32.ids", Path(work) / f"{engine}-int8.ids"
        if f32.is_file() and int8.is_file():
            a, b = json.loads(f32.read_text()), json.loads(int8.read_text())
            row[f"{engine}_int8_differing"] = [sum(x != y for x, y in zip(a, b)), len(a)]
            print(f"  {engine} int8 outputs differing from its f32: {row[f'{engine}_int8_differing'][0]} of {len(a)}")
        for path in (f32, int8):
            path.unlink(missing_ok=True)
    print(f"  (medians of {row['rounds']} interleaved rounds)")
    with open(Path(work) / "rows.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def table(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    print("| tok/s | " + " | ".join(SYSTEMS) + " | " + " | ".join(f"{a} / {b}" for a, b in RATIOS)
          + " | tarjama int8 ≠ f32 | ct2 int8 ≠ f32 |")
    print("|---" * (3 + len(SYSTEMS) + len(RATIOS)) + "|")
    for row in rows:
        speeds = [f"{row['systems'][s]['tokens_per_s']:.0f}" if s in row["systems"] else "" for s in SYSTEMS]
        ratios = [f"{row['ratios'][f'{a} / {b}']:.2f}x" if f"{a} / {b}" in row["ratios"] else ""
                  for a, b in RATIOS]
        differing = ["{} of {}".format(*row[key]) if key in row else ""
                     for key in ("tarjama_int8_differing", "ct2_int8_differing")]
        print(f"| {row['name']} | " + " | ".join(speeds + ratios + differing) + " |")
    print(f"\n(medians of interleaved rounds; ratios are medians of per-round ratios)")


if __name__ == "__main__":
    if sys.argv[1] == "summarize":
        summarize(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        raise SystemExit(__doc__)
