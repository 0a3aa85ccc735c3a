"""Helpers shared by every fixture script (scripts/make-*.py): pinned-version checks, seeding,
hashing, and the JSON layouts the reference files use; and, in a section of their own, what the
two parts of the encoder-decoder pipeline (make-seq2seq-fixtures.py and fixtures_marian.py)
share. Each is written once, here."""

import hashlib
import json
import random
import re
import sys
from pathlib import Path


def versions(pinned):
    """The installed version of each pinned package, as the package metadata says, and Python's."""
    from importlib.metadata import version

    v = {k: version(k) for k in pinned}
    v["python"] = "%d.%d.%d" % sys.version_info[:3]
    return v


def check_versions(pinned, allow_any, python=None):
    """Exits unless the installed versions are the pinned ones (a local tag such as `+cpu` aside;
    `python` pins Python's version too); with `allow_any` only warns. Returns `versions()`."""
    v = versions(pinned)
    want = dict(pinned, **({"python": python} if python else {}))
    bad = {k: (v[k], w) for k, w in want.items() if v[k].split("+")[0] != w}
    if bad:
        msg = "version mismatch (have, pinned): %r" % bad
        if allow_any:
            print("WARNING:", msg, file=sys.stderr)
        else:
            sys.exit(msg + "\nrerun with --any-version to ignore")
    return v


_threads_set = False


def seed_everything(seed, threads):
    """Seeds Python's, numpy's and torch's generators, and makes torch deterministic on `threads`
    threads. May be called again (a pipeline of several model families reseeds for each); the
    thread counts are set the first time only, as torch allows."""
    global _threads_set
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if not _threads_set:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        _threads_set = True
    torch.use_deterministic_algorithms(True)


def sha256(path):
    """The SHA-256 of a file, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def nonempty_lines(path):
    """The lines of a UTF-8 file that are not blank."""
    with open(path, encoding="utf-8") as f:
        return [line for line in f.read().split("\n") if line.strip()]


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


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def dumps_indented(obj, numbers_inline=False):
    """`json.dumps(indent=1)` with a final newline; with `numbers_inline`, each list of numbers on
    one line."""
    if not numbers_inline:
        return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"
    flat = {}

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            if x and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
                key = f"@@{len(flat)}@@"
                flat[key] = json.dumps(x, separators=(",", ":"))
                return key
            return [walk(v) for v in x]
        return x

    text = json.dumps(walk(obj), indent=1, ensure_ascii=False)
    for key, value in flat.items():
        text = text.replace(f'"{key}"', value, 1)
    return text + "\n"


def dumps_item_per_line(obj):
    """JSON with each item of a list (a case, a merge, an added token) on a line of its own, the
    top two levels of objects indented: reviewable in a diff, a third of the indented size."""

    def lines(value, indent):
        pad = " " * indent
        if isinstance(value, dict) and indent < 2:
            items = [f"{pad} {json.dumps(k)}: {lines(v, indent + 1).lstrip()}" for k, v in value.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(value, list) and value:
            items = [pad + " " + json.dumps(v, ensure_ascii=False) for v in value]
            return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return pad + json.dumps(value, ensure_ascii=False)

    return lines(obj, 0) + "\n"


def dumps_records(obj, record_key):
    """`json.dumps(indent=1)` with each list of numbers, each list of 16-digit hex strings and
    each object whose first key matches the regex `record_key` on one line, and a final newline."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    text = re.sub(r"\[[-0-9.,e\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)
    one_line = lambda m: "{" + re.sub(r"\n\s*", " ", m.group(1)) + "}"
    text = re.sub(r"\{\s*(\"%s\"[^{}]*?)\s*\}" % record_key, one_line, text)
    hex_list = r'\[(\s*"[0-9a-f]{16}",?)+\s*\]'
    text = re.sub(hex_list, lambda m: re.sub(r"\s+", "", m.group(0)), text)
    # The reformatting must not have touched any value (a string such as "[ 1 ]" could look
    # like a list).
    assert json.loads(text) == obj
    return text + "\n"


# --------------------------------------------------------------------------
# The encoder-decoder pipeline (make-seq2seq-fixtures.py and its Marian part,
# fixtures_marian.py): data, SentencePiece training, training loops, generation
# cases and the reference records they share.
# --------------------------------------------------------------------------

# Pinned versions of the encoder-decoder pipeline, in the order meta.json records them.
# sacremoses is Marian's alone (MarianTokenizer's Moses normalizer).
SEQ2SEQ_PINNED = {
    "torch": "2.15.0",
    "transformers": "5.24.0",
    "tokenizers": "0.23.3",
    "sentencepiece": "0.2.3",
    "sacremoses": "0.2.0",
    "safetensors": "0.8.0",
    "numpy": "2.4.6",
    "protobuf": "7.36.2",
}


def seq2seq_pinned(sacremoses):
    return {k: v for k, v in SEQ2SEQ_PINNED.items() if sacremoses or k != "sacremoses"}


class Data:
    """The shared data dir: NTREX ar/en with document ids, and article-ar.txt (non-blank lines,
    stripped)."""

    def __init__(self, shared):
        self.ar = read_lines(shared / "ntrex/ar.txt")
        self.en = read_lines(shared / "ntrex/en.txt")
        self.doc = read_lines(shared / "ntrex/doc_ids.txt")
        assert len(self.ar) == len(self.en) == len(self.doc) == 1997
        self.article = [l.strip() for l in read_lines(shared / "article-ar.txt") if l.strip()]

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


def clean_dir(d, names):
    """Creates `d` and removes the files `names` from it (what a stage is about to rewrite)."""
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (d / n).exists():
            (d / n).unlink()


def train_spm(input_path, prefix, seed, input_name, vocab_size, model_type, coverage, rules=None, **ids):
    """Trains a SentencePiece model single-threaded on every line of `input_path` and returns
    the .model path. Normalization: the rules TSV `rules` if given, else nmt_nfkc. The model proto
    records the input path, the (temporary) output prefix and the rules path; they are pinned
    (`input_name`, the prefix's and the rules file's names) so that reruns give identical bytes."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    norm = dict(normalization_rule_tsv=str(rules)) if rules else dict(normalization_rule_name="nmt_nfkc")
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        input=str(input_path),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=coverage,
        num_threads=1,
        input_sentence_size=0,  # use every sentence, no sampling
        shuffle_input_sentence=False,
        minloglevel=2,
        **norm,
        **ids,
    )
    out = Path(str(prefix) + ".model")
    m = pb.ModelProto()
    m.ParseFromString(out.read_bytes())
    del m.trainer_spec.input[:]
    m.trainer_spec.input.append(input_name)
    m.trainer_spec.model_prefix = Path(prefix).name
    if rules:
        m.normalizer_spec.normalization_rule_tsv = Path(rules).name
    out.write_bytes(m.SerializeToString())
    return out


# ---- models --------------------------------------------------------------------


def bart_shape(d_model, layers, heads, ffn):
    """The size settings of a BART-family config (Bart, Marian, M2M100, MBart), the encoder
    shaped like the decoder."""
    return dict(
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
    )


def nonzero_final_logits_bias(model, seed):
    """final_logits_bias is a (non-trained) buffer, zero in the hub's BART-family models; make it
    non-zero (from a generator of its own) so that implementations that forget it fail."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape, generator=g) * 0.1)


# ---- training ----------------------------------------------------------------


def collate(rows, fill):
    """Right-padded (filled with `fill`) id tensor of `rows`, and its mask."""
    import torch

    n = max(len(r) for r in rows)
    out = torch.full((len(rows), n), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return out, mask


def length_bucketed_batches(n, size, rng, batch, chunk_batches, extra=()):
    """Batches of the example indices 0..n-1 (and `extra`, repeated examples) in a random
    order, sorted by `size(i)` inside chunks of `chunk_batches` batches (less padding = faster
    on CPU), the batches shuffled again."""
    idx = list(range(n)) + list(extra)
    rng.shuffle(idx)
    chunk = batch * chunk_batches
    batches = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c : c + chunk], key=size)
        batches += [part[b : b + batch] for b in range(0, len(part), batch)]
    rng.shuffle(batches)
    return batches


def adamw(model, lr):
    import torch

    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0)


def train_step(model, opt, sched, src, tgt, pad):
    """One optimizer step on source rows `src` and target rows `tgt` (gradients clipped at 1.0);
    returns the batch's mean loss and its number of target tokens."""
    import torch

    input_ids, attn = collate(src, pad)
    labels, _ = collate(tgt, -100)
    out = model(input_ids=input_ids, attention_mask=attn, labels=labels)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return float(out.loss.detach()), int((labels != -100).sum())


def eval_loss(model, src, tgt, pad, bs=64):
    """Mean per-token loss of the model as it is (eval mode: no dropout) over all the rows."""
    import torch

    with torch.no_grad():
        tot, nt = 0.0, 0
        for b in range(0, len(src), bs):
            input_ids, attn = collate(src[b : b + bs], pad)
            labels, _ = collate(tgt[b : b + bs], -100)
            l = model(input_ids=input_ids, attention_mask=attn, labels=labels).loss
            n = int((labels != -100).sum())
            tot += float(l) * n
            nt += n
    return tot / nt


# ---- references --------------------------------------------------------------


def update_meta(path, fields):
    """meta.json: the training record the model stage wrote, updated with the refs stage's fields."""
    meta = json.loads(path.read_text()) if path.exists() else {}
    meta.update(fields)
    write_json(path, meta)
    return meta


def forward_tensors(model, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask=None):
    """The forward reference: the inputs (int64) and the encoder output and logits (f32) of one
    eval-mode forward pass; `decoder_attention_mask` is recorded, not passed (causal mask only)."""
    import torch

    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids)
    fwd = {
        "input_ids": input_ids.to(torch.int64).contiguous(),
        "attention_mask": attention_mask.to(torch.int64).contiguous(),
        "decoder_input_ids": decoder_input_ids.to(torch.int64).contiguous(),
    }
    if decoder_attention_mask is not None:
        fwd["decoder_attention_mask"] = decoder_attention_mask.to(torch.int64).contiguous()
    fwd["encoder_hidden_states"] = out.encoder_last_hidden_state.float().contiguous()
    fwd["logits"] = out.logits.float().contiguous()
    return fwd


GEN_BATCH = 8

# Every generation case of every family: name -> overrides of the family's defaults
# (generation_config.json, and the family's base settings). Each family runs a list of these
# names (and the Marian family records fewer settings, see gen_params' `omit`).
GEN_CASES = {
    "defaults": {},
    "greedy": dict(num_beams=1),
    "beam4": dict(num_beams=4, length_penalty=1.0, early_stopping=False),
    "beam4_lp2.0": dict(num_beams=4, length_penalty=2.0, early_stopping=False),
    "beam4_lp0.5": dict(num_beams=4, length_penalty=0.5, early_stopping=False),
    "beam4_lp0.6": dict(num_beams=4, length_penalty=0.6),
    "beam2_lp0.5": dict(num_beams=2, length_penalty=0.5),
    "beam2_lp0.6": dict(num_beams=2, length_penalty=0.6),
    "beam4_early_stopping": dict(num_beams=4, length_penalty=1.0, early_stopping=True),
    "beam4_early_stopping_never": dict(num_beams=4, length_penalty=1.0, early_stopping="never"),
    "greedy_no_repeat3": dict(num_beams=1, no_repeat_ngram_size=3),
    "beam4_no_repeat3": dict(num_beams=4, no_repeat_ngram_size=3),
    "greedy_repetition1.3": dict(num_beams=1, repetition_penalty=1.3),
    "beam4_repetition1.3": dict(num_beams=4, repetition_penalty=1.3),
    "greedy_min_length12": dict(num_beams=1, min_length=12),
    "beam4_min_length12": dict(num_beams=4, min_length=12),
    "beam4_min_length16": dict(num_beams=4, min_length=16),
    "greedy_max_length10": dict(num_beams=1, max_length=10),
    "beam4_max_length10": dict(num_beams=4, max_length=10),
    "beam4_max_length12": dict(num_beams=4, max_length=12),
    "greedy_max_new_tokens8": dict(num_beams=1, max_new_tokens=8),
    "beam4_no_renormalize": dict(num_beams=4, renormalize_logits=False),
}


def gen_params(gc, over, base=(), name=None, omit=()):
    """The effective value of every generation setting of a case: generation_config `gc`
    (transformers 5.x leaves unset fields as None and fills in the defaults inside generate()),
    then the family's `base` settings (but not a base max_length for the `defaults` case), then
    the case's overrides `over`. `omit`: settings the family does not record (nor pass)."""
    d = lambda v, default: default if v is None else v
    p = dict(
        num_beams=d(gc.num_beams, 1),
        length_penalty=float(d(gc.length_penalty, 1.0)),
        early_stopping=d(gc.early_stopping, False),
        no_repeat_ngram_size=int(d(gc.no_repeat_ngram_size, 0)),
        repetition_penalty=float(d(gc.repetition_penalty, 1.0)),
        max_length=d(gc.max_length, 20),
        min_length=int(d(gc.min_length, 0)),
        batch_size=GEN_BATCH,
        renormalize_logits=bool(d(gc.renormalize_logits, False)),
        forced_bos_token_id=gc.forced_bos_token_id,
        forced_eos_token_id=gc.forced_eos_token_id,
        bad_words_ids=gc.bad_words_ids or [],
        max_new_tokens=None,
    )
    for k in omit:
        del p[k]
    base = dict(base)
    if name == "defaults":
        base.pop("max_length", None)
    p.update(base)
    p.update(over)
    if p.get("max_new_tokens") is not None:
        # encoder-decoder: max_length = decoder start + max_new_tokens
        p["max_length"] = 1 + p["max_new_tokens"]
    p["length_penalty"] = float(p["length_penalty"])
    p["repetition_penalty"] = float(p["repetition_penalty"])
    return p


def gen_kwargs(p):
    """generate()'s keyword arguments for the settings `p`: all of them, explicitly."""
    kw = {k: v for k, v in p.items() if k not in ("batch_size", "max_new_tokens", "bad_words_ids")}
    if p["bad_words_ids"]:
        kw["bad_words_ids"] = p["bad_words_ids"]
    if p.get("max_new_tokens") is not None:
        del kw["max_length"]
        kw["max_new_tokens"] = p["max_new_tokens"]
    kw.update(do_sample=False, num_return_sequences=1)
    return kw


def trim(row, eos):
    """The generated tokens of an HF output row: after the decoder start, up to and including the
    first </s>. (Beam search fills finished rows with `pad_token_id or eos_token_id`: with T5's
    pad id 0 that is </s>, so stripping trailing pads is not enough.)"""
    row = list(row)[1:]
    return row[: row.index(eos) + 1] if eos in row else row


def generate_case(model, tok, texts, params):
    """model.generate(**tok(batch, padding=True), **gen_kwargs(params)) over consecutive batches
    of params['batch_size'] texts: the output rows as HF returns them, their batch_decode, HF's
    sequences_scores (beam search only) and the attention masks of the padded batches."""
    import torch

    kw = gen_kwargs(params)
    n = params["batch_size"]
    out_ids, decoded, scores, masks = [], [], [], []
    with torch.no_grad():
        for b in range(0, len(texts), n):
            enc = tok(texts[b : b + n], return_tensors="pt", padding=True)
            masks += enc["attention_mask"].tolist()
            res = model.generate(**enc, **kw, return_dict_in_generate=True, output_scores=True)
            out_ids += res.sequences.tolist()
            decoded += tok.batch_decode(res.sequences, skip_special_tokens=True)
            if params["num_beams"] > 1:
                scores += res.sequences_scores.tolist()
    return out_ids, decoded, scores, masks


def batched_equals_unbatched(model, tok, texts, rows, params, eos, name):
    """Whether generating each text alone gives the tokens of its row of the batched run."""
    import torch

    kw = gen_kwargs(params)
    same = True
    with torch.no_grad():
        for x, row in zip(texts, rows):
            one = model.generate(**tok([x], return_tensors="pt"), **kw)[0].tolist()
            if trim(one, eos) != trim(row, eos):
                same = False
                print("  batched != unbatched in %s: %r" % (name, x[:40]))
    return same


def min_top2_gap(model, tok, texts, rows, params, start, eos):
    """How close to a tie the greedy paths `rows` (of `texts`) come: the smallest top1 - top2
    logit gap over the steps that were a choice (tokens banned by bad_words_ids left out; a
    forced first token and a forced </s> at max_length skipped). Float noise between
    implementations (~1e-5) must stay well below this for exact parity."""
    import torch

    banned = [w[0] for w in params["bad_words_ids"] if len(w) == 1]
    min_gap = float("inf")
    with torch.no_grad():
        for x, row in zip(texts, rows):
            row = [start] + trim(row, eos)
            lg = model(**tok([x], return_tensors="pt"), decoder_input_ids=torch.tensor([row[:-1]])).logits[0]
            if banned:
                lg[:, banned] = -float("inf")
            if params.get("forced_bos_token_id") is not None:
                lg = lg[1:]
            if params["forced_eos_token_id"] is not None and len(row) >= params["max_length"]:
                lg = lg[:-1]
            if lg.shape[0] == 0:
                continue
            top = lg.topk(2, dim=-1).values
            min_gap = min(min_gap, float((top[:, 0] - top[:, 1]).min()))
    return min_gap


def decode_record(tok, ids):
    """A decode case: the ids and tok.decode of them without and with the special tokens."""
    return {
        "ids": ids,
        "text": tok.decode(ids, skip_special_tokens=True),
        "text_keep_special": tok.decode(ids, skip_special_tokens=False),
    }


def run_stages(stage, tokenizer, model, refs):
    """Runs the stage functions `stage` names (all: the three in order)."""
    for name, fn in (("tokenizer", tokenizer), ("model", model), ("refs", refs)):
        if stage in ("all", name):
            fn()
