#!/usr/bin/env python3
"""Generate tests/fixtures/metrics/{chrf,bleu,rouge}.json: reference metric scores on fixed inputs.

Run from the repository root:

    /work/venv/fx/bin/python scripts/make-metric-fixtures.py [--shared ../shared/data]

Pinned versions (the script refuses others unless --any-version is given):

    python       3.11.7  (its built-in sum() adds floats left to right; 3.12 compensates)
    sacrebleu    2.6.0   (pip install sacrebleu==2.6.0)
    rouge-score  0.1.2   (pip install rouge-score==0.1.2; pulls in nltk, absl-py, six)

chrf.json: sacrebleu's default chrF, `sacrebleu.corpus_chrf(hyps, [refs])` and
`sacrebleu.sentence_chrf(hyp, [ref])` with no extra arguments (character order 6,
word order 0, beta 2, whitespace removed, effective-order averaging, no eps
smoothing). Every case records, besides the score, the float's bit pattern (so the
Rust side can check for exact equality without trusting a decimal round trip) and
sacrebleu's summed statistics, [hyp, ref, match] for orders 1..6, so that a mismatch
can be told apart as a counting bug or an arithmetic one.

bleu.json: sacrebleu's default BLEU, `sacrebleu.corpus_bleu(hyps, [refs])` (13a
tokenizer, max order 4, 'exp' smoothing, mixed case, effective_order False) and
`sacrebleu.sentence_bleu(hyp, [ref])` (the same with effective order), with bit
patterns of the score, brevity penalty and precisions, sacrebleu's statistics
[sys_len, ref_len, correct 1..4, total 1..4], and `Tokenizer13a()` outputs.

multiref.json: what sacrebleu's signatures, chrF++ and several references give:
`CHRF(word_order=2)` (chrF++, as `sacrebleu --chrf-word-order 2`), and BLEU, chrF and
chrF++ against 2 and 3 reference streams (`corpus_score(hyps, [refs1, refs2, ...])`),
per corpus and per sentence (`sentence_score(hyp, [ref1, ref2, ...])`), with bits and
statistics as above; each case's `signature` (`metric.get_signature().format()`) and
`text`, the line `sacrebleu -f text -w 2` prints (`score.format(width=2,
signature=...)`).

rouge.json: rouge-score's `RougeScorer(['rouge1', 'rouge2', 'rougeL'],
use_stemmer=False).score(ref, hyp)` per pair (precision, recall, F-measure bits and the
counts behind them, [matched, hyp, ref]), the corpus mean of each (summed left to right,
divided by the number of pairs: rouge-score's BootstrapAggregator is random and
estimates this mean), and the default tokenizer's output.

Inputs: the first 30 lines of NTREX-128 (`ntrex/en.txt`, `ntrex/ar.txt`,
CC BY-SA 4.0) as references, synthetic hypotheses made from them with a fixed
seed, and hand-written edge cases. Nothing is downloaded.
"""

import argparse
import random
import re
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_common  # noqa: E402  (scripts/fixture_common.py)

PINNED = {"sacrebleu": "2.6.0", "rouge-score": "0.1.2"}
PINNED_PYTHON = "3.11.7"
SEED = 20261129
N_LINES = 30
OUT_DIR = Path("tests/fixtures/metrics")


def read_lines(path, n):
    return fixture_common.read_lines(path)[:n]


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


# --------------------------------------------------------------------------
# BLEU
# --------------------------------------------------------------------------


def numbers_changed(line):
    """Every digit moved on by one, so numbers no longer match."""
    return re.sub(r"[0-9]", lambda m: str((int(m.group(0)) + 1) % 10), line)


def html_escaped(line):
    return line.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def bleu_english_sets(refs):
    return dict(
        english_sets(refs),
        **{
            "en/numbers-changed": [numbers_changed(r) for r in refs],
            "en/html-escaped": [html_escaped(r) for r in refs],
            # No 4-grams anywhere: corpus BLEU (no effective order) is 0, sentence BLEU is not.
            "en/first-three-words": [" ".join(r.split()[:3]) for r in refs],
            "en/repeated-first-word": [" ".join([r.split()[0]] * 8) for r in refs],
        },
    )


# (name, hyp, ref) beyond the chrF ones: what 13a tokenization and BLEU's counting decide.
BLEU_EDGE_CASES = [
    ("punctuation-only", "!!! ... ,,, ?", "?!"),
    ("punctuation-only-same", "...", "..."),
    ("one-word-same", "cat", "cat"),
    ("one-word-different", "cat", "dog"),
    ("two-words", "the cat", "the cat sat"),
    ("three-words-exact", "the cat sat", "the cat sat"),
    ("four-words-exact", "the cat sat down", "the cat sat down"),
    ("no-4gram-match", "the cat sat on a mat", "the cat sat by a mat"),
    ("numbers", "It cost $1,000.50 in 2020-2021.", "It cost $1,000.5 in 2020 - 2021."),
    ("decimal-comma", "3,5 km or 3.5 km", "3.5 km"),
    ("dots-and-commas", "a..b ... .5 5. ,a a, 1.2.3 1,,2", "a . . b . 5 5 ."),
    ("hyphens", "9-5 x-ray -3 3- a--b 10 -- 20", "9 - 5 x-ray"),
    ("abbreviations", "U.S. e.g., i.e. Mr. Smith", "US eg ie Mr Smith"),
    ("html-entities", "AT&amp;T said &quot;no&quot; &lt;b&gt;", 'AT&T said "no" <b>'),
    ("double-escaped", "&amp;quot; &amp;amp; &AMP; &#39;", "&quot; &amp;"),
    ("skipped-and-newlines", "foo-\nbar<skipped> baz\nqux", "foobar baz qux"),
    ("trailing-whitespace", "the cat sat \t\n\u3000", "the cat sat"),
    ("leading-whitespace", " \t the cat", "the cat"),
    ("python-whitespace", "the\x1ccat\u00a0sat\u2028down\x85now", "the cat sat down now"),
    ("zero-width-space", "the\u200bcat", "the cat"),
    ("repeated-words", "the the the the the the the", "the cat is on the mat"),
    ("repeated-bigrams", "on the on the on the", "on the mat on the rug"),
    ("apostrophes", "don't it's 'quoted' rock'n'roll", "do not it is quoted"),
    ("ascii-symbols", "a+b=c; x<y>z @home #tag ~tilde ^caret `tick` |pipe| \\slash/ [b]{c}", "a + b = c"),
    ("unicode-punctuation", "\u201cHello,\u201d she said\u2014\u201cbye\u2026\u201d", '"Hello," she said - "bye..."'),
    ("arabic-punctuation", "قال: «مرحباً»، وذهب؟ نعم؛ لا.", "قال: «مرحبا»، وذهب؟"),
    ("arabic-digits", "عام ٢٠٢٤.", "عام 2024."),
    ("fullwidth", "Ｈｅｌｌｏ，ｗｏｒｌｄ！", "Hello, world!"),
    ("long-vs-short", " ".join([FOX] * 6), "The fox."),
    ("short-vs-long", "The fox.", " ".join([FOX] * 6)),
    ("url", "see https://example.com/a-b?x=1&y=2.", "see https://example.com/a-b?x=1&y=2 ."),
    ("email", "mail me at a.b@c.org, ok?", "mail me at a.b@c.org ok"),
    ("tab-separated", "a\tb\tc\td", "a b c d"),
]

# Tokenizer-only strings (each edge-case text is tokenized too).
TOKENIZER_STRINGS = [
    "Hello, world!",
    "It costs $3.50, or 1,000.5 dinars.",
    " .5",
    "5.",
    "5,",
    ",5",
    "a.,b",
    "1.-2",
    "1-.2",
    "x-1-2-3-y",
    "<skipped><skipped>x",
    "-\n-\n",
    "&amp;amp;",
    "&quot",
    "&lt;&gt;&quot;&amp;",
    "\r\n\r",
    "\x0b\x0c\x1d\x1e\x1f",
    "tab\there",
    "\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000",
    "\u180e\u200b\ufeff",
    "e\u0301 \u0627\u064b",
    "🇪🇬🇸🇦 👨\u200d👩\u200d👧",
    "'single' \"double\" `back`",
    "",
    " ",
]


def bleu_record(score, stats, corpus_level):
    rec = record(score.score, stats)
    if corpus_level:
        rec["bp"] = bits(float(score.bp))
        rec["precisions"] = [bits(float(p)) for p in score.precisions]
    else:
        # Sentence records keep only the bits, to keep the file small.
        del rec["score"]
    return rec


def bleu_case(name, hyps, refs, named=None):
    import sacrebleu
    from sacrebleu.metrics import BLEU
    from sacrebleu.utils import sum_of_lists

    metric = BLEU()
    seg_stats = metric._extract_corpus_statistics(hyps, [refs])
    corpus = sacrebleu.corpus_bleu(hyps, [refs])
    total = sum_of_lists(seg_stats)
    # The recorded statistics must be the ones behind the public score.
    assert metric._compute_score_from_stats(list(total)).score == corpus.score, name
    assert [corpus.sys_len, corpus.ref_len] + corpus.counts + corpus.totals == list(total), name

    sentence_metric = BLEU(effective_order=True)
    sentences = []
    for h, r, st in zip(hyps, refs, seg_stats):
        s = sacrebleu.sentence_bleu(h, [r])
        assert sentence_metric._compute_score_from_stats(list(st)).score == s.score, name
        sentences.append(bleu_record(s, st, False))
    named = named or {}
    return {
        "name": name,
        "hyps": named.get(tuple(hyps), hyps),
        "refs": named.get(tuple(refs), refs),
        "corpus": bleu_record(corpus, total, True),
        "sentences": sentences,
    }


def make_bleu(en, ar, texts, named):
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tok = Tokenizer13a()
    cases = []
    for name, hyps in bleu_english_sets(en).items():
        cases.append(bleu_case(name, hyps, en, named))
    for name, hyps in arabic_sets(ar, en).items():
        cases.append(bleu_case(name, hyps, ar, named))
    edge = EDGE_CASES + BLEU_EDGE_CASES
    for name, h, r in edge:
        cases.append(bleu_case("edge/" + name, [h], [r]))
    hyps, refs = [h for _, h, _ in edge], [r for _, _, r in edge]
    cases.append(bleu_case("edge/all-as-corpus", hyps, refs))

    strings = list(dict.fromkeys(TOKENIZER_STRINGS + hyps + refs))
    return {
        "about": "sacrebleu default BLEU (13a, max order 4, exp smoothing, mixed case; "
        "corpus_bleu without and sentence_bleu with effective order) and Tokenizer13a outputs; "
        "made by scripts/make-metric-fixtures.py. Texts from NTREX-128 (Microsoft), "
        "CC BY-SA 4.0, and synthetic perturbations of them.",
        "texts": texts,
        "tokenize_13a": [[s, tok(s)] for s in strings],
        "tokenized_texts": {k: [tok(line) for line in v] for k, v in texts.items()},
        "cases": cases,
    }


# --------------------------------------------------------------------------
# chrF++, several references, signatures
# --------------------------------------------------------------------------


def multi_case(metric_name, name, hyps, streams, word_order=0, named=None):
    """One corpus scored by sacrebleu's BLEU or chrF (`word_order` 2: chrF++) against the
    reference streams `streams`, with the signature and the text line of the sacrebleu CLI."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.utils import sum_of_lists

    if metric_name == "bleu":
        metric, sentence_metric = BLEU(), BLEU(effective_order=True)
        score_of = lambda m, st: m._compute_score_from_stats(list(st)).score
    else:
        metric = sentence_metric = CHRF(word_order=word_order)
        score_of = lambda m, st: m._compute_f_score(st)
    seg_stats = metric._extract_corpus_statistics(hyps, streams)
    corpus = metric.corpus_score(hyps, streams)
    total = sum_of_lists(seg_stats)
    assert score_of(metric, total) == corpus.score, name
    signature = metric.get_signature().format()
    text = corpus.format(width=2, signature=signature)
    sentences = []
    for i, h in enumerate(hyps):
        refs = [stream[i] for stream in streams]
        s = sentence_metric.sentence_score(h, refs)
        assert score_of(sentence_metric, seg_stats[i]) == s.score, name
        sentences.append({"bits": bits(s.score), "stats": [int(x) for x in seg_stats[i]]})
    named = named or {}
    rec = record(corpus.score, total)
    if metric_name == "bleu":
        rec["bp"] = bits(float(corpus.bp))
    return {
        "name": name,
        "metric": metric_name,
        "word_order": word_order,
        "hyps": named.get(tuple(hyps), hyps),
        "refs": [named.get(tuple(stream), stream) for stream in streams],
        "signature": signature,
        "text": text,
        "corpus": rec,
        "sentences": sentences,
    }


def make_multiref(en, ar, texts, named):
    rng = random.Random(SEED + 2)
    # Second and third references: rewordings a second translator might give, made from the
    # first (shuffled words, every other word, typos), and a stream with empty lines.
    en2 = [shuffled(rng, r) for r in en]
    en3 = [typos(rng, every_other_word(r)) if i % 2 else truncated(r) for i, r in enumerate(en)]
    en_empty = ["" if i % 5 == 2 else r for i, r in enumerate(en)]
    texts = dict(texts, **{"ntrex-en-2": en2, "ntrex-en-3": en3, "ntrex-en-empty": en_empty})
    named = {tuple(v): k for k, v in texts.items()}
    stream_sets = {
        "1ref": [en],
        "2refs": [en, en2],
        "3refs": [en, en2, en3],
        "2refs-empty-lines": [en_empty, en3],
    }
    cases = []
    for hyp_name, hyps in english_sets(en).items():
        for metric_name, order in [("bleu", 0), ("chrf", 0), ("chrf", 2)]:
            for refs_name, streams in stream_sets.items():
                # chrF++ against one reference for every set; the rest on a few sets each.
                wanted = (metric_name, order, refs_name) == ("chrf", 2, "1ref") or hyp_name in (
                    "en/typos", "en/word-shuffled", "en/truncated", "en/empty-mixed")
                if wanted:
                    label = f"{metric_name}{'++' if order else ''}/{refs_name}/{hyp_name}"
                    cases.append(multi_case(metric_name, label, hyps, streams, order, named))
    rng_ar = random.Random(SEED + 3)
    ar2 = [shuffled(rng_ar, r) for r in ar]
    texts["ntrex-ar-2"] = ar2
    named[tuple(ar2)] = "ntrex-ar-2"
    for hyp_name, hyps in arabic_sets(ar, en).items():
        cases.append(multi_case("chrf", f"chrf++/1ref/{hyp_name}", hyps, [ar], 2, named))
    cases.append(multi_case("chrf", "chrf++/2refs/ar/word-shuffled", arabic_sets(ar, en)[
        "ar/word-shuffled"], [ar, ar2], 2, named))
    # Edge cases: each as a corpus of one against itself and an empty second reference, and
    # all together (chrF++ word splitting: punctuation at both ends, single characters).
    edge = EDGE_CASES + [
        ("punctuation-both-ends", "(hi) \"ok\", a . -x 'y'z ...", "(hi) ok, a. x y z"),
        ("single-characters", "a b c . , !", "a b c"),
    ]
    for name, h, r in edge:
        cases.append(multi_case("chrf", "chrf++/edge/" + name, [h], [[r]], 2))
        cases.append(multi_case("chrf", "chrf++/2refs/edge/" + name, [h], [[r], [""]], 2))
        cases.append(multi_case("bleu", "bleu/2refs/edge/" + name, [h], [[r], [h[::-1]]]))
    hyps, refs = [h for _, h, _ in edge], [r for _, _, r in edge]
    for metric_name, order in [("bleu", 0), ("chrf", 0), ("chrf", 2)]:
        cases.append(multi_case(metric_name, f"{metric_name}{'++' if order else ''}/2refs/edge/all-as-corpus",
                                hyps, [refs, hyps[::-1]], order))
    return {
        "about": "sacrebleu chrF++ (CHRF(word_order=2)) and BLEU, chrF and chrF++ against several "
        "reference streams, corpus and sentence level, with signatures and the CLI's text line "
        "(-f text -w 2); made by scripts/make-metric-fixtures.py. Texts from NTREX-128 "
        "(Microsoft), CC BY-SA 4.0, and synthetic perturbations of them.",
        "texts": texts,
        "cases": cases,
    }


# --------------------------------------------------------------------------
# ROUGE
# --------------------------------------------------------------------------

ROUGE_TYPES = ["rouge1", "rouge2", "rougeL"]

# (name, hyp, ref) beyond the chrF ones: what rouge-score's tokenizer and LCS decide.
ROUGE_EDGE_CASES = [
    ("punctuation-only", "!!! ... ,,, ?", "?!"),
    ("one-word-same", "cat", "cat"),
    ("one-word-different", "cat", "dog"),
    ("one-vs-two-words", "cat", "the cat"),
    ("numbers", "It cost $1,000.50 in 2020-2021.", "It cost 1000.50 in 2020"),
    ("repeated-words", "the the the the the the the", "the cat is on the mat"),
    ("repeated-bigrams", "on the on the on the", "on the mat on the rug"),
    ("lcs-not-contiguous", "a x b y c z d", "a b c d"),
    ("lcs-reversed", "d c b a", "a b c d"),
    ("case-and-punctuation", "DON'T Stop-Believing!!", "don t stop believing"),
    ("underscores", "snake_case and CamelCase", "snake case and camelcase"),
    ("dotted-i-and-kelvin", "\u0130stanbul at 300 \u212a", "istanbul at 300 k"),
    ("accents-drop-letters", "caf\u00e9 na\u00efve r\u00e9sum\u00e9", "caf na ve r sum"),
    ("fullwidth", "\uff28\uff45\uff4c\uff4c\uff4f world", "hello world"),
    ("arabic-vs-english", "قال الرئيس", "the president said"),
    ("mixed-arabic-english", "قال Biden اليوم 2024", "Biden said today 2024"),
    ("arabic-indic-digits", "\u0662\u0660\u0662\u0664 and 2024", "2024 and 2024"),
    ("long-vs-short", " ".join([FOX] * 6), "The fox."),
    ("short-vs-long", "The fox.", " ".join([FOX] * 6)),
    ("multi-line", "first line\nsecond line", "first line second line"),
]


def rouge_pair(scorer, hyp, ref):
    from rouge_score import rouge_scorer as rs

    got = scorer.score(ref, hyp)
    t = scorer._tokenizer.tokenize(ref)
    p = scorer._tokenizer.tokenize(hyp)
    out = {}
    for kind in ROUGE_TYPES:
        s = got[kind]
        if kind == "rougeL":
            lcs = rs._lcs_table(t, p)[-1][-1] if t and p else 0
            counts = [lcs, len(p), len(t)]
        else:
            n = int(kind[5:])
            tn, pn = rs._create_ngrams(t, n), rs._create_ngrams(p, n)
            inter = sum(min(tn[g], pn[g]) for g in tn)
            counts = [inter, sum(pn.values()), sum(tn.values())]
            # The recorded counts must be the ones behind the public score.
            assert inter / max(counts[1], 1) == s.precision, (hyp, ref, kind)
            assert inter / max(counts[2], 1) == s.recall, (hyp, ref, kind)
        if kind == "rougeL" and t and p:
            assert counts[0] / counts[1] == s.precision and counts[0] / counts[2] == s.recall
        out[kind] = (float(s.precision), float(s.recall), float(s.fmeasure), counts)
    return out


def rouge_record(p, r, f):
    return {"f": f, "bits": [bits(p), bits(r), bits(f)]}


def rouge_sentence_record(pair):
    """[p, r, f] bits and [matched, hyp, ref] counts of rouge1, rouge2, rougeL, flattened."""
    return {
        "bits": [bits(pair[k][i]) for k in ROUGE_TYPES for i in range(3)],
        "counts": [c for k in ROUGE_TYPES for c in pair[k][3]],
    }


def rouge_case(scorer, name, hyps, refs, named=None):
    pairs = [rouge_pair(scorer, h, r) for h, r in zip(hyps, refs)]
    corpus = {}
    for kind in ROUGE_TYPES:
        # Explicitly left to right, whatever Python's sum() does in other versions.
        sums = [0.0, 0.0, 0.0]
        for pair in pairs:
            for i in range(3):
                sums[i] += pair[kind][i]
        corpus[kind] = rouge_record(*(x / len(pairs) for x in sums))
    named = named or {}
    return {
        "name": name,
        "hyps": named.get(tuple(hyps), hyps),
        "refs": named.get(tuple(refs), refs),
        "corpus": corpus,
        "sentences": [rouge_sentence_record(pair) for pair in pairs],
    }


def make_rouge(en, ar, texts, named):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=False)
    tok = scorer._tokenizer.tokenize
    cases = []
    # Lowercasing and punctuation changes are no-ops under rouge-score's tokenizer.
    skip = {"en/lowercased", "en/punctuation-changed"}
    for name, hyps in english_sets(en).items():
        if name not in skip:
            cases.append(rouge_case(scorer, name, hyps, en, named))
    # Arabic has no tokens for rouge-score; a few cases pin that down.
    k = 5
    cases.append(rouge_case(scorer, "ar/identical", ar[:k], ar[:k]))
    cases.append(rouge_case(scorer, "ar/english-hyps", en[:k], ar[:k]))
    cases.append(rouge_case(scorer, "en/arabic-hyps", ar[:k], en[:k]))
    edge = EDGE_CASES + ROUGE_EDGE_CASES
    for name, h, r in edge:
        cases.append(rouge_case(scorer, "edge/" + name, [h], [r]))
    hyps, refs = [h for _, h, _ in edge], [r for _, _, r in edge]
    cases.append(rouge_case(scorer, "edge/all-as-corpus", hyps, refs))

    strings = list(dict.fromkeys(hyps + refs))
    # Every single character that yields a token: A-Z, a-z, 0-9 and the two non-ASCII
    # characters whose str.lower() contains an ASCII letter.
    single = [[c, tok(chr(c))] for c in range(sys.maxunicode + 1) if tok(chr(c))]
    return {
        "about": "rouge-score RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=False)"
        ".score(ref, hyp) per pair, [precision, recall, fmeasure] bits and [matched, hyp, ref] "
        "counts; corpus = left-to-right mean of the per-pair values. Made by "
        "scripts/make-metric-fixtures.py. Texts from NTREX-128 (Microsoft), CC BY-SA 4.0, and "
        "synthetic perturbations of them.",
        "texts": texts,
        "tokenize": [[s, tok(s)] for s in strings],
        "tokenized_texts": {k: [tok(line) for line in v] for k, v in texts.items()},
        "single_char_tokens": single,
        "cases": cases,
    }


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------


def write_json(name, out, record_key):
    """Writes one fixture; `record_key` matches the first key of the objects kept on one line."""
    path = OUT_DIR / name
    # One line per list of numbers and per score record keeps the file small and diffable.
    fixture_common.write_text(path, fixture_common.dumps_records(out, record_key))
    cases = out["cases"]
    n_sent = sum(len(c["sentences"]) for c in cases)
    print(f"wrote {path}: {len(cases)} corpora, {n_sent} sentences, {path.stat().st_size} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared/data", help="folder with ntrex/")
    ap.add_argument("--any-version", action="store_true", help="run with unpinned versions")
    args = ap.parse_args()
    have = fixture_common.check_versions(PINNED, args.any_version, python=PINNED_PYTHON)

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

    versions = lambda *keys: {k: have[k] for k in keys + ("python",)}
    chrf = {
        "about": "sacrebleu default chrF (chrF2, char order 6, word order 0, whitespace removed, "
        "effective order); made by scripts/make-metric-fixtures.py. Texts from NTREX-128 "
        "(Microsoft), CC BY-SA 4.0, and synthetic perturbations of them.",
        "versions": versions("sacrebleu"),
        "python_whitespace": [ord(c) for c in PY_WHITESPACE],
        "texts": texts,
        "cases": cases,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_json("chrf.json", chrf, "score")

    bleu = make_bleu(en, ar, texts, named)
    write_json("bleu.json", dict(versions=versions("sacrebleu"), **bleu), "(?:score|bits)")
    multiref = make_multiref(en, ar, texts, named)
    write_json("multiref.json", dict(versions=versions("sacrebleu"), **multiref), "bits")
    rouge = make_rouge(en, ar, texts, named)
    write_json("rouge.json", dict(versions=versions("rouge-score"), **rouge), "(?:f|bits)")


if __name__ == "__main__":
    main()
