#!/usr/bin/env python3
"""Fixtures for checkpoints as transformers 5 itself writes them, next to the Hub's forms.

Users point tarjama at directories that `save_pretrained` wrote (their own fine-tunes). Those
config.json files differ from the Hub's: transformers 5 writes every key of the config class,
`tie_word_embeddings: true` for every T5 and mT5, `scale_decoder_outputs` for T5, keeps legacy keys
it does not read (BART's `normalize_before`), and writes untied BART with separate encoder and
decoder embedding tables. The other fixture scripts rewrite config.json into the Hub's form; this
one never edits what transformers wrote.

Run from the repository root, after scripts/make-seq2seq-fixtures.py (it
starts from their trained tiny models; nothing is trained here):

    /work/venv/fx/bin/python scripts/make-saved-fixtures.py

Pinned versions: those of scripts/make-seq2seq-fixtures.py (transformers 5.24.0, torch 2.15.0).

Outputs, for each variant NAME below:
    tests/fixtures/saved/NAME/             the model dir, as model.save_pretrained() and
                                           tokenizer.save_pretrained() wrote it (mt5: spiece.model
                                           and a tokenizer_config.json, as mT5 repos ship). A file
                                           that is byte for byte the one in the source fixture is
                                           stored as a relative symlink to it, to keep the
                                           fixtures small.
    tests/fixtures/seq2seq-ref/saved/NAME/ generate.json (the layout of seq2seq-ref/README.md:
                                           input_sets, cases) and, for the variants whose numbers
                                           change, forward.safetensors (same layout, 3 examples).

Variants (`source` is the committed fixture they start from):
    t5       t5-tiny, unchanged: T5 v1.0 (relu, tied, rescaled) as 5.x saves it
    t5v11    t5v11-tiny, unchanged: flan-T5 shaped (gated-gelu, own lm_head); 5.x writes
             tie_word_embeddings true and scale_decoder_outputs false
    mt5      t5v11-tiny's weights in MT5ForConditionalGeneration with one more decoder block than
             encoder blocks (a copy of the last block, its output projections scaled by 0.25);
             MT5Config writes tie_word_embeddings true and 5.x's MT5 never rescales. Tokenizer:
             spiece.model alone. transformers' default cache sizes itself by the encoder's
             layer count and raises IndexError on the extra decoder layer
             (DynamicCache(config=...) in generate()), so generate() gets an explicit
             EncoderDecoderCache(DynamicCache(), DynamicCache()) here
    bart-untied  bart-tiny with tie_word_embeddings false: encoder, decoder and LM head each
             have their own table (the shared table plus independent noise), as 5.x saves
             untied BART; model.shared is stored but read by nothing
    bart-normalize-before  bart-tiny with normalize_before true in config.json: transformers'
             BART is post-norm whatever that key says
    mbart, nllb  their fixtures, unchanged, as 5.x saves them
    marian   marian-tiny, unchanged, as 5.x saves it

Reference cases (each on the source fixture's first input set, batches of 8, padded):
`defaults` (generation_config.json as saved), `greedy`, `beam4`, `beam4_lp2.0`, plus the
family's settings (NLLB forces eng_Latn, T5 max_length 48, as make-seq2seq-fixtures.py does).
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_common  # noqa: E402
import importlib.util  # noqa: E402

# the pinned versions of make-seq2seq-fixtures.py; the generation cases and settings are
# fixture_common's, recorded and passed exactly as that script does
_spec = importlib.util.spec_from_file_location("seq2seq_fixtures", Path(__file__).resolve().parent / "make-seq2seq-fixtures.py")
seq2seq_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seq2seq_fixtures)

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PINNED = seq2seq_fixtures.PINNED
SEED = 20261204
REPO = Path.cwd()
FIX = REPO / "tests/fixtures"
OUT = FIX / "saved"
REF = FIX / "seq2seq-ref/saved"

# name: (source fixture dir, reference dir of its inputs, forward refs?)
VARIANTS = {
    "t5": ("t5-tiny", "seq2seq-ref/t5-tiny", False),
    "t5v11": ("t5v11-tiny", "seq2seq-ref/t5v11-tiny", True),
    "mt5": ("t5v11-tiny", "seq2seq-ref/t5v11-tiny", True),
    "bart-untied": ("bart-tiny", "seq2seq-ref/bart-tiny", True),
    "bart-normalize-before": ("bart-tiny", "seq2seq-ref/bart-tiny", True),
    "mbart": ("mbart-tiny", "seq2seq-ref/mbart-tiny", False),
    "nllb": ("nllb-tiny", "seq2seq-ref/nllb-tiny", False),
    "marian": ("marian-tiny", "marian-tiny-ref", False),
}
CASES = [(n, fixture_common.GEN_CASES[n]) for n in ("defaults", "greedy", "beam4", "beam4_lp2.0")]
BATCH = fixture_common.GEN_BATCH


def build(name, src):
    """The model and tokenizer of one variant, built from the source fixture in memory."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(str(src), attn_implementation="eager")
    tok = AutoTokenizer.from_pretrained(str(src))
    g = torch.Generator().manual_seed(SEED)
    if name == "mt5":
        from transformers import MT5Config, MT5ForConditionalGeneration

        c = model.config.to_dict()
        for k in ("model_type", "architectures", "transformers_version", "scale_decoder_outputs",
                  "dense_act_fn", "is_gated_act", "tie_word_embeddings"):
            c.pop(k, None)
        c["num_decoder_layers"] = model.config.num_layers + 1
        cfg = MT5Config(**c, architectures=["MT5ForConditionalGeneration"])
        mt5 = MT5ForConditionalGeneration(cfg)
        state = dict(model.state_dict())
        last = model.config.num_layers - 1
        for k, v in model.state_dict().items():
            prefix = "decoder.block.%d." % last
            if k.startswith(prefix):
                v = v.clone()
                if k.endswith(("layer.0.SelfAttention.o.weight", "layer.1.EncDecAttention.o.weight",
                               "layer.2.DenseReluDense.wo.weight")):
                    v = v * 0.25
                state["decoder.block.%d.%s" % (last + 1, k[len(prefix):])] = v
        # MT5Config always ties: give lm_head its own parameter again, as make-seq2seq-fixtures.py
        # does for t5v11, so that save_pretrained stores it
        mt5.lm_head.weight = torch.nn.Parameter(state["lm_head.weight"].clone())
        mt5.all_tied_weights_keys.pop("lm_head.weight", None)
        missing, unexpected = mt5.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) <= {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}, (missing, unexpected)
        assert not torch.equal(mt5.lm_head.weight, mt5.shared.weight)
        mt5.generation_config = model.generation_config
        model = mt5
    elif name == "bart-untied":
        from transformers import BartConfig, BartForConditionalGeneration

        c = model.config.to_dict()
        for k in ("model_type", "transformers_version", "tie_word_embeddings"):
            c.pop(k, None)
        untied = BartForConditionalGeneration(BartConfig(**c, tie_word_embeddings=False))
        shared = model.model.shared.weight.detach()
        scale = float(shared.std()) * 0.3
        noisy = lambda: shared + torch.randn(shared.shape, generator=g) * scale
        state = dict(model.state_dict())
        state.update({
            "model.encoder.embed_tokens.weight": noisy(),
            "model.decoder.embed_tokens.weight": noisy(),
            "lm_head.weight": noisy(),
        })
        untied.load_state_dict(state, strict=True)
        w = [untied.model.shared.weight, untied.model.encoder.embed_tokens.weight,
             untied.model.decoder.embed_tokens.weight, untied.lm_head.weight]
        assert len({t.data_ptr() for t in w}) == 4
        untied.generation_config = model.generation_config
        model = untied
    elif name == "bart-normalize-before":
        model.config.normalize_before = True
    model.eval()
    return model, tok


def save(name, model, tok, src, out):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(str(out))
    if name == "mt5":
        # mT5 repos ship spiece.model and a tokenizer_config.json, no tokenizer.json; the spm is
        # the one tests/fixtures/t5v11-tiny/tokenizer.json was made from (extra_ids 0 as in mT5)
        shutil.copy(FIX / "seq2seq-ref/t5-tiny/spiece.model", out / "spiece.model")
        (out / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "eos_token": "</s>",
                        "unk_token": "<unk>", "pad_token": "<pad>"}, indent=2) + "\n", encoding="utf-8")
    else:
        tok.save_pretrained(str(out))
    # files identical to the source fixture's become links to it
    for f in sorted(out.iterdir()):
        same = src / f.name
        if same.is_file() and same.read_bytes() == f.read_bytes():
            f.unlink()
            f.symlink_to(os.path.relpath(same, out))
    return sorted(p.name + (" -> " + os.readlink(p) if p.is_symlink() else "") for p in out.iterdir())


def load_saved(out):
    """The variant as a user loads it: from the saved directory, nothing else."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(str(out), attn_implementation="eager")
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(out))


def input_set(refdir):
    gen = json.loads((FIX / refdir / "generate.json").read_text(encoding="utf-8"))
    if "input_sets" in gen:
        name = gen["cases"][1]["input_set"]
        s = gen["input_sets"][name]
        return name, s["prefix"], s["inputs"]
    # marian-tiny-ref: inputs per case
    return "ar", "", gen["cases"][0]["inputs"][:20]


def family_base(name, tok):
    if name == "nllb":
        return dict(forced_bos_token_id=tok.convert_tokens_to_ids("eng_Latn"))
    if name.startswith(("t5", "mt5")):
        return dict(max_length=48)
    return {}


def explicit_cache(model):
    """A cache for generate() that grows with the decoder (see the mt5 variant above)."""
    from transformers import DynamicCache, EncoderDecoderCache

    n_enc = getattr(model.config, "num_layers", None) or model.config.encoder_layers
    n_dec = getattr(model.config, "num_decoder_layers", None) or model.config.decoder_layers
    return {"past_key_values": EncoderDecoderCache(DynamicCache(), DynamicCache())} if n_dec > n_enc else {}


def refs(name, model, tok, refdir, rd, with_forward):
    import torch
    from safetensors.torch import save_file

    set_name, prefix, inputs = input_set(refdir)
    gc = model.generation_config
    base = family_base(name, tok)
    eos = model.config.eos_token_id
    cases = []
    for case, over in CASES:
        p = fixture_common.gen_params(gc, over, base, case)
        kw = fixture_common.gen_kwargs(p)
        out_ids, texts, masks = [], [], []
        with torch.no_grad():
            for b in range(0, len(inputs), BATCH):
                enc = tok([prefix + x for x in inputs[b : b + BATCH]], return_tensors="pt", padding=True)
                masks += enc["attention_mask"].tolist()
                gen = model.generate(**enc, **kw, **explicit_cache(model))
                out_ids += gen.tolist()
                texts += tok.batch_decode(gen, skip_special_tokens=True)
        cases.append({"name": case, "input_set": set_name, "params": p, "generate_kwargs": kw,
                      "output_ids": out_ids, "texts": texts})
    ended = sum(1 for c in cases for r in c["output_ids"] if eos in r[1:])
    rows = sum(len(c["output_ids"]) for c in cases)
    print("%s: %d of %d rows end with </s>" % (name, ended, rows))
    rd.mkdir(parents=True, exist_ok=True)
    fixture_common.write_json(rd / "generate.json", {
        "about": "model.generate(**tok([prefix + x for x in batch], padding=True), **generate_kwargs) on "
                 "tests/fixtures/saved/%s loaded with from_pretrained from that directory alone "
                 "(transformers %s, CPU f32, eager attention); layout as seq2seq-ref/README.md"
                 % (name, fixture_common.versions(PINNED)["transformers"]),
        "input_sets": {set_name: {"prefix": prefix, "inputs": inputs,
                                  "input_ids": [tok(prefix + x)["input_ids"] for x in inputs],
                                  "attention_mask": masks}},
        "cases": cases,
    })
    if with_forward:
        # decoder inputs: the start token and the first greedy output ids of three inputs
        greedy = cases[1]["output_ids"]
        T = 10
        enc = tok([prefix + x for x in inputs[:3]], return_tensors="pt", padding=True)
        pad = model.config.pad_token_id
        dec = [(r[:T] + [pad] * T)[:T] for r in greedy[:3]]
        dec_in = torch.tensor(dec)
        with torch.no_grad():
            out = model(**enc, decoder_input_ids=dec_in)
        save_file({
            "input_ids": enc["input_ids"].to(torch.int64).contiguous(),
            "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
            "decoder_input_ids": dec_in.to(torch.int64).contiguous(),
            "decoder_attention_mask": (dec_in != pad).to(torch.int64).contiguous(),
            "encoder_hidden_states": out.encoder_last_hidden_state.float().contiguous(),
            "logits": out.logits.float().contiguous(),
        }, str(rd / "forward.safetensors"), metadata={
            "about": "saved/%s: the first 3 inputs of generate.json, right-padded; decoder_input_ids = "
                     "the greedy case's first %d ids of each row (decoder start included); eval mode, f32" % (name, T)})
    return cases


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--any-version", action="store_true")
    ap.add_argument("--only", default=",".join(VARIANTS))
    args = ap.parse_args()
    fixture_common.check_versions(PINNED, args.any_version)
    fixture_common.seed_everything(SEED, 1)
    for name in args.only.split(","):
        source, refdir, with_forward = VARIANTS[name]
        src = FIX / source
        model, tok = build(name, src)
        files = save(name, model, tok, src, OUT / name)
        print("%s: %s" % (name, ", ".join(files)))
        cfg = json.loads((OUT / name / "config.json").read_text(encoding="utf-8"))
        print("  config.json: %s" % {k: cfg.get(k) for k in ("model_type", "tie_word_embeddings", "scale_decoder_outputs", "normalize_before") if k in cfg})
        # the references come from the saved directory, as a user would load it
        saved, saved_tok = load_saved(OUT / name)
        refs(name, saved, saved_tok, refdir, REF / name, with_forward)


if __name__ == "__main__":
    main()
