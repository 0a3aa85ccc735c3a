#!/usr/bin/env python3
"""The fixture pipeline of the encoder-decoder models: the committed Marian / BART / NLLB (M2M100) /
T5 / mBART-50 fixtures for tarjama's parity tests, one family after another. Marian's part is
scripts/fixtures_marian.py (its own tokenizer and vocab, reference layout, epoch-based training
and generation cases); the others are here. What both parts share is written once in
scripts/fixture_common.py: the data, SentencePiece training, collation, length-bucketed batches,
the training step and eval loss, the table of generation cases, gen_params / gen_kwargs, the
batched generation, the batched-vs-unbatched check, the smallest top-2 logit gap, the forward
tensors, decode records and the meta.json update.

Run from the repository root:

    /work/venv/fx/bin/python scripts/make-seq2seq-fixtures.py [--shared ../shared/data]
        [--stage all|tokenizer|model|refs] [--only marian,bart,nllb,t5,t5v11,mbart]

Pinned versions (fixture_common.SEQ2SEQ_PINNED, and scripts/requirements-fixtures.txt; the script
refuses to run with other versions unless --any-version is given):

    python        3.11.7
    torch         2.15.0 (CPU only; 1 thread by default, see --threads)
    transformers  5.24.0
    tokenizers    0.23.3
    sentencepiece 0.2.3
    sacremoses    0.2.0 (Marian only)
    safetensors   0.8.0
    numpy         2.4.6
    protobuf      7.36.2

Outputs (everything is rebuilt from ../shared/data; nothing is downloaded):

    tests/fixtures/marian-tiny/, marian-tiny-ref/   see scripts/fixtures_marian.py
    tests/fixtures/bart-tiny/     BartForConditionalGeneration, byte-level BPE (BartTokenizer),
                                  English paragraph -> its first sentence ("lead-1 summary")
    tests/fixtures/nllb-tiny/     M2M100ForConditionalGeneration shaped like NLLB-200
                                  (NllbTokenizer, SentencePiece BPE + language codes), ar -> en
    tests/fixtures/t5-tiny/       T5ForConditionalGeneration v1.0 (relu, tied embeddings,
                                  task_specific_params), "summarize: " and
                                  "translate Arabic to English: " tasks mixed
    tests/fixtures/t5v11-tiny/    T5 v1.1 / flan-T5 shaped (gated-gelu, untied lm_head), ar -> en
    tests/fixtures/mbart-tiny/    MBartForConditionalGeneration shaped like
                                  facebook/mbart-large-50-many-to-many-mmt (MBart50Tokenizer,
                                  SentencePiece unigram + the 52 mBART-50 language codes), ar -> en
        each: config.json generation_config.json model.safetensors tokenizer.json
              tokenizer_config.json
    tests/fixtures/seq2seq-ref/<bart-tiny|nllb-tiny|t5-tiny|t5v11-tiny|mbart-tiny>/
        tokenizer.json forward.safetensors generate.json meta.json
        (layout in tests/fixtures/seq2seq-ref/README.md, which this script does not write)
    tests/fixtures/seq2seq-ref/t5-tiny/spiece.model, spiece.json (tokenizer stage)
        the t5 SentencePiece model, and T5Tokenizer built from it alone (no tokenizer.json,
        as mT5 repos like csebuetnlp/mT5_multilingual_XLSum load) with extra_ids 100 and 0

Stages: `tokenizer` (SentencePiece / BPE training, tokenizer.json), `model`
(training, save), `refs` (reference outputs). `all` runs the three in order;
`--only` restricts every stage to some families. Marian runs first, all its
stages from its own seed as when it had a script of its own (about 11
minutes), then the other families stage by stage from this script's seed
(about 6-8 minutes in all, mbart alone 2), on one thread of a busy 2-core
machine.

Things worth knowing about transformers 5.24 (checked in its source):
  * There is one tokenizer implementation per model (the "fast" one). Classes
    with their own __init__ (NllbTokenizer, T5Tokenizer, MBart50Tokenizer,
    RobertaTokenizer = BartTokenizer) take only the vocab / merges / precompiled charsmap from
    tokenizer.json and rebuild normalizer, pre-tokenizer, decoder and
    post-processor themselves. The tokenizer.json files written here come from
    save_pretrained() of those rebuilt tokenizers, and the refs stage checks
    that `tokenizers.Tokenizer.from_file(tokenizer.json)` gives the same ids as
    transformers for every encode case (for NLLB with the source language the
    file was saved with, arb_Arab).
  * NllbTokenizer (legacy_behaviour=False): source = [src_lang] tokens </s>,
    target (text_target=) = [tgt_lang] tokens </s>. Generation forces the
    target language code as the first generated token (forced_bos_token_id)
    after decoder_start = </s>.
  * MBart50Tokenizer always builds a Unigram model (mBART's "sentencepiece.bpe.model"
    is a unigram spm): <s> <pad> </s> <unk>, the spm pieces from id 4 on (spm id + 1),
    all 52 mBART-50 language codes, <mask>. Source = [src_lang] tokens </s>, target
    = [tgt_lang] tokens </s>; normalizer Precompiled + Replace(" {2,}", " "),
    pre-tokenizer Metaspace only (no WhitespaceSplit, unlike T5: a trailing space
    gives a "▁" token). MBart positions are learned (offset 2) and count from 0 on
    every row, whatever the padding (unlike M2M100).
  * T5Tokenizer from spiece.model alone (no tokenizer.json): the spm pieces keep
    their ids, <extra_id_N> are appended to the Unigram vocab counted down
    (<extra_id_0> last) and registered as special added tokens; extra_ids comes
    from tokenizer_config.json (T5Tokenizer's default 100, mT5's files say 0).
    AutoTokenizer needs tokenizer_class from a tokenizer_config.json for that.
  * T5Config forces tie_word_embeddings=True and derives scale_decoder_outputs
    from the tie_word_embeddings value in config.json: v1.1 checkpoints
    (tie_word_embeddings false, separate lm_head.weight) are NOT rescaled by
    d_model**-0.5 before the LM head, v1.0 checkpoints are. A freshly built
    v1.1 model is tied, so the script unties lm_head before training and
    writes config.json the way the hub's flan-t5 files look.
  * There are no text2text pipelines in transformers 5.x. "The way the pipeline
    calls the tokenizer" is: T5: tok(prefix + text) with the prefix from
    config.task_specific_params; NLLB: tok(text) with src_lang set, and
    generate(..., forced_bos_token_id=id(tgt_lang)).
  * Beam search fills finished rows with `pad_token_id or eos_token_id`: T5's
    pad id 0 is falsy, so T5 beam rows are filled with </s> (greedy rows with
    pad). Compare generated ids up to the first </s>.
  * M2M100 positions come from the ids: padding_idx + cumsum(id != pad), and
    pad positions get the all-zero row padding_idx of the sinusoid table, so
    encoder outputs at pad positions differ from a plain arange.
  * The SentencePiece models use a small custom normalization table
    (norm_rules()) instead of nmt_nfkc, whose precompiled charsmap would add
    320 kB to every tokenizer.json; the files still have a Precompiled
    normalizer.
Determinism: spm / BPE training is single-threaded with fixed seeds; torch is
seeded and uses deterministic algorithms. Reruns on the same machine give
identical files.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_common  # noqa: E402  (scripts/fixture_common.py)
import fixtures_marian  # noqa: E402  (the Marian family)

# the tokenizers BPE trainer and rayon: one thread, so that merges are deterministic
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PINNED = fixture_common.seq2seq_pinned(sacremoses=False)

SEED = 20261130

REPO = Path.cwd()
FIX = REPO / "tests/fixtures"
REF = FIX / "seq2seq-ref"
FAMILIES = ["marian", "bart", "nllb", "t5", "t5v11", "mbart"]
DIRNAME = {"bart": "bart-tiny", "nllb": "nllb-tiny", "t5": "t5-tiny", "t5v11": "t5v11-tiny", "mbart": "mbart-tiny"}

# model shapes (all families)
D_MODEL = 32
HEADS = 4
FFN = 64
LAYERS = 2
VOCAB = 1000  # SentencePiece / BPE vocab before the added special tokens

# NLLB: a subset of FAIRSEQ_LANGUAGE_CODES, in that list's order
NLLB_LANGS = ["arb_Arab", "deu_Latn", "eng_Latn", "fra_Latn", "rus_Cyrl", "spa_Latn", "zho_Hans"]
# mBART-50: MBart50Tokenizer always appends all 52 FAIRSEQ_LANGUAGE_CODES of mBART-50 after the
# SentencePiece pieces (then <mask>); these are the ones the refs use
MBART_SRC, MBART_TGT = "ar_AR", "en_XX"
MBART_LANGS_USED = ["ar_AR", "de_DE", "en_XX", "fr_XX"]
T5_EXTRA_IDS = 8
T5_MODEL_VOCAB = 1024  # > len(tokenizer) = 1008, like t5's 32128 vs 32100
T5_PREFIX_SUM = "summarize: "
T5_PREFIX_TR = "translate Arabic to English: "


def out_model(fam):
    return FIX / DIRNAME[fam]


def out_ref(fam):
    return REF / DIRNAME[fam]


# --------------------------------------------------------------------------
# helpers (what the Marian family shares with these is in scripts/fixture_common.py)
# --------------------------------------------------------------------------


def versions():
    return fixture_common.versions(PINNED)


write_json = fixture_common.write_json
clean_dir = fixture_common.clean_dir
collate = fixture_common.collate
trim = fixture_common.trim


def rewrite_json(path, fn):
    """Load a JSON file written by save_pretrained, edit it, write it back (indent 2, sorted as it was)."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    d = fn(d) or d
    Path(path).write_text(json.dumps(d, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def load_tokenizer(fam):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(out_model(fam)))



# --------------------------------------------------------------------------
# stage 1: tokenizers
# --------------------------------------------------------------------------

# A small SentencePiece normalization table (a handful of NFKC mappings and
# space variants) instead of nmt_nfkc: nmt_nfkc's precompiled charsmap is
# 320 kB of base64 in every tokenizer.json. The tokenizer.json files still
# carry a `Precompiled` normalizer, built from these rules.
def norm_rules():
    rules = []
    for cp in [0x00A0, 0x1680, 0x202F, 0x205F, 0x3000] + list(range(0x2000, 0x200B)):
        rules.append(([cp], [0x20]))
    for cp in range(0xFF01, 0xFF5F):  # fullwidth ASCII
        rules.append(([cp], [cp - 0xFF01 + 0x21]))
    rules += [
        ([0xFB00], [0x66, 0x66]),  # ﬀ
        ([0xFB01], [0x66, 0x69]),  # ﬁ
        ([0xFB02], [0x66, 0x6C]),  # ﬂ
        ([0x00B2], [0x32]),
        ([0x00B3], [0x33]),
        ([0x00B9], [0x31]),
        ([0x00BD], [0x31, 0x2044, 0x32]),
        ([0x2026], [0x2E, 0x2E, 0x2E]),
        ([0x2122], [0x54, 0x4D]),
        ([0xFEFB], [0x0644, 0x0627]),  # Arabic presentation forms
        ([0xFEFC], [0x0644, 0x0627]),
        ([0xFEF5], [0x0644, 0x0622]),
        ([0xFE8D], [0x0627]),
        ([0xFE8E], [0x0627]),
        ([0xFEDF], [0x0644]),
        ([0xFEE0], [0x0644]),
        ([0xFDF2], [0x0627, 0x0644, 0x0644, 0x0647]),
        ([0x0041, 0x030A], [0x00C5]),  # a composition (NFC-like)
    ]
    return rules


def write_rules(path):
    with open(path, "w", encoding="utf-8") as f:
        for src, dst in norm_rules():
            f.write(" ".join("%X" % c for c in src) + "\t" + " ".join("%X" % c for c in dst) + "\n")


def train_spm(input_path, prefix, model_type, rules, **ids):
    """A SentencePiece model of VOCAB pieces on NTREX ar + en, normalized by the `rules` TSV."""
    return fixture_common.train_spm(input_path, prefix, SEED, "ntrex/ar+en", VOCAB, model_type, 0.9995, rules, **ids)


def tokenizer_bart(data, td):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import BartTokenizer

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(data.en, trainer)
    j = json.loads(tk.to_str())
    vocab = dict(j["model"]["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in j["model"]["merges"]]
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    vocab["<mask>"] = len(vocab)  # last, like facebook/bart-*
    tok = BartTokenizer(vocab=vocab, merges=merges)
    d = out_model("bart")
    clean_dir(d, ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"])
    tok.save_pretrained(str(d))
    rewrite_json(d / "tokenizer_config.json", lambda c: c.update(tokenizer_class="BartTokenizer", model_max_length=1024))


def tokenizer_nllb(data, td):
    from transformers import NllbTokenizer

    both = td / "ar+en.txt"
    both.write_text("\n".join(data.ar + data.en) + "\n", encoding="utf-8")
    rules = td / "rules.tsv"
    write_rules(rules)
    sd = td / "nllb-spm"
    sd.mkdir()
    # spm's own layout (<unk>=0 <s>=1 </s>=2); NllbTokenizer puts <s> <pad> </s> <unk> first
    m = train_spm(both, td / "spm-bpe", "bpe", rules)
    shutil.copy(m, sd / "sentencepiece.bpe.model")
    tok = NllbTokenizer.from_pretrained(
        str(sd), src_lang="arb_Arab", tgt_lang="eng_Latn", additional_special_tokens=NLLB_LANGS
    )
    d = out_model("nllb")
    clean_dir(d, ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model"])
    tok.save_pretrained(str(d))
    # NllbTokenizer adds <mask> before the language codes; facebook/nllb-200-* has the codes
    # right after the SentencePiece pieces and <mask> last. Renumber the added tokens that way,
    # then let transformers load and save the file once more.
    j = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    base = len(j["model"]["vocab"])
    new_ids = {c: base + k for k, c in enumerate(NLLB_LANGS + ["<mask>"])}
    for a in j["added_tokens"]:
        a["id"] = new_ids.get(a["content"], a["id"])
    j["added_tokens"].sort(key=lambda a: a["id"])
    for k, v in j["post_processor"]["special_tokens"].items():
        if k in new_ids:
            v["ids"] = [new_ids[k]]
    (d / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    tok = NllbTokenizer.from_pretrained(str(d))
    assert {c: tok.convert_tokens_to_ids(c) for c in new_ids} == new_ids
    clean_dir(d, ["tokenizer.json", "tokenizer_config.json"])
    tok.save_pretrained(str(d))
    rewrite_json(d / "tokenizer_config.json", lambda c: c.update(model_max_length=1024))


def tokenizer_mbart(data, td):
    from transformers import MBart50Tokenizer

    both = td / "ar+en.txt"
    if not both.exists():
        both.write_text("\n".join(data.ar + data.en) + "\n", encoding="utf-8")
    rules = td / "rules.tsv"
    write_rules(rules)
    sd = td / "mbart-spm"
    sd.mkdir()
    # mBART's (= XLM-R's) sentencepiece.bpe.model is a unigram model despite its name, with spm's
    # default layout <unk>=0 <s>=1 </s>=2; MBart50Tokenizer always builds a Unigram model from it.
    m = train_spm(both, td / "spm-mbart", "unigram", rules)
    shutil.copy(m, sd / "sentencepiece.bpe.model")
    tok = MBart50Tokenizer.from_pretrained(str(sd), src_lang=MBART_SRC, tgt_lang=MBART_TGT)
    d = out_model("mbart")
    clean_dir(d, ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model"])
    tok.save_pretrained(str(d))

    def conf(c):
        c.update(model_max_length=1024)
        # the spm's <unk> id, passed through by the spm extraction; MBart50Tokenizer ignores it (<unk> = 3)
        c.pop("unk_id", None)

    rewrite_json(d / "tokenizer_config.json", conf)
    # fairseq layout: <s> <pad> </s> <unk>, the spm pieces shifted by one, language codes, <mask>
    j = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = [v[0] for v in j["model"]["vocab"]]
    assert vocab[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and vocab[-1] == "<mask>", vocab[:4]
    assert vocab[VOCAB + 1 : -1] == list(tok.lang_code_to_id), vocab[VOCAB + 1 :]
    assert all(tok.lang_code_to_id[c] == VOCAB + 1 + k for k, c in enumerate(tok.lang_code_to_id))


def tokenizer_t5(data, td):
    from transformers import T5Tokenizer

    both = td / "ar+en.txt"
    if not both.exists():
        both.write_text("\n".join(data.ar + data.en) + "\n", encoding="utf-8")
    rules = td / "rules.tsv"
    write_rules(rules)
    sd = td / "t5-spm"
    sd.mkdir()
    m = train_spm(both, td / "spm-uni", "unigram", rules, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    shutil.copy(m, sd / "spiece.model")
    # kept for the spiece.model-only references (write_spiece_refs)
    out_ref("t5").mkdir(parents=True, exist_ok=True)
    shutil.copy(m, out_ref("t5") / "spiece.model")
    tok = T5Tokenizer.from_pretrained(str(sd), extra_ids=T5_EXTRA_IDS)
    for fam in ("t5", "t5v11"):
        d = out_model(fam)
        clean_dir(d, ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model"])
        tok.save_pretrained(str(d))
        rewrite_json(d / "tokenizer_config.json", lambda c: c.update(model_max_length=512))


# mT5-style repos (e.g. csebuetnlp/mT5_multilingual_XLSum) ship spiece.model, tokenizer_config.json
# and special_tokens_map.json, no tokenizer.json: transformers builds the tokenizer from the spm.
SPIECE_XLSUM_CONFIG = {
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "extra_ids": 0,
    "additional_special_tokens": None,
    "sp_model_kwargs": {},
    "tokenizer_class": "T5Tokenizer",
}
SPIECE_XLSUM_SPECIAL = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


def spiece_texts(data):
    texts = tok_texts("t5", data) + tok_special_texts("t5")
    texts += [
        "a  b   c    d",
        "   leading spaces",
        "trailing spaces   ",
        "  both  ",
        "\tx\ny",
        "a\t\tb\n\nc\r\nd",
        " \t \n ",
        "\u3000x\u3000\u3000y",
        "Ｈｅｌｌｏ，ｗｏｒｌｄ！ ＡＢＣ",
        "ｱｲｳ ①② Ⅻ ﬃ ㎏",  # NFKC-relevant, but not in the fixture spm's rules
        "\ufefb\ufefc\ufef5 \ufe8d\ufe8e \ufedf\ufee0 \ufdf2",  # Arabic presentation forms in the rules
        "\ufee1\ufee4\ufee2 \ufe91\ufe92",  # Arabic presentation forms not in the rules
        "ﻻ إله إلا ﷲ",
        "<extra_id_99> <extra_id_100> <extra_id_8>",
        "x</s>y <pad><unk>",
        "▁ ▁x",
    ]
    out = []
    for t in texts:
        if t not in out:
            out.append(t)
    return out


def write_spiece_refs(data):
    """tests/fixtures/seq2seq-ref/t5-tiny/spiece.json: T5Tokenizer built from spiece.model alone
    (no tokenizer.json), with T5's default extra_ids=100 and with mT5's extra_ids=0."""
    from transformers import AutoTokenizer, T5Tokenizer

    spm_path = out_ref("t5") / "spiece.model"
    committed = load_tokenizer("t5")  # tests/fixtures/t5-tiny (extra_ids=8, from tokenizer.json)
    texts = spiece_texts(data)
    settings = {}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        only = td / "only-spiece"
        only.mkdir()
        shutil.copy(spm_path, only / "spiece.model")
        xlsum = td / "xlsum-like"
        xlsum.mkdir()
        shutil.copy(spm_path, xlsum / "spiece.model")
        (xlsum / "tokenizer_config.json").write_text(json.dumps(SPIECE_XLSUM_CONFIG), encoding="utf-8")
        (xlsum / "special_tokens_map.json").write_text(json.dumps(SPIECE_XLSUM_SPECIAL), encoding="utf-8")
        auto_only_error = None
        try:
            AutoTokenizer.from_pretrained(str(only))
        except Exception as e:  # no config: AutoTokenizer cannot tell the class
            auto_only_error = "%s: %s" % (type(e).__name__, str(e).splitlines()[0])
        plain = td / "t5-class-only"
        plain.mkdir()
        shutil.copy(spm_path, plain / "spiece.model")
        (plain / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer"}), encoding="utf-8")

        runs = {
            "extra_ids_100": (
                "T5Tokenizer.from_pretrained(dir) with dir = {spiece.model} only (extra_ids defaults to 100)",
                {},
                lambda: T5Tokenizer.from_pretrained(str(only)),
                # the same through AutoTokenizer, which needs tokenizer_class from a tokenizer_config.json
                lambda: AutoTokenizer.from_pretrained(str(plain)),
            ),
            "extra_ids_0": (
                "AutoTokenizer.from_pretrained(dir) with dir = {spiece.model, tokenizer_config.json, "
                "special_tokens_map.json} as in csebuetnlp/mT5_multilingual_XLSum (files below)",
                {"tokenizer_config.json": SPIECE_XLSUM_CONFIG, "special_tokens_map.json": SPIECE_XLSUM_SPECIAL},
                lambda: AutoTokenizer.from_pretrained(str(xlsum)),
                lambda: T5Tokenizer.from_pretrained(str(only), extra_ids=0),
            ),
        }
        for name, (how, files, load, load_alt) in runs.items():
            tok = load()
            alt = load_alt()
            backend = json.loads(tok.backend_tokenizer.to_str())
            assert backend == json.loads(alt.backend_tokenizer.to_str()), name
            n = len(tok)
            encode = []
            for t in texts:
                ids = tok(t)["input_ids"]
                assert alt(t)["input_ids"] == ids, (name, t)
                encode.append({"text": t, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids)})
            # compare with the committed tokenizer (tests/fixtures/t5-tiny/tokenizer.json, extra_ids=8)
            differ = [e["text"] for e in encode if committed(e["text"])["input_ids"] != e["ids"]]
            # only the texts with sentinels: numbered from the end of the vocab, they move with extra_ids
            have = set(range(T5_EXTRA_IDS)) | set(range(n - VOCAB)) if n - VOCAB != T5_EXTRA_IDS else set()
            assert differ == [e["text"] for e in encode if any("<extra_id_%d>" % i in e["text"] for i in have)], differ
            a3 = tok(data.ar[2])["input_ids"]
            e5 = tok(data.en[4])["input_ids"]
            specials = sorted(set(tok.all_special_ids))
            rng = random.Random(SEED)
            seqs = [
                e5,
                a3,
                [],
                [1],
                specials[:3] + specials[-3:],
                [0] + e5,
                [0, 0] + e5[:3] + [2] + e5[3:] + [1, 0, 0],
                e5[:2] + [n - 1, n - 2] + e5[2:],
                e5[:3] + [n, n + 5] + e5[3:],  # ids past the tokenizer (model-only rows)
                [3, 3, 3],
                tok("a  b   c    d")["input_ids"],
                tok("   leading spaces")["input_ids"],
                sorted(rng.sample(range(3, VOCAB), 12)),
                rng.sample(range(3, VOCAB), 12),
            ]
            decode = [fixture_common.decode_record(tok, ids) for ids in seqs]
            spm_size = VOCAB  # pieces in spiece.model
            settings[name] = {
                "load": how,
                "files": files,
                "class": type(tok).__name__,
                "tokenizer_len": n,
                "ids": {
                    "pad": tok.pad_token_id,
                    "eos": tok.eos_token_id,
                    "unk": tok.unk_token_id,
                    "bos": tok.bos_token_id,
                    "extra_id_0": tok.convert_tokens_to_ids("<extra_id_0>") if n > VOCAB else None,
                    "extra_id_last": tok.convert_tokens_to_ids("<extra_id_%d>" % (n - VOCAB - 1)) if n > VOCAB else None,
                },
                "all_special_tokens": tok.all_special_tokens,
                "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
                "backend": {
                    "normalizer": backend["normalizer"],
                    "pre_tokenizer": backend["pre_tokenizer"],
                    "post_processor": backend["post_processor"],
                    "decoder": backend["decoder"],
                    "model": {
                        "type": backend["model"]["type"],
                        "unk_id": backend["model"]["unk_id"],
                        "byte_fallback": backend["model"]["byte_fallback"],
                        "vocab_len": len(backend["model"]["vocab"]),
                        "vocab_first": backend["model"]["vocab"][:spm_size],
                        "vocab_first_n_are_the_spm_pieces": spm_size,
                        "vocab_after_spm_pieces": backend["model"]["vocab"][spm_size:],
                    },
                    "added_tokens": backend["added_tokens"],
                },
                "encode_differs_from_committed_tokenizer_json": differ,
                "encode": encode,
                "decode": decode,
            }
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    pieces = [[sp.id_to_piece(i), sp.get_score(i)] for i in range(sp.get_piece_size())]
    for name, s in settings.items():
        m = s["backend"]["model"]
        assert m.pop("vocab_first") == pieces, name  # the spm's pieces, scores and ids unchanged
    # the spm is the one the committed tokenizer.json was made from: same pieces, scores and charsmap
    cj = json.loads((out_model("t5") / "tokenizer.json").read_text(encoding="utf-8"))
    assert cj["model"]["vocab"][:VOCAB] == pieces
    assert cj["normalizer"] == settings["extra_ids_0"]["backend"]["normalizer"]
    write_json(
        out_ref("t5") / "spiece.json",
        {
            "about": "T5Tokenizer built by transformers %s from spiece.model alone (the spm next to this file, the "
            "same one tests/fixtures/t5-tiny/tokenizer.json was made from; 1000 pieces, <pad>=0 </s>=1 <unk>=2, "
            "unigram), the way hub repos without tokenizer.json (csebuetnlp/mT5_multilingual_XLSum) load. "
            "AutoTokenizer on a dir holding only spiece.model fails (%s); it needs tokenizer_class from "
            "tokenizer_config.json. Two settings: T5's default extra_ids=100 and mT5's extra_ids=0. For each: "
            "load (how it was built; the other listed way gives the same backend and ids, checked), files (the "
            "json files next to spiece.model), backend (normalizer / pre_tokenizer / post_processor / decoder "
            "exactly as tok.backend_tokenizer.to_str() has them, the model's type, unk_id, byte_fallback, vocab "
            "size and the entries after the spm's pieces, and added_tokens), encode [{text, ids = "
            "tok(text)['input_ids'], tokens}], decode [{ids, text = tok.decode(ids, skip_special_tokens=True), "
            "text_keep_special = skip_special_tokens=False}] (ids >= tokenizer_len are dropped by transformers), "
            "encode_differs_from_committed_tokenizer_json: the texts whose ids differ from "
            "tests/fixtures/t5-tiny/tokenizer.json (extra_ids=8) through T5Tokenizer."
            % (versions()["transformers"], auto_only_error),
            "spiece_model": {"file": "spiece.model", "pieces": sp.get_piece_size(),
                             "sha256": __import__("hashlib").sha256(spm_path.read_bytes()).hexdigest()},
            "settings": settings,
        },
    )
    for name, s in settings.items():
        print("t5 spiece.json %s: %s, %d tokens, %d encode cases, differ from tokenizer.json: %r"
              % (name, s["class"], s["tokenizer_len"], len(s["encode"]), s["encode_differs_from_committed_tokenizer_json"]))
    return settings


def stage_tokenizer(data, fams):
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        if "bart" in fams:
            tokenizer_bart(data, td)
        if "nllb" in fams:
            tokenizer_nllb(data, td)
        if "t5" in fams or "t5v11" in fams:
            tokenizer_t5(data, td)
        if "mbart" in fams:
            tokenizer_mbart(data, td)
    for fam in fams:
        tok = load_tokenizer(fam)
        print("%s tokenizer: %s, %d tokens" % (fam, type(tok).__name__, len(tok)))
    if "t5" in fams or "t5v11" in fams:
        write_spiece_refs(data)


# --------------------------------------------------------------------------
# stage 2: models
# --------------------------------------------------------------------------

BATCH = 32
WARMUP = 100
LR = 5e-3
TRAIN_DROPOUT = 0.0
STEPS = {"bart": 500, "nllb": 500, "t5": 600, "t5v11": 500, "mbart": 700}
MAX_SRC = {"bart": 80, "nllb": 48, "t5": 72, "t5v11": 56, "mbart": 48}
MAX_TGT = {"bart": 28, "nllb": 28, "t5": 28, "t5v11": 28, "mbart": 28}
N_TRAIN = {k: 128 for k in STEPS}  # training examples (the first of each kind, after the length filter)


class Task:
    """Training / evaluation examples of one family, tokenized the way its refs use them."""

    def __init__(self, fam, data, tok):
        self.fam = fam
        self.tok = tok
        pairs = []  # (kind, ntrex line index, prefix, raw source text, target text)
        if fam in ("bart", "t5"):
            for i, para, first in data.paragraphs():
                pairs.append(("sum", i, T5_PREFIX_SUM if fam == "t5" else "", para, first))
        if fam in ("nllb", "t5", "t5v11", "mbart"):
            for i in range(len(data.ar)):
                pairs.append(("tr", i, T5_PREFIX_TR if fam.startswith("t5") else "", data.ar[i], data.en[i]))
        self.examples = []  # (kind, prefix + raw source, target, source ids, target ids, line, raw)
        self.rejected = []
        self.unused = []
        for kind, line, prefix, raw, t in pairs:
            src = tok(prefix + raw)["input_ids"]
            tgt = tok(text_target=t)["input_ids"]
            e = (kind, prefix + raw, t, src, tgt, line, raw)
            if len(src) <= MAX_SRC[fam] and len(tgt) <= MAX_TGT[fam]:
                self.examples.append(e)
            else:
                self.rejected.append(e)
        if N_TRAIN.get(fam):
            # a small set the tiny model can nearly learn by heart in a few hundred steps:
            # confident, varied outputs that end with </s>
            by_kind = {}
            for e in self.examples:
                by_kind.setdefault(e[0], []).append(e)
            n = N_TRAIN[fam] // len(by_kind)
            self.examples = [e for k in sorted(by_kind) for e in by_kind[k][:n]]
            self.unused = [e for k in sorted(by_kind) for e in by_kind[k][n:]]
        kinds = {}
        for e in self.examples:
            kinds[e[0]] = kinds.get(e[0], 0) + 1
        self.kinds = kinds


def make_model(fam, tok):
    import torch
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        GenerationConfig,
        M2M100Config,
        M2M100ForConditionalGeneration,
        MBartConfig,
        MBartForConditionalGeneration,
        T5Config,
        T5ForConditionalGeneration,
    )

    if fam == "bart":
        # shaped like facebook/bart-large-cnn (config.json + generation_config.json)
        cfg = BartConfig(
            vocab_size=len(tok),
            **fixture_common.bart_shape(D_MODEL, LAYERS, HEADS, FFN),
            max_position_embeddings=128,
            activation_function="gelu",
            scale_embedding=False,
            dropout=TRAIN_DROPOUT,
            attention_dropout=0.0,
            activation_dropout=0.0,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            forced_bos_token_id=0,
            forced_eos_token_id=2,
            tie_word_embeddings=True,
            architectures=["BartForConditionalGeneration"],
        )
        model = BartForConditionalGeneration(cfg)
        gc = GenerationConfig(
            bos_token_id=0,
            decoder_start_token_id=2,
            eos_token_id=2,
            pad_token_id=1,
            forced_bos_token_id=0,
            forced_eos_token_id=2,
            early_stopping=True,
            length_penalty=2.0,
            max_length=40,
            min_length=5,
            no_repeat_ngram_size=3,
            num_beams=4,
        )
        fixture_common.nonzero_final_logits_bias(model, SEED + 1)
    elif fam == "nllb":
        # shaped like facebook/nllb-200-distilled-600M: pre-norm, scaled embeddings,
        # sinusoidal positions (offset 2 = pad + 1), final layer norms, relu
        cfg = M2M100Config(
            vocab_size=len(tok) + 2,  # like NLLB-200: 256206 rows for 256204 tokens
            **fixture_common.bart_shape(D_MODEL, LAYERS, HEADS, FFN),
            max_position_embeddings=128,
            activation_function="relu",
            scale_embedding=True,
            dropout=TRAIN_DROPOUT,
            attention_dropout=TRAIN_DROPOUT,
            activation_dropout=0.0,
            encoder_layerdrop=0.0,
            decoder_layerdrop=0.0,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            tie_word_embeddings=True,
            architectures=["M2M100ForConditionalGeneration"],
        )
        model = M2M100ForConditionalGeneration(cfg)
        gc = GenerationConfig(
            bos_token_id=0, decoder_start_token_id=2, eos_token_id=2, pad_token_id=1, max_length=48
        )
    elif fam == "mbart":
        # shaped like facebook/mbart-large-50-many-to-many-mmt: pre-norm, layernorm_embedding, final
        # layer norms (MBart always has them), scaled embeddings, learned positions (offset 2), relu
        cfg = MBartConfig(
            vocab_size=len(tok),  # like mBART-50: 250054 rows = len(tokenizer)
            **fixture_common.bart_shape(D_MODEL, LAYERS, HEADS, FFN),
            max_position_embeddings=128,
            activation_function="relu",
            scale_embedding=True,
            dropout=TRAIN_DROPOUT,
            attention_dropout=0.0,
            activation_dropout=0.0,
            encoder_layerdrop=0.0,
            decoder_layerdrop=0.0,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
            forced_eos_token_id=2,
            tie_word_embeddings=True,
            architectures=["MBartForConditionalGeneration"],
        )
        model = MBartForConditionalGeneration(cfg)
        # the hub model's generation settings (max_length 200 scaled down); forced_bos_token_id
        # = en_XX is what a translation call passes (_build_translation_inputs), kept here
        gc = GenerationConfig(
            bos_token_id=0,
            decoder_start_token_id=2,
            eos_token_id=2,
            pad_token_id=1,
            forced_eos_token_id=2,
            forced_bos_token_id=tok.convert_tokens_to_ids(MBART_TGT),
            early_stopping=True,
            max_length=48,
            num_beams=5,
        )
        fixture_common.nonzero_final_logits_bias(model, SEED + 3)
    else:
        v11 = fam == "t5v11"
        tsp = {
            "summarization": {
                "early_stopping": True,
                "length_penalty": 2.0,
                "max_length": 40,
                "min_length": 8,
                "no_repeat_ngram_size": 3,
                "num_beams": 4,
                "prefix": T5_PREFIX_SUM,
            },
            "translation_ar_to_en": {
                "early_stopping": True,
                "max_length": 48,
                "num_beams": 4,
                "prefix": T5_PREFIX_TR,
            },
        }
        cfg = T5Config(
            vocab_size=T5_MODEL_VOCAB,
            d_model=D_MODEL,
            d_kv=D_MODEL // HEADS,
            d_ff=FFN,
            num_layers=LAYERS,
            num_decoder_layers=LAYERS,
            num_heads=HEADS,
            relative_attention_num_buckets=32,
            relative_attention_max_distance=128,
            dropout_rate=TRAIN_DROPOUT,
            layer_norm_epsilon=1e-6,
            feed_forward_proj="gated-gelu" if v11 else "relu",
            tie_word_embeddings=not v11,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
            task_specific_params=tsp,
            architectures=["T5ForConditionalGeneration"],
        )
        model = T5ForConditionalGeneration(cfg)
        if v11:
            # transformers 5.x builds every T5 tied; flan-T5 checkpoints have their own lm_head
            g = torch.Generator().manual_seed(SEED + 2)
            model.lm_head.weight = torch.nn.Parameter(
                torch.randn(model.lm_head.weight.shape, generator=g) * D_MODEL**-0.5
            )
            model.all_tied_weights_keys.pop("lm_head.weight", None)
        # like google-t5/t5-small's generation_config.json (max_length stays at the default 20)
        gc = GenerationConfig(decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
    model.generation_config = gc
    return model


def fix_config_json(fam, d):
    """config.json as the hub files of the real models look (T5's tie flag drives its scaling).
    The models train without dropout (to learn the small set quickly); config.json gets the
    real models' dropout values, which do not matter in eval mode."""

    def dropout(c):
        if fam == "bart":
            c["dropout"] = 0.1
        elif fam == "nllb":
            c["dropout"] = c["attention_dropout"] = 0.1
        elif fam == "mbart":
            c["dropout"] = 0.1
        else:
            c["dropout_rate"] = 0.1

    rewrite_json(d / "config.json", dropout)
    if fam == "bart":
        # fields facebook/bart-large-cnn's config.json has that BartConfig 5.x no longer keeps,
        # and its generation settings, repeated from generation_config.json as that file does
        def cnn(c):
            c.update(
                add_bias_logits=False,
                add_final_layer_norm=False,
                normalize_before=False,
                normalize_embedding=True,
                static_position_embeddings=False,
                forced_bos_token_id=0,
            )
            gc = json.loads((d / "generation_config.json").read_text(encoding="utf-8"))
            for k in ("early_stopping", "length_penalty", "max_length", "min_length", "no_repeat_ngram_size", "num_beams"):
                c[k] = gc[k]

        rewrite_json(d / "config.json", cnn)
    if fam == "mbart":
        # fields facebook/mbart-large-50-many-to-many-mmt's config.json has that MBartConfig 5.x
        # does not keep, and its generation settings repeated from generation_config.json
        # (not forced_bos_token_id: the hub config.json has none)
        def mmt(c):
            c.update(
                add_bias_logits=False,
                add_final_layer_norm=True,
                normalize_before=True,
                normalize_embedding=True,
                static_position_embeddings=False,
                tokenizer_class="MBart50Tokenizer",
            )
            gc = json.loads((d / "generation_config.json").read_text(encoding="utf-8"))
            for k in ("early_stopping", "max_length", "num_beams"):
                c[k] = gc[k]

        rewrite_json(d / "config.json", mmt)
    if fam.startswith("t5"):

        def edit(c):
            c.pop("scale_decoder_outputs", None)
            c["tie_word_embeddings"] = fam == "t5"

        rewrite_json(d / "config.json", edit)


def stage_model(data, fams):
    import torch

    for fam in fams:
        tok = load_tokenizer(fam)
        task = Task(fam, data, tok)
        ex = task.examples
        pad = tok.pad_token_id
        torch.manual_seed(SEED)
        model = make_model(fam, tok)
        opt = fixture_common.adamw(model, LR)
        steps = STEPS[fam]
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / WARMUP, max(0.1, 1.0 - (s - WARMUP) / (steps - WARMUP) * 0.9))
        )
        rng = random.Random(SEED)
        order = []
        t0 = time.time()
        history = []
        model.train()
        run_loss, run_tok = 0.0, 0
        size = lambda i: len(ex[i][3]) + len(ex[i][4])
        for step in range(steps):
            if len(order) < BATCH:
                # a pass over the examples in length-bucketed batches (chunks of 16 batches)
                batches = fixture_common.length_bucketed_batches(len(ex), size, rng, BATCH, 16)
                order += [i for b in batches for i in b]
            bidx, order = order[:BATCH], order[BATCH:]
            loss, ntok = fixture_common.train_step(
                model, opt, sched, [ex[i][3] for i in bidx], [ex[i][4] for i in bidx], pad
            )
            run_loss += loss * ntok
            run_tok += ntok
            if (step + 1) % 100 == 0:
                history.append(round(run_loss / run_tok, 4))
                run_loss, run_tok = 0.0, 0
                print("%s step %d loss %.4f  %.0fs" % (fam, step + 1, history[-1], time.time() - t0), flush=True)
        train_time = time.time() - t0
        model.eval()
        eval_loss = fixture_common.eval_loss(model, [e[3] for e in ex], [e[4] for e in ex], pad)

        d = out_model(fam)
        clean_dir(d, ["model.safetensors", "config.json", "generation_config.json"])
        model.save_pretrained(str(d))
        fix_config_json(fam, d)
        ref = out_ref(fam)
        ref.mkdir(parents=True, exist_ok=True)
        write_json(
            ref / "meta.json",
            {
                "training": {
                    "task": task.kinds,
                    "examples": len(ex),
                    "filter": "source <= %d tokens, target <= %d tokens" % (MAX_SRC[fam], MAX_TGT[fam]),
                    "steps": steps,
                    "torch_threads": torch.get_num_threads(),
                    "loss_per_100_steps": history,
                    "final_eval_loss": round(eval_loss, 4),
                    "optimizer": "AdamW lr %g betas (0.9, 0.98) wd 0, linear warmup %d steps, linear decay "
                    "to 0.1x, grad clip 1.0, batch %d (length-bucketed), dropout as in config.json"
                    % (LR, WARMUP, BATCH),
                }
            },
        )
        print("%s: %d examples %s, loss %.4f (eval), %.0fs" % (fam, len(ex), task.kinds, eval_loss, train_time))


# --------------------------------------------------------------------------
# stage 3: references
# --------------------------------------------------------------------------


# fixture_common.GEN_CASES every family here runs, in this order (overrides of the family's
# defaults: generation_config.json + family_base() below). Every effective setting is passed to
# generate() explicitly.
COMMON_CASES = [
    "defaults",
    "greedy",
    "beam4",
    "beam4_lp2.0",
    "beam4_lp0.5",
    "beam4_early_stopping",
    "beam4_early_stopping_never",
    "greedy_no_repeat3",
    "beam4_no_repeat3",
    "beam4_repetition1.3",
    "greedy_min_length12",
    "beam4_min_length16",
    "greedy_max_new_tokens8",
    "beam4_max_length12",
    "beam2_lp0.5",
]
# the cases whose batched rows are checked against generating each input alone
UNBATCHED_CHECKED = ("defaults", "greedy", "beam4", "greedy_plain", "beam4_no_repeat3", "beam4_lp2.0")


def family_cases(fam, tok, cfg):
    """(name, input set, overrides) for one family."""
    main_set = "en_para" if fam == "bart" else "ar"
    cases = [(n, main_set, fixture_common.GEN_CASES[n]) for n in COMMON_CASES]
    if fam == "bart":
        plain = dict(no_repeat_ngram_size=0, min_length=0, length_penalty=1.0, early_stopping=False)
        cases += [
            ("greedy_plain", main_set, dict(num_beams=1, **plain)),
            ("beam4_plain", main_set, dict(num_beams=4, **plain)),
            # facebook/bart-large-cnn's settings (its min_length 56 / max_length 142 scaled down)
            (
                "cnn_summary",
                main_set,
                dict(num_beams=4, no_repeat_ngram_size=3, min_length=12, length_penalty=2.0, max_length=40,
                     early_stopping=True, forced_bos_token_id=0, forced_eos_token_id=2),
            ),
        ]
    if fam == "nllb":
        fra = tok.convert_tokens_to_ids("fra_Latn")
        cases += [
            ("greedy_forced_fra_Latn", main_set, dict(num_beams=1, forced_bos_token_id=fra)),
            ("beam4_forced_fra_Latn", main_set, dict(num_beams=4, forced_bos_token_id=fra)),
        ]
    if fam == "mbart":
        fra = tok.convert_tokens_to_ids("fr_XX")
        cases += [
            ("greedy_forced_fr_XX", main_set, dict(num_beams=1, forced_bos_token_id=fra)),
            ("beam4_forced_fr_XX", main_set, dict(num_beams=4, forced_bos_token_id=fra)),
            # generation_config.json forces </s> at max_length; the same cut without it
            ("greedy_max_new_tokens8_no_forced_eos", main_set, dict(num_beams=1, max_new_tokens=8, forced_eos_token_id=None)),
        ]
    if fam.startswith("t5"):
        tsp = cfg.task_specific_params
        tr = {k: v for k, v in tsp["translation_ar_to_en"].items() if k != "prefix"}
        cases += [("task_translation", "ar", tr)]
        if fam == "t5":
            sm = {k: v for k, v in tsp["summarization"].items() if k != "prefix"}
            cases += [
                ("task_summarization", "en_para", sm),
                ("greedy_summarize", "en_para", dict(num_beams=1)),
                ("beam4_summarize", "en_para", dict(num_beams=4)),
            ]
    return cases


def family_base(fam, tok):
    """Settings every case of a family has on top of generation_config.json (except `defaults`
    for T5, which keeps transformers' max_length 20)."""
    if fam == "nllb":
        # what a translation call does: force the target language code first
        return dict(forced_bos_token_id=tok.convert_tokens_to_ids("eng_Latn"))
    if fam.startswith("t5"):
        return dict(max_length=48)
    return {}


def drop_word(text, k):
    w = text.split()
    return " ".join(w[:k] + w[k + 1 :]) if len(w) > k + 1 else text


def swap_words(text, k):
    w = text.split()
    if len(w) > k + 2:
        w[k], w[k + 1] = w[k + 1], w[k]
    return " ".join(w)


def input_sets(fam, task, data):
    """20 inputs per set: 8 training sources, 3 edited training sources, 5 unseen, 4 odd ones."""
    sets = {}
    kinds = {"ar": "tr", "en_para": "sum"}
    for name, kind in kinds.items():
        train = [e for e in task.examples if e[0] == kind]
        if not train:
            continue
        raw = [e[6] for e in train[:8]]
        raw += [drop_word(train[8][6], 2), swap_words(train[9][6], 1), train[10][6].rstrip(".") + "!"]
        unseen = [e for e in task.unused if e[0] == kind]
        unseen += [e for e in task.rejected if e[0] == kind and len(e[3]) <= MAX_SRC[fam] + 8]
        step = max(1, len(unseen) // 5)
        raw += [unseen[i * step][6] for i in range(5)]
        if kind == "tr":
            raw += ["مرحبا", "", data.article[1], "في عام ٢٠٢٤ ارتفع السعر 3.5%"]
        else:
            raw += ["Hello.", "", data.en[1990], "The 2024 budget rose 3.5% to $12,000."]
        assert len(raw) == 20
        sets[name] = (T5_PREFIX_TR if (fam.startswith("t5") and kind == "tr") else T5_PREFIX_SUM if fam == "t5" else "", raw)
    return sets


# ---- tokenizer reference cases ----------------------------------------------


def tok_texts(fam, data):
    ar, en = data.ar, data.en
    texts = [ar[i] for i in (0, 2, 25, 100, 333, 777, 1200, 1500, 1996)]
    texts += [en[i] for i in (0, 4, 50, 640, 1990)]
    texts += [
        "",
        " ",
        "   ",
        "\t\n",
        "مرحبا",
        "  مرحبا   بالعالم  ",
        "مرحبا\u00a0بالعالم\u3000!",
        "Hello, world! This is English text.",
        "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
        "ﬁne ½ ² … ™",
        "\ufefb \ufef5 \ufdf2 \ufe8d\ufe8e",
        "A\u030a and \u00c5",
        "في عام ١٢٣ و ٢٠٢٤ و ٣٫٥ و ٥٪",
        "0123456789 3.5% 12,000 $4.99",
        "حالة 😀👍🏽 ممتازة",
        "漢字 ДЖЯ ΩΣλ",
        "مُحَمَّدٌ رَسُولُ اللَّهِ",
        "لا\u200dإله\u200c و\u200bكلمة",
        "Mixed العربية and English text",
        "https://www.example.com/path?a=1&b=2 info@example.org",
        "x" * 30,
        "line1\r\nline2\ttab",
    ]
    return texts


def tok_special_texts(fam):
    s = ["</s>", "<unk>", "مرحبا </s> بالعالم", "نص <pad> نص", "<s> x </s>"]
    if fam == "bart":
        s += ["<mask>", "The <mask> was here.", "a<mask>b"]
    if fam == "nllb":
        s += ["eng_Latn مرحبا", "arb_Arab", "x fra_Latn y", "<mask>"]
    if fam == "mbart":
        s += ["en_XX مرحبا", "ar_AR", "x fr_XX y", "<mask>", "نص <mask> نص", "a<mask>b", "en_XXar_AR"]
    if fam.startswith("t5"):
        s += ["<extra_id_0>", "The <extra_id_0> was <extra_id_1> here.", "a<extra_id_7>b"]
    return s


def tokenizer_refs(fam, tok, data, raw):
    encode = []
    for t in tok_texts(fam, data):
        ids = tok(t)["input_ids"]
        assert raw.encode(t).ids == ids, (fam, t)
        encode.append({"text": t, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids)})
    encode_special = []
    for t in tok_special_texts(fam):
        ids = tok(t)["input_ids"]
        assert raw.encode(t).ids == ids, (fam, t)
        encode_special.append({"text": t, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids)})
    out = {"encode": encode, "encode_special": encode_special}
    if fam.startswith("t5"):
        out["encode_prefixed"] = []
        for p in (T5_PREFIX_SUM, T5_PREFIX_TR):
            for t in (data.en[0], data.ar[0], "", "  x "):
                ids = tok(p + t)["input_ids"]
                out["encode_prefixed"].append({"prefix": p, "text": t, "ids": ids})
    if fam == "mbart":
        # target side (labels): [tgt_lang] tokens </s>; other source languages
        out["encode_target"] = [
            {"tgt_lang": MBART_TGT, "text": t, "ids": tok(text_target=t)["input_ids"]}
            for t in (data.en[0], data.en[4], "", "Hello")
        ]
        rows = []
        for lang in ("en_XX", "fr_XX"):
            tok.src_lang = lang
            for t in (data.en[0], "Bonjour", ""):
                rows.append({"src_lang": lang, "text": t, "ids": tok(t)["input_ids"]})
        tok.src_lang = MBART_SRC
        out["encode_src_lang"] = rows
        # what the Rust side does (as for m2m_100): encode without special tokens, wrap as [src] ... </s>
        src_id = tok.convert_tokens_to_ids(MBART_SRC)
        for e in out["encode"]:
            assert e["ids"] == [src_id] + tok(e["text"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id], e
        for r in rows:
            lid = tok.convert_tokens_to_ids(r["src_lang"])
            assert r["ids"] == [lid] + tok(r["text"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id], r
    if fam == "nllb":
        # target side (labels): [tgt_lang] tokens </s>; other source languages
        out["encode_target"] = [
            {"tgt_lang": "eng_Latn", "text": t, "ids": tok(text_target=t)["input_ids"]}
            for t in (data.en[0], data.en[4], "", "Hello")
        ]
        rows = []
        for lang in ("eng_Latn", "fra_Latn"):
            tok.src_lang = lang
            for t in (data.en[0], "Bonjour", ""):
                rows.append({"src_lang": lang, "text": t, "ids": tok(t)["input_ids"]})
        tok.src_lang = "arb_Arab"
        out["encode_src_lang"] = rows

    # decode
    n = len(tok)
    specials = sorted(set(tok.all_special_ids))
    e5 = tok(text_target=data.en[4])["input_ids"]
    a3 = tok(data.ar[2])["input_ids"]
    rng = random.Random(SEED)
    seqs = [tok(text_target=data.en[i])["input_ids"] for i in (0, 1, 50, 640)]
    seqs += [
        a3,
        [],
        specials,
        [tok.pad_token_id] * 3 + e5,
        e5[:3] + [tok.unk_token_id] + e5[3:],
        e5[:4] + [tok.eos_token_id] + e5[4:],
        e5 + [tok.pad_token_id] * 2,
        rng.sample(range(4, n), 12),
        rng.sample(range(4, n), 12),
        e5[:3] + [n, n + 1] + e5[3:],  # ids past the tokenizer (model-only rows): dropped
    ]
    if fam == "bart":
        b = tok("漢字 😀")["input_ids"]
        seqs += [b[:2] + b[3:], b[1:-2]]  # split UTF-8 sequences: errors="replace"
        seqs += [tok(" leading space")["input_ids"], tok("The <mask> was here.")["input_ids"]]
    if fam == "nllb":
        seqs += [[2, tok.convert_tokens_to_ids("eng_Latn")] + e5[1:]]
    if fam == "mbart":
        seqs += [[2, tok.convert_tokens_to_ids("en_XX")] + e5[1:], tok("نص <mask> نص")["input_ids"]]
    if fam.startswith("t5"):
        x = tok("The <extra_id_0> was <extra_id_1> here.")["input_ids"]
        seqs += [x, [0] + e5]
    decode = []
    mismatch = []
    for ids in seqs:
        rec = fixture_common.decode_record(tok, ids)
        rec["tokens"] = tok.convert_ids_to_tokens([i for i in ids if i < n])
        # the tokenizers library (what tokenizer.json users get) also drops ids past the vocab
        if (raw.decode(ids, skip_special_tokens=True), raw.decode(ids, skip_special_tokens=False)) != (
            rec["text"],
            rec["text_keep_special"],
        ):
            mismatch.append(len(decode))
        decode.append(rec)
    out["decode"] = decode
    return out, mismatch


# ---- refs --------------------------------------------------------------------


def pick_forward(task, fam):
    kind = "sum" if fam == "bart" else "tr"
    ex = [e for e in task.examples + task.unused if e[0] == kind]
    picks = []
    for want in (4, 7, 10):
        best = min(
            (e for e in ex if e not in picks and all(len(e[3]) != len(p[3]) for p in picks)),
            key=lambda e: (abs(len(e[4]) - want), len(e[3]), e[5]),
        )
        picks.append(best)
    return picks


def refs_one(fam, data):
    import tokenizers
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoModelForSeq2SeqLM

    tok = load_tokenizer(fam)
    md, rd = out_model(fam), out_ref(fam)
    raw = tokenizers.Tokenizer.from_file(str(md / "tokenizer.json"))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(md), attn_implementation="eager")
    model.eval()
    cfg, gc = model.config, model.generation_config
    pad, eos, unk = tok.pad_token_id, tok.eos_token_id, tok.unk_token_id
    start = cfg.decoder_start_token_id
    task = Task(fam, data, tok)
    with safe_open(str(md / "model.safetensors"), "pt") as f:
        saved_keys = sorted(f.keys())
    if fam == "t5v11":
        assert "lm_head.weight" in saved_keys and not cfg.scale_decoder_outputs
        assert not torch.equal(model.lm_head.weight, model.shared.weight)
    if fam == "t5":
        assert "lm_head.weight" not in saved_keys and cfg.scale_decoder_outputs
    if fam in ("bart", "mbart"):
        assert "final_logits_bias" in saved_keys and float(model.final_logits_bias.abs().sum()) > 0

    # ---- tokenizer ---------------------------------------------------------
    tref, decode_mismatch = tokenizer_refs(fam, tok, data, raw)
    ids = {"pad": pad, "eos": eos, "unk": unk, "bos": tok.bos_token_id if fam in ("bart", "nllb", "mbart") else None,
           "decoder_start": start, "tokenizer_len": len(tok), "model_vocab_size": cfg.vocab_size}
    if fam == "nllb":
        ids["lang_codes"] = {c: tok.convert_tokens_to_ids(c) for c in NLLB_LANGS}
        ids["mask"] = tok.mask_token_id
    if fam == "bart":
        ids["mask"] = tok.mask_token_id
    if fam == "mbart":
        ids["lang_codes"] = dict(tok.lang_code_to_id)  # all 52 of mBART-50, in their order
        ids["src_lang"] = MBART_SRC
        ids["tgt_lang"] = MBART_TGT
        ids["mask"] = tok.mask_token_id
    if fam.startswith("t5"):
        ids["extra_ids"] = {"<extra_id_%d>" % i: tok.convert_tokens_to_ids("<extra_id_%d>" % i) for i in range(T5_EXTRA_IDS)}
    about = {
        "bart": "BartTokenizer (= RobertaTokenizer in transformers 5.x): byte-level BPE, no prefix space, "
        "<s> tokens </s>. ",
        "nllb": "NllbTokenizer, src_lang=arb_Arab (tokenizer_config.json), legacy_behaviour=False: "
        "[src_lang] tokens </s>; text_target=: [tgt_lang] tokens </s>. ",
        "t5": "T5Tokenizer: SentencePiece unigram, tokens </s> (no bos); <extra_id_N> = ids counted down from "
        "the end of the tokenizer vocab. ",
        "t5v11": "T5Tokenizer (the same tokenizer.json as t5-tiny). ",
        "mbart": "MBart50Tokenizer, src_lang=ar_AR, tgt_lang=en_XX (tokenizer_config.json): [src_lang] tokens "
        "</s>; text_target=: [tgt_lang] tokens </s>; the source ids equal [ar_AR] + tok(text, "
        "add_special_tokens=False) + [</s>] (checked). Vocab: <s> <pad> </s> <unk>, the spm pieces (fairseq "
        "offset 1), the 52 mBART-50 language codes, <mask>. ",
    }[fam]
    write_json(
        rd / "tokenizer.json",
        {
            "about": about
            + "transformers %s. encode.ids = tok(text)['input_ids'] (special tokens added); equal to "
            "tokenizers.Tokenizer.from_file(<model dir>/tokenizer.json).encode(text).ids for every encode and "
            "encode_special case (checked). encode_special: literal special tokens in the text. "
            "decode.text = tok.decode(ids, skip_special_tokens=True), text_keep_special = "
            "skip_special_tokens=False (clean_up_tokenization_spaces is %s); ids >= tokenizer_len are dropped "
            "by transformers' decode. tokens = convert_ids_to_tokens (ids < tokenizer_len only)."
            % (versions()["transformers"], tok.clean_up_tokenization_spaces),
            "ids": ids,
            **tref,
        },
    )
    print("%s tokenizer refs: %d encode, %d decode, raw-decode mismatches %s"
          % (fam, len(tref["encode"]), len(tref["decode"]), decode_mismatch))

    # ---- forward -----------------------------------------------------------
    picks = pick_forward(task, fam)
    from transformers.models.bart.modeling_bart import shift_tokens_right

    src, attn = collate([e[3] for e in picks], pad)
    labels, dmask = collate([e[4] for e in picks], -100)
    if fam.startswith("t5"):
        dec_in = model._shift_right(labels)
    else:
        dec_in = shift_tokens_right(labels, pad, start)
    fwd = fixture_common.forward_tensors(model, src, attn, dec_in, decoder_attention_mask=dmask)
    note = ""
    if fam.startswith("t5"):
        from transformers.models.t5.modeling_t5 import T5Attention

        rel = torch.arange(-160, 161, dtype=torch.long)
        fwd["relative_position"] = rel
        fwd["relative_bucket_bidirectional"] = T5Attention._relative_position_bucket(
            rel, bidirectional=True, num_buckets=32, max_distance=128).to(torch.int64).contiguous()
        fwd["relative_bucket_causal"] = T5Attention._relative_position_bucket(
            rel, bidirectional=False, num_buckets=32, max_distance=128).to(torch.int64).contiguous()
        note = ("; relative_bucket_*[k] = T5Attention._relative_position_bucket(relative_position[k]) "
                "(relative_position = key position - query position; buckets 32, max distance 128; "
                "bidirectional = encoder, causal = decoder self-attention)")
    save_file(
        fwd,
        str(rd / "forward.safetensors"),
        metadata={
            "about": "%s: 3 examples of its task (ntrex lines %s), right-padded; eval mode, f32, eager attention; "
            "decoder_input_ids = labels (tok(text_target=...)) shifted right (start = %d), padded with pad %d; "
            "decoder_attention_mask marks the real decoder positions, but it was NOT passed to the model "
            "(causal mask only, as in generation), so logits at padded decoder positions are valid too%s"
            % (DIRNAME[fam], ",".join(str(e[5] + 1) for e in picks), start, pad, note),
        },
    )
    print("%s forward: S %s T %s" % (fam, tuple(src.shape), tuple(dec_in.shape)))

    # ---- generate ----------------------------------------------------------
    sets = input_sets(fam, task, data)
    base = family_base(fam, tok)
    cases, unbatched_equal, eos_stats, set_records = [], {}, {}, {}
    for name, set_name, over in family_cases(fam, tok, cfg):
        prefix, inputs = sets[set_name]
        params = fixture_common.gen_params(gc, over, base, name)
        kw = fixture_common.gen_kwargs(params)
        set_records.setdefault(set_name, {
            "prefix": prefix,
            "inputs": inputs,
            "input_ids": [tok(prefix + x)["input_ids"] for x in inputs],
        })
        texts_in = [prefix + x for x in inputs]
        out_ids, texts, seq_scores, masks = fixture_common.generate_case(model, tok, texts_in, params)
        if name in UNBATCHED_CHECKED:
            unbatched_equal[name] = fixture_common.batched_equals_unbatched(
                model, tok, texts_in, out_ids, params, eos, name
            )
        set_records[set_name]["attention_mask"] = masks
        rows = [trim(r, eos) for r in out_ids]
        # len(r) + 1 = length with the decoder start, what max_length counts
        natural = sum(1 for r in rows if r and r[-1] == eos and len(r) + 1 < params["max_length"])
        at_max = sum(1 for r in rows if len(r) + 1 >= params["max_length"])
        eos_stats[name] = {"ended_with_eos_before_max_length": natural, "reached_max_length": at_max, "rows": len(rows)}
        case = {
            "name": name,
            "input_set": set_name,
            "params": params,
            "generate_kwargs": kw,
            "output_ids": out_ids,
            "texts": texts,
        }
        if seq_scores:
            case["sequence_scores"] = seq_scores
        cases.append(case)
        print("  %-26s eos %2d/%d  lens %s" % (name, natural, len(rows), [len(r) for r in rows]))

    by = {c["name"]: c for c in cases}
    plain = "greedy_plain" if fam == "bart" else "greedy"
    # the processor-free greedy case
    g = by[plain]
    gs = set_records[g["input_set"]]
    min_gap = fixture_common.min_top2_gap(
        model, tok, [gs["prefix"] + x for x in gs["inputs"]], g["output_ids"], g["params"], start, eos
    )
    print("%s greedy: smallest top-2 logit gap %.4f" % (fam, min_gap))
    train_src = {e[1] for e in task.examples}
    train_tgt = {e[1]: e[2] for e in task.examples}
    reproduced = sum(
        1 for x, t in zip(gs["inputs"], g["texts"]) if gs["prefix"] + x in train_src and train_tgt[gs["prefix"] + x] == t
    )
    in_train = sum(1 for x in gs["inputs"] if gs["prefix"] + x in train_src)
    greedy_vs_beam = sum(a != b for a, b in zip(by["greedy"]["texts"], by["beam4"]["texts"]))
    assert greedy_vs_beam > 0, "greedy and beam4 agree on every input"
    assert len(set(by[plain]["texts"])) > len(gs["inputs"]) // 2, "outputs do not vary with the input"

    write_json(
        rd / "generate.json",
        {
            "about": (
                "Each case runs on input_sets[case.input_set] (inputs: raw texts; prefix: prepended before "
                "tokenizing, T5 task prefixes; input_ids: tok(prefix + input)['input_ids'], unpadded; "
                "attention_mask: the padded batch rows, right padding): "
                "model.generate(**tok([prefix + x for x in batch], return_tensors='pt', padding=True), "
                "**generate_kwargs) over consecutive batches of params.batch_size inputs (transformers %s, CPU f32, "
                "eager attention). params: the effective value of each setting (generate_kwargs passes all of them "
                "explicitly; with max_new_tokens set, max_length = 1 + max_new_tokens, the decoder start counted). "
                "output_ids: rows as HF returns them: leading decoder start, then the generated ids, then fill up "
                "to the longest row of the batch. The fill is pad for greedy, but `pad_token_id or eos_token_id` "
                "for beam search, i.e. </s> for T5 whose pad id is 0: compare the ids after the decoder start up to "
                "and including the first </s> (all of them when a row has no </s>). "
                "texts: batch_decode(skip_special_tokens=True). "
                "sequence_scores (beam cases only): HF's sequences_scores, for debugging."
                % versions()["transformers"]
            ),
            "ids": ids,
            "input_sets": set_records,
            "cases": cases,
        },
    )

    return fixture_common.update_meta(
        rd / "meta.json",
        {
            "versions": versions(),
            "seed": SEED,
            "ids": ids,
            "config": {
                k: v
                for k, v in cfg.to_dict().items()
                if k not in ("id2label", "label2id", "transformers_version", "_name_or_path")
            },
            "generation_config": gc.to_diff_dict(),
            "tokenizer_class": type(tok).__name__,
            "tokenizer_clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
            "tokenizer_raw_decode_differs_in_decode_cases": decode_mismatch,
            "greedy_case": plain,
            "greedy_reproduces_training_targets": "%d of %d training inputs" % (reproduced, in_train),
            "greedy_vs_beam4_differ_on_inputs": greedy_vs_beam,
            "greedy_case_min_top2_logit_gap": round(min_gap, 5),
            "batched_equals_unbatched": unbatched_equal,
            "eos": eos_stats,
            "eos_fraction_all_cases": round(
                sum(v["ended_with_eos_before_max_length"] for v in eos_stats.values())
                / sum(v["rows"] for v in eos_stats.values()), 4),
            "forward_ntrex_lines": [e[5] + 1 for e in picks],
            "model_safetensors_keys": saved_keys,
        },
    )


def stage_refs(data, fams):
    for fam in fams:
        out_ref(fam).mkdir(parents=True, exist_ok=True)
        m = refs_one(fam, data)
        print("%s: eos fraction %.3f, min gap %.4f" % (fam, m["eos_fraction_all_cases"], m["greedy_case_min_top2_logit_gap"]))



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--shared",
        default=str(REPO / "../shared/data"),
        help="the shared data dir (holding ntrex/ and article-ar.txt), or its parent",
    )
    ap.add_argument("--stage", default="all", choices=["all", "tokenizer", "model", "refs"])
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated subset of " + ",".join(FAMILIES))
    ap.add_argument("--any-version", action="store_true")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a 2-core machine shared with a compiler, "
        "2 OpenMP threads were 3-5x slower than 1; the committed fixtures were made with 1 "
        "and float results can depend on it)",
    )
    args = ap.parse_args()
    shared = Path(args.shared)
    if (shared / "data").is_dir():
        shared = shared / "data"
    assert (shared / "ntrex/ar.txt").is_file(), "no ntrex data under %s" % shared
    fams = [f for f in args.only.split(",") if f]
    assert all(f in FAMILIES for f in fams), fams
    pinned = dict(PINNED, **fixtures_marian.PINNED) if "marian" in fams else PINNED
    fixture_common.check_versions(pinned, args.any_version)
    t0 = time.time()
    if "marian" in fams:
        fixtures_marian.run(shared, args.stage, args.threads)
    fams = [f for f in fams if f != "marian"]
    if not fams:
        print("done in %.1fs" % (time.time() - t0))
        return
    fixture_common.seed_everything(SEED, args.threads)
    data = fixture_common.Data(shared)
    fixture_common.run_stages(
        args.stage,
        tokenizer=lambda: stage_tokenizer(data, fams),
        model=lambda: stage_model(data, fams),
        refs=lambda: stage_refs(data, fams),
    )
    print("done in %.1fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
