"""What the Ray and Spark tests share: the tarjama binary, the tiny fixture model, 300 ntrex
records and a single `tarjama translate` run of them, which every route must reproduce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# Both modules are plain files in the repository, imported the way a user would copy them.
sys.path[:0] = [str(REPO / "integrations" / "ray"), str(REPO / "integrations" / "spark")]

RECORDS = 300


@pytest.fixture(scope="session")
def binary() -> str:
    path = Path(os.environ.get("TARJAMA_BIN", REPO / "target" / "release" / "tarjama"))
    if not path.is_file():
        pytest.fail(f"no tarjama binary at {path}: run `cargo build --release` or set TARJAMA_BIN")
    return str(path)


@pytest.fixture(scope="session")
def model() -> str:
    return str(REPO / "tests" / "fixtures" / "marian-tiny")


# Greedy, as the Rust tests run the fixture, so that every route decodes the same way.
ARGS = ["--beams", "1"]


@pytest.fixture(scope="session")
def tarjama_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An empty Hugging Face cache, offline: the fixture model is a local directory."""
    return {"HF_HOME": str(tmp_path_factory.mktemp("hf")), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="session")
def records() -> list[dict[str, Any]]:
    """The first 300 ntrex lines as records, with a field that must pass through."""
    shared = Path(os.environ.get("TARJAMA_SHARED", REPO.parent / "shared" / "data"))
    lines = (shared / "ntrex" / "ar.txt").read_text(encoding="utf-8").splitlines()[:RECORDS]
    assert len(lines) == RECORDS, f"{shared}/ntrex/ar.txt has fewer than {RECORDS} lines"
    return [{"id": f"ntrex-{i}", "text": line, "line": i + 1} for i, line in enumerate(lines)]


@pytest.fixture(scope="session")
def reference(
    binary: str,
    model: str,
    records: list[dict[str, Any]],
    tarjama_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """One `tarjama translate` run over a file of all the records, by id."""
    work = tmp_path_factory.mktemp("reference")
    source, out = work / "in.jsonl", work / "out.jsonl"
    source.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    subprocess.run(
        [
            binary,
            "translate",
            "--quiet",
            "--model",
            model,
            *ARGS,
            "--input-format",
            "jsonl",
            "--format",
            "jsonl",
            str(source),
            "-o",
            str(out),
        ],
        check=True,
        env={**os.environ, **tarjama_env},
    )
    refs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_id = {r["id"]: r for r in refs}
    assert len(refs) == len(by_id) == RECORDS, "the reference run must hold each id once"
    assert all(r["english"] and r["english"][0] for r in refs), (
        "the reference has empty translations"
    )
    return by_id


def check_same_as_reference(
    rows: list[dict[str, Any]], reference: dict[str, dict[str, Any]]
) -> None:
    """Every id exactly once, each record equal to the single run's."""
    ids = [row["id"] for row in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"ids written more than once: {duplicates[:10]}"
    missing = sorted(set(reference) - set(ids))
    assert not missing, f"{len(missing)} ids missing, e.g. {missing[:10]}"
    extra = sorted(set(ids) - set(reference))
    assert not extra, f"ids that were not in the input: {extra[:10]}"
    for row in rows:
        ref = reference[row["id"]]
        got = {k: v for k, v in row.items() if v is not None}
        assert got == ref, f"record {row['id']} differs from the single run:\n{got}\n{ref}"
