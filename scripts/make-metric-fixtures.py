#!/usr/bin/env python3
"""Generate tests/fixtures/metrics/chrf.json: sacrebleu's chrF on fixed inputs.

Run from the repository root:

    /work/venv/fx/bin/python scripts/make-metric-fixtures.py [--shared ../shared/data]

Pinned versions (the script refuses others unless --any-version is given):

    python     3.11.7
    sacrebleu  2.6.0   (pip install sacrebleu==2.6.0)

The metric is sacrebleu's default chrF: `sacrebleu.corpus_chrf(hyps, [refs])` and
`sacrebleu.sentence_chrf(hyp, [ref])` with no extra arguments (character order 6,
word order 0, beta 2, whitespace removed, effective-order averaging, no eps
smoothing). Every case records, besides the score, the float's bit pattern (so the
Rust side can check for exact equality without trusting a decimal round trip) and
sacrebleu's summed statistics, [hyp, ref, match] for orders 1..6, so that a mismatch
can be told apart as a counting bug or an arithmetic one.

Inputs: the first 30 lines of NTREX-128 (`ntrex/en.txt`, `ntrex/ar.txt`,
CC BY-SA 4.0) as references, synthetic hypotheses made from them with a fixed
seed, and hand-written edge cases. Nothing is downloaded.
"""

import argparse
import json
import random
import re
import struct
import sys
from pathlib import Path

PINNED = {"sacrebleu": "2.6.0"}
PINNED_PYTHON = "3.11.7"
SEED = 20261129
N_LINES = 30
OUT = Path("tests/fixtures/metrics/chrf.json")


def check_versions(allow_any):
    from importlib.metadata import version

    have = {k: version(k) for k in PINNED}
    have["python"] = "%d.%d.%d" % sys.version_info[:3]
    want = dict(PINNED, python=PINNED_PYTHON)
    bad = {k: (have[k], w) for k, w in want.items() if have[k] != w}
    if bad:
        msg = "version mismatch (have, pinned): %r" % bad
        if not allow_any:
            sys.exit(msg + "\nrerun with --any-version to ignore")
        print("WARNING:", msg, file=sys.stderr)
    return have


def read_lines(path, n):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f][:n]


# --------------------------------------------------------------------------
# synthetic hypotheses
# --------------------------------------------------------------------------


def shuffled(rng, line):
    words = line.split()
    rng.shuffle(words)
    return " ".join(words)


def truncated(line):
    words = line.split()
    return " ".join(words[: max(1, len(words) // 2)])


def every_other_word(line):
    return " ".join(line.split()[::2])


def punctuation_changed(line):
    table = str.maketrans(
        {".": "!", ",": ";", '"': "\u201d", "'": "\u2019", ":": " -", "(": "[", ")": "]"}
    )
    return line.translate(table)


def typos(rng, line):
    """Swap two neighbouring characters inside a few words."""
    chars = list(line)
    for _ in range(max(1, len(chars) // 25)):
        i = rng.randrange(max(1, len(chars) - 1))
        if not chars[i].isspace() and not chars[i + 1].isspace():
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ة": "ه", "ى": "ي"})
ARABIC_PUNCT = str.maketrans({"،": ",", "؛": ";", "؟": "?", ",": "،"})


def with_diacritics(rng, line):
    """Sprinkle fatha/damma/kasra/shadda and tatweel over Arabic letters."""
    marks = ["\u064e", "\u064f", "\u0650", "\u0651", "\u0640"]
    out = []
    for c in line:
        out.append(c)
        if "\u0621" <= c <= "\u064a" and rng.random() < 0.2:
            out.append(rng.choice(marks))
    return "".join(out)


def english_sets(refs):
    rng = random.Random(SEED)
    return {
        "en/identical": list(refs),
        "en/word-shuffled": [shuffled(rng, r) for r in refs],
        "en/truncated": [truncated(r) for r in refs],
        "en/lowercased": [r.lower() for r in refs],
        "en/every-other-word": [every_other_word(r) for r in refs],
        "en/empty-mixed": ["" if i % 3 == 0 else r for i, r in enumerate(refs)],
        "en/punctuation-changed": [punctuation_changed(r) for r in refs],
        "en/typos": [typos(rng, r) for r in refs],
        "en/misaligned": refs[1:] + refs[:1],
        "en/whitespace-changed": [re.sub(" ", "\t  ", r).replace("the", "t h e") for r in refs],
    }


def arabic_sets(refs, en_refs):
    rng = random.Random(SEED + 1)
    return {
        "ar/identical": list(refs),
        "ar/word-shuffled": [shuffled(rng, r) for r in refs],
        "ar/alef-normalized": [r.translate(ALEF) for r in refs],
        "ar/diacritics": [with_diacritics(rng, r) for r in refs],
        "ar/punctuation-changed": [r.translate(ARABIC_PUNCT) for r in refs],
        "ar/truncated": [truncated(r) for r in refs],
        "ar/every-other-word": [every_other_word(r) for r in refs],
        "ar/empty-mixed": ["" if i % 4 == 1 else r for i, r in enumerate(refs)],
        "ar/english-hyps": list(en_refs),
    }


# Python's str.split() whitespace (str.isspace): Rust's char::is_whitespace plus U+001C..U+001F.
PY_WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
FOX = "The quick brown fox jumps over the lazy dog."

# (name, hyp, ref); each is also scored as a one-sentence corpus.
EDGE_CASES = [
    ("empty-hyp", "", "The cat sat on the mat."),
    ("empty-ref", "The cat sat on the mat.", ""),
    ("both-empty", "", ""),
    ("single-char-same", "a", "a"),
    ("single-char-different", "a", "b"),
    ("single-char-hyp", "a", "a cat"),
    ("single-char-ref", "a cat", "a"),
    ("whitespace-only-hyp", " \t\n ", "The cat sat."),
    ("whitespace-only-ref", "The cat sat.", "  \u3000 "),
    ("whitespace-only-both", "   ", "\t"),
    ("all-python-whitespace", "ab" + PY_WHITESPACE.join(LETTERS[2:]), LETTERS),
    ("separators-are-whitespace", "one\x1ctwo\x1dthree\x1efour\x1ffive", "onetwothreefourfive"),
    ("zero-width-space-is-not", "one\u200btwo\u200bthree", "one two three"),
    ("nbsp-and-ideographic-space", "one\u00a0two\u3000three", "one two three"),
    ("ref-shorter-than-orders", "abcdefghij", "abc"),
    ("hyp-shorter-than-orders", "abc", "abcdefghij"),
    ("repeated-chars-clipped", "aaaaaaaaaa", "aaa"),
    ("no-overlap", "xyz xyz", "abc abc"),
    ("emoji", "I love it 👍🏽🎉", "I love it 👍🎉"),
    ("emoji-zwj-family", "family " + "\u200d".join("👨👩👧👦") + " here", "family 👨👩👧👦 here"),
    ("emoji-flags", "🇪🇬🇸🇦🇦🇪", "🇸🇦🇪🇬"),
    ("emoji-only-same", "🙂", "🙂"),
    ("combining-nfc-vs-nfd", "caf\u00e9 na\u00efve", "cafe\u0301 nai\u0308ve"),
    ("astral-cjk", "𠀀𠀁𠀂 漢字", "𠀀𠀁 漢字かな"),
    ("arabic-tatweel", "الســـلام عليكم", "السلام عليكم"),
    ("arabic-vs-latin-digits", "عام ٢٠٢٤", "عام 2024"),
    ("crlf", "line one\r\nline two\r\n", "line one\nline two"),
    ("long-token", "x" * 300, "x" * 299 + "y"),
    ("exact-long", FOX, FOX),
    ("case-only", "THE QUICK BROWN FOX", "the quick brown fox"),
]


# --------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------


def bits(x):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", x))[0]


def record(score, stats):
    assert isinstance(score, float), score
    return {"score": score, "bits": bits(score), "stats": [int(s) for s in stats]}


def score_case(name, hyps, refs, named=None):
    """Score one corpus; `named` maps text lists to the names they are stored under."""
    import sacrebleu
    from sacrebleu.metrics import CHRF
    from sacrebleu.utils import sum_of_lists

    metric = CHRF()
    seg_stats = metric._extract_corpus_statistics(hyps, [refs])
    corpus = sacrebleu.corpus_chrf(hyps, [refs]).score
    total = sum_of_lists(seg_stats)
    # The recorded statistics must be the ones behind the public score.
    assert metric._compute_f_score(total) == corpus, name

    sentences = []
    for h, r, st in zip(hyps, refs, seg_stats):
        s = sacrebleu.sentence_chrf(h, [r]).score
        assert metric._compute_f_score(st) == s, name
        sentences.append(record(s, st))
    named = named or {}
    return {
        "name": name,
        "hyps": named.get(tuple(hyps), hyps),
        "refs": named.get(tuple(refs), refs),
        "corpus": record(corpus, total),
        "sentences": sentences,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared/data", help="folder with ntrex/")
    ap.add_argument("--any-version", action="store_true", help="run with unpinned versions")
    args = ap.parse_args()
    have = check_versions(args.any_version)

    ntrex = Path(args.shared) / "ntrex"
    en = read_lines(ntrex / "en.txt", N_LINES)
    ar = read_lines(ntrex / "ar.txt", N_LINES)

    # Corpora that many cases share are stored once, under these names.
    texts = {"ntrex-en": en, "ntrex-ar": ar}
    named = {tuple(v): k for k, v in texts.items()}
    cases = []
    for name, hyps in english_sets(en).items():
        cases.append(score_case(name, hyps, en, named))
    for name, hyps in arabic_sets(ar, en).items():
        cases.append(score_case(name, hyps, ar, named))
    for name, h, r in EDGE_CASES:
        cases.append(score_case("edge/" + name, [h], [r]))
    # Edge cases together: empty references change the corpus-level hypothesis counts.
    hyps, refs = [h for _, h, _ in EDGE_CASES], [r for _, _, r in EDGE_CASES]
    cases.append(score_case("edge/all-as-corpus", hyps, refs))

    out = {
        "about": "sacrebleu default chrF (chrF2, char order 6, word order 0, whitespace removed, "
        "effective order); made by scripts/make-metric-fixtures.py. Texts from NTREX-128 "
        "(Microsoft), CC BY-SA 4.0, and synthetic perturbations of them.",
        "versions": have,
        "python_whitespace": [ord(c) for c in PY_WHITESPACE],
        "texts": texts,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, ensure_ascii=False, indent=1)
    # One line per list of numbers and per score record keeps the file small and diffable.
    text = re.sub(r"\[[-0-9.,e\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)
    one_line = lambda m: "{" + re.sub(r"\n\s*", " ", m.group(1)) + "}"
    text = re.sub(r"\{\s*(\"score\"[^{}]*?)\s*\}", one_line, text)
    OUT.write_text(text + "\n", encoding="utf-8")
    n_sent = sum(len(c["sentences"]) for c in cases)
    print(f"wrote {OUT}: {len(cases)} corpora, {n_sent} sentences, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
