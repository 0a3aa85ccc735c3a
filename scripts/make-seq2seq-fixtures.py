#!/usr/bin/env python3
"""Generate the committed BART / NLLB (M2M100) / T5 fixtures for tarjama's parity tests.

Run from the repository root:

    /work/venv/fx/bin/python scripts/make-seq2seq-fixtures.py [--shared ../shared/data]
        [--stage all|tokenizer|model|refs] [--only bart,nllb,t5,t5v11]

Pinned versions (see scripts/requirements-fixtures.txt; the script refuses to
run with other versions unless --any-version is given):

    python        3.11.7
    torch         2.15.0 (CPU only; 1 thread by default, see --threads)
    transformers  5.24.0
    tokenizers    0.23.3
    sentencepiece 0.2.3
    safetensors   0.8.0
    numpy         2.4.6
    protobuf      7.36.2

Outputs (everything is rebuilt from ../shared/data; nothing is downloaded):

    tests/fixtures/bart-tiny/     BartForConditionalGeneration, byte-level BPE (BartTokenizer),
                                  English paragraph -> its first sentence ("lead-1 summary")
    tests/fixtures/nllb-tiny/     M2M100ForConditionalGeneration shaped like NLLB-200
                                  (NllbTokenizer, SentencePiece BPE + language codes), ar -> en
    tests/fixtures/t5-tiny/       T5ForConditionalGeneration v1.0 (relu, tied embeddings,
                                  task_specific_params), "summarize: " and
                                  "translate Arabic to English: " tasks mixed
    tests/fixtures/t5v11-tiny/    T5 v1.1 / flan-T5 shaped (gated-gelu, untied lm_head), ar -> en
        each: config.json generation_config.json model.safetensors tokenizer.json
              tokenizer_config.json
    tests/fixtures/seq2seq-ref/<bart-tiny|nllb-tiny|t5-tiny|t5v11-tiny>/
        tokenizer.json forward.safetensors generate.json meta.json   (see README.md there)

Stages: `tokenizer` (SentencePiece / BPE training, tokenizer.json), `model`
(training, save), `refs` (reference outputs). `all` runs the three in order;
`--only` restricts every stage to some families. About 4-6 minutes in all on
one thread of a busy 2-core machine.

Things worth knowing about transformers 5.24 (checked in its source):
  * There is one tokenizer implementation per model (the "fast" one). Classes
    with their own __init__ (NllbTokenizer, T5Tokenizer, RobertaTokenizer =
    BartTokenizer) take only the vocab / merges / precompiled charsmap from
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
Determinism: spm / BPE training is single-threaded with fixed seeds; torch is
seeded and uses deterministic algorithms. Reruns on the same machine give
identical files.
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

# the tokenizers BPE trainer and rayon: one thread, so that merges are deterministic
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PINNED = {
    "torch": "2.15.0",
    "transformers": "5.24.0",
    "tokenizers": "0.23.3",
    "sentencepiece": "0.2.3",
    "safetensors": "0.8.0",
    "numpy": "2.4.6",
    "protobuf": "7.36.2",
}

SEED = 20261130

REPO = Path.cwd()
FIX = REPO / "tests/fixtures"
REF = FIX / "seq2seq-ref"
FAMILIES = ["bart", "nllb", "t5", "t5v11"]
DIRNAME = {"bart": "bart-tiny", "nllb": "nllb-tiny", "t5": "t5-tiny", "t5v11": "t5v11-tiny"}

# model shapes (all families)
D_MODEL = 32
HEADS = 4
FFN = 64
LAYERS = 2
VOCAB = 1000  # SentencePiece / BPE vocab before the added special tokens

# NLLB: a subset of FAIRSEQ_LANGUAGE_CODES, in that list's order
NLLB_LANGS = ["arb_Arab", "deu_Latn", "eng_Latn", "fra_Latn", "rus_Cyrl", "spa_Latn", "zho_Hans"]
T5_EXTRA_IDS = 8
T5_MODEL_VOCAB = 1024  # > len(tokenizer) = 1008, like t5's 32128 vs 32100
T5_PREFIX_SUM = "summarize: "
T5_PREFIX_TR = "translate Arabic to English: "


def out_model(fam):
    return FIX / DIRNAME[fam]


def out_ref(fam):
    return REF / DIRNAME[fam]


# --------------------------------------------------------------------------
# helpers (same conventions as scripts/make-fixtures.py)
# --------------------------------------------------------------------------


def versions():
    from importlib.metadata import version

    v = {k: version(k) for k in PINNED}
    v["python"] = "%d.%d.%d" % sys.version_info[:3]
    return v


def check_versions(allow_any):
    v = versions()
    bad = {k: (v[k], want) for k, want in PINNED.items() if v[k] != want}
    if bad:
        msg = "version mismatch (have, pinned): %r" % bad
        if allow_any:
            print("WARNING:", msg, file=sys.stderr)
        else:
            sys.exit(msg + "\nrerun with --any-version to ignore")


def seed_everything(threads):
    import numpy as np
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def _is_scalar(x):
    return x is None or isinstance(x, (str, int, float, bool))


def _one_line_ok(o):
    """Small containers (lists of numbers, records of scalars) go on one line."""
    if _is_scalar(o):
        return True
    if isinstance(o, list):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in o):
            return True
        if all(isinstance(x, list) and all(_is_scalar(y) for y in x) for x in o):
            return len(o) <= 2
        return all(_is_scalar(x) for x in o) and len(json.dumps(o, ensure_ascii=False)) <= 200
    if isinstance(o, dict):
        return all(_is_scalar(v) or (isinstance(v, list) and _one_line_ok(v)) for v in o.values())
    return False


def _fmt(o, ind):
    dump = lambda x: json.dumps(x, ensure_ascii=False)
    if _one_line_ok(o) or not isinstance(o, (list, dict)) or len(o) == 0:
        return dump(o)
    pad = " " * (ind + 1)
    if isinstance(o, dict):
        body = ",\n".join(pad + dump(k) + ": " + _fmt(v, ind + 1) for k, v in o.items())
        return "{\n" + body + "\n" + " " * ind + "}"
    body = ",\n".join(pad + _fmt(v, ind + 1) for v in o)
    return "[\n" + body + "\n" + " " * ind + "]"


def write_json(path, obj):
    """JSON with one record / one id list per line (compact, diff-friendly)."""
    text = _fmt(obj, 0)
    assert json.loads(text) == obj
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def rewrite_json(path, fn):
    """Load a JSON file written by save_pretrained, edit it, write it back (indent 2, sorted as it was)."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    d = fn(d) or d
    Path(path).write_text(json.dumps(d, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def load_tokenizer(fam):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(out_model(fam)))


def clean_dir(d, names):
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (d / n).exists():
            (d / n).unlink()


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


class Data:
    def __init__(self, shared):
        self.ar = read_lines(shared / "ntrex/ar.txt")
        self.en = read_lines(shared / "ntrex/en.txt")
        self.doc = read_lines(shared / "ntrex/doc_ids.txt")
        assert len(self.ar) == len(self.en) == len(self.doc) == 1997
        art = [l.strip() for l in read_lines(shared / "article-ar.txt") if l.strip()]
        self.article = art

    def paragraphs(self):
        """(i, paragraph, first sentence): lines i, i+1 (and i+2 for even i) of one document."""
        out = []
        en, doc = self.en, self.doc
        for i in range(len(en) - 1):
            if doc[i] != doc[i + 1]:
                continue
            sents = [en[i], en[i + 1]]
            if i % 2 == 0 and i + 2 < len(en) and doc[i + 2] == doc[i]:
                sents.append(en[i + 2])
            out.append((i, " ".join(sents), en[i]))
        return out


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
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    spm.set_random_generator_seed(SEED)
    spm.SentencePieceTrainer.train(
        input=str(input_path),
        model_prefix=str(prefix),
        vocab_size=VOCAB,
        model_type=model_type,
        normalization_rule_tsv=str(rules),
        character_coverage=0.9995,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
        **ids,
    )
    out = Path(str(prefix) + ".model")
    m = pb.ModelProto()
    m.ParseFromString(out.read_bytes())
    del m.trainer_spec.input[:]
    m.trainer_spec.input.append("ntrex/ar+en")
    m.trainer_spec.model_prefix = Path(prefix).name
    m.normalizer_spec.normalization_rule_tsv = "rules.tsv"
    out.write_bytes(m.SerializeToString())
    return out


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
    tok = T5Tokenizer.from_pretrained(str(sd), extra_ids=T5_EXTRA_IDS)
    for fam in ("t5", "t5v11"):
        d = out_model(fam)
        clean_dir(d, ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model"])
        tok.save_pretrained(str(d))
        rewrite_json(d / "tokenizer_config.json", lambda c: c.update(model_max_length=512))


def stage_tokenizer(data, fams):
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        if "bart" in fams:
            tokenizer_bart(data, td)
        if "nllb" in fams:
            tokenizer_nllb(data, td)
        if "t5" in fams or "t5v11" in fams:
            tokenizer_t5(data, td)
    for fam in fams:
        tok = load_tokenizer(fam)
        print("%s tokenizer: %s, %d tokens" % (fam, type(tok).__name__, len(tok)))


# --------------------------------------------------------------------------
# stage 2: models
# --------------------------------------------------------------------------

BATCH = int(os.environ.get("FX_BATCH", 32))
WARMUP = 100
LR = float(os.environ.get("FX_LR", 3e-3))
TRAIN_DROPOUT = float(os.environ.get("FX_DROPOUT", 0.0))
STEPS = {"bart": 900, "nllb": 900, "t5": 1100, "t5v11": 900}
if os.environ.get("FX_STEPS"):
    STEPS = {k: int(os.environ["FX_STEPS"]) for k in STEPS}
MAX_SRC = {"bart": 80, "nllb": 48, "t5": 72, "t5v11": 56}
MAX_TGT = {"bart": 28, "nllb": 28, "t5": 28, "t5v11": 28}
N_TRAIN = {k: int(os.environ.get("FX_NTRAIN", 128)) for k in STEPS}


class Task:
    """Training / evaluation examples of one family, tokenized the way its refs use them."""

    def __init__(self, fam, data, tok):
        self.fam = fam
        self.tok = tok
        pairs = []  # (kind, src text as given to the tokenizer, target text)
        if fam in ("bart", "t5"):
            for i, para, first in data.paragraphs():
                p = T5_PREFIX_SUM if fam == "t5" else ""
                pairs.append(("sum", p + para, first))
        if fam in ("nllb", "t5", "t5v11"):
            for i in range(len(data.ar)):
                p = T5_PREFIX_TR if fam.startswith("t5") else ""
                pairs.append(("tr", p + data.ar[i], data.en[i]))
        self.examples = []
        for kind, s, t in pairs:
            src = tok(s)["input_ids"]
            tgt = tok(text_target=t)["input_ids"]
            if len(src) <= MAX_SRC[fam] and len(tgt) <= MAX_TGT[fam]:
                self.examples.append((kind, s, t, src, tgt))
        if N_TRAIN.get(fam):
            # a small set the tiny model can nearly learn by heart in a few hundred steps:
            # confident, varied outputs that end with </s>
            by_kind = {}
            for e in self.examples:
                by_kind.setdefault(e[0], []).append(e)
            n = N_TRAIN[fam] // len(by_kind)
            self.examples = [e for k in sorted(by_kind) for e in by_kind[k][:n]]
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
        T5Config,
        T5ForConditionalGeneration,
    )

    if fam == "bart":
        # shaped like facebook/bart-large-cnn (config.json + generation_config.json)
        cfg = BartConfig(
            vocab_size=len(tok),
            d_model=D_MODEL,
            encoder_layers=LAYERS,
            decoder_layers=LAYERS,
            encoder_attention_heads=HEADS,
            decoder_attention_heads=HEADS,
            encoder_ffn_dim=FFN,
            decoder_ffn_dim=FFN,
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
        # final_logits_bias is a (non-trained) buffer, zero in facebook/bart-*;
        # make it non-zero so that implementations that forget it fail.
        g = torch.Generator().manual_seed(SEED + 1)
        with torch.no_grad():
            model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape, generator=g) * 0.1)
    elif fam == "nllb":
        # shaped like facebook/nllb-200-distilled-600M: pre-norm, scaled embeddings,
        # sinusoidal positions (offset 2 = pad + 1), final layer norms, relu
        cfg = M2M100Config(
            vocab_size=len(tok) + 2,  # like NLLB-200: 256206 rows for 256204 tokens
            d_model=D_MODEL,
            encoder_layers=LAYERS,
            decoder_layers=LAYERS,
            encoder_attention_heads=HEADS,
            decoder_attention_heads=HEADS,
            encoder_ffn_dim=FFN,
            decoder_ffn_dim=FFN,
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
            bos_token_id=0, decoder_start_token_id=2, eos_token_id=2, pad_token_id=1, max_length=64
        )
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
        else:
            c["dropout_rate"] = 0.1

    rewrite_json(d / "config.json", dropout)
    if fam.startswith("t5"):

        def edit(c):
            c.pop("scale_decoder_outputs", None)
            c["tie_word_embeddings"] = fam == "t5"

        rewrite_json(d / "config.json", edit)


def collate(rows, fill):
    import torch

    n = max(len(r) for r in rows)
    out = torch.full((len(rows), n), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return out, mask


def batch_stream(n, rng):
    """Endless length-bucketed batches of example indices, random order."""
    while True:
        idx = list(range(n))
        rng.shuffle(idx)
        yield idx


def stage_model(data, fams):
    import torch

    for fam in fams:
        tok = load_tokenizer(fam)
        task = Task(fam, data, tok)
        ex = task.examples
        pad = tok.pad_token_id
        torch.manual_seed(SEED)
        model = make_model(fam, tok)
        opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0)
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
        for step in range(steps):
            if len(order) < BATCH:
                # sort by length inside chunks of 16 batches (less padding), keep the chunk order random
                idx = list(range(len(ex)))
                rng.shuffle(idx)
                chunks = []
                for c in range(0, len(idx), BATCH * 16):
                    part = sorted(idx[c : c + BATCH * 16], key=lambda i: len(ex[i][3]) + len(ex[i][4]))
                    chunks += [part[b : b + BATCH] for b in range(0, len(part), BATCH)]
                rng.shuffle(chunks)
                order += [i for ch in chunks for i in ch]
            bidx, order = order[:BATCH], order[BATCH:]
            input_ids, attn = collate([ex[i][3] for i in bidx], pad)
            labels, _ = collate([ex[i][4] for i in bidx], -100)
            out = model(input_ids=input_ids, attention_mask=attn, labels=labels)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            ntok = int((labels != -100).sum())
            run_loss += float(out.loss.detach()) * ntok
            run_tok += ntok
            if (step + 1) % 100 == 0:
                history.append(round(run_loss / run_tok, 4))
                run_loss, run_tok = 0.0, 0
                print("%s step %d loss %.4f  %.0fs" % (fam, step + 1, history[-1], time.time() - t0), flush=True)
        train_time = time.time() - t0
        model.eval()
        with torch.no_grad():
            tot, nt = 0.0, 0
            for b in range(0, len(ex), 64):
                input_ids, attn = collate([e[3] for e in ex[b : b + 64]], pad)
                labels, _ = collate([e[4] for e in ex[b : b + 64]], -100)
                l = model(input_ids=input_ids, attention_mask=attn, labels=labels).loss
                n = int((labels != -100).sum())
                tot += float(l) * n
                nt += n
        eval_loss = tot / nt

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
                    "train_time_s": round(train_time, 1),
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
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the fixtures were made with 1)")
    args = ap.parse_args()
    shared = Path(args.shared)
    if (shared / "data").is_dir():
        shared = shared / "data"
    assert (shared / "ntrex/ar.txt").is_file(), "no ntrex data under %s" % shared
    fams = [f for f in args.only.split(",") if f]
    assert all(f in FAMILIES for f in fams), fams
    check_versions(args.any_version)
    seed_everything(args.threads)
    data = Data(shared)
    t0 = time.time()
    if args.stage in ("all", "tokenizer"):
        stage_tokenizer(data, fams)
    if args.stage in ("all", "model"):
        stage_model(data, fams)
    if args.stage in ("all", "refs"):
        stage_refs(data, fams, shared)
    print("done in %.1fs" % (time.time() - t0))


if __name__ == "__main__":
    main()
