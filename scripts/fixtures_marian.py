"""The Marian family of the fixture pipeline, scripts/make-seq2seq-fixtures.py: the committed
Marian fixtures for tarjama's parity tests. Not a script of its own; run from the repository root:

    /work/venv/fx/bin/python scripts/make-seq2seq-fixtures.py --only marian [--shared ../shared/data] [--stage all]

Pinned versions: those of the pipeline (its docstring, fixture_common.SEQ2SEQ_PINNED), sacremoses
included. What this family shares with the others (data, SentencePiece training, the training
step, generation cases, reference records) is in scripts/fixture_common.py.

Outputs (everything is rebuilt from ../shared/data; nothing is downloaded):

    tests/fixtures/marian-tiny/        a tiny trained OPUS-MT-shaped Marian model
        source.spm target.spm vocab.json tokenizer_config.json
        config.json generation_config.json model.safetensors
    tests/fixtures/marian-tiny-ref/    reference outputs of HF transformers
        tokenizer.json moses.json forward.safetensors generate.json meta.json
        pytorch_model.bin (the same weights in f16, in the legacy torch format)

Stages: `tokenizer` (spm training, vocab, tokenizer.json, moses.json),
`model` (training, save), `refs` (forward.safetensors, generate.json,
meta.json). `all` runs the three in order. `model` and `refs` need the output
of the earlier stages in tests/fixtures. About 11 minutes on one thread of a
busy 2-core machine.

Things worth knowing about transformers 5.24 (checked in its source):
  * MarianTokenizer builds sacremoses' MosesPunctNormalizer but tok(text) never
    calls it: the raw text goes to source.spm. moses.json records the
    normalizer on its own.
  * tok.decode() with a joint vocab (separate_vocabs=False) decodes the pieces
    with source.spm by default (use_source_tokenizer defaults to True).
  * Beam search length penalty: score = sum(logprobs) / gen_len**length_penalty
    where gen_len = number of generated tokens including the final </s> and
    excluding the decoder start token.
Determinism: spm training is single-threaded with a fixed seed; torch is
seeded and uses deterministic algorithms. Reruns on the same machine give
identical files; other CPUs may give slightly different weights (float
reductions), which is fine: the fixtures are whatever is committed.
"""

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_common  # noqa: E402  (scripts/fixture_common.py)

PINNED = fixture_common.seq2seq_pinned(sacremoses=True)

SEED = 20261129

REPO = Path.cwd()
OUT_MODEL = REPO / "tests/fixtures/marian-tiny"
OUT_REF = REPO / "tests/fixtures/marian-tiny-ref"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def versions():
    return fixture_common.versions(PINNED)


write_json = fixture_common.write_json


def load_tokenizer():
    from transformers import MarianTokenizer

    return MarianTokenizer.from_pretrained(str(OUT_MODEL))


# --------------------------------------------------------------------------
# stage 1: tokenizer
# --------------------------------------------------------------------------


def train_spm(input_path, prefix, coverage):
    """source.spm / target.spm: a unigram model of 2000 pieces on one side of NTREX, nmt_nfkc."""
    return fixture_common.train_spm(
        input_path, prefix, SEED, "ntrex/" + Path(input_path).name, 2000, "unigram", coverage
    )


def build_vocab(src_model, tgt_model):
    import sentencepiece as spm

    vocab = {"</s>": 0, "<unk>": 1}
    for path in (src_model, tgt_model):
        sp = spm.SentencePieceProcessor(model_file=str(path))
        for i in range(sp.get_piece_size()):
            if sp.is_control(i) or sp.is_unknown(i):
                continue
            p = sp.id_to_piece(i)
            if p not in vocab:
                vocab[p] = len(vocab)
    vocab["<pad>"] = len(vocab)
    return vocab


def pick_spread(n_total, n_pick):
    # 1-indexed line numbers, evenly spread, always including lines 1..3
    step = n_total / n_pick
    picks = sorted(set([1, 2, 3] + [1 + int(i * step) for i in range(n_pick)]))
    return picks


def tricky_strings(tok, ar):
    """Hand-made edge cases for encode. Ordinary text only (no literal
    special tokens / language codes; those go into encode_special)."""
    sp = tok.spm_source
    # a character that source.spm does not know but target.spm has as a piece
    # of its own: MarianTokenizer maps the *surface* string of the unknown
    # piece through vocab.json, so it does NOT become <unk>.
    vocab = tok.encoder
    src_unknown_but_in_vocab = []
    for ch in "QXZqxzéèàçüöäñJjVvWwKk":
        ids = sp.encode(ch)
        if any(sp.is_unknown(i) for i in ids) and ch in vocab:
            src_unknown_but_in_vocab.append(ch)
    # characters source.spm treats as unknown (coverage 0.9995 drops them)
    unknown_chars = []
    for ch in "漢字語ДЖЯ¤¶₪ΩΣλ":
        if all(sp.is_unknown(i) or sp.id_to_piece(i) == "▁" for i in sp.encode(ch)):
            unknown_chars.append(ch)
    assert len(unknown_chars) >= 3, unknown_chars

    long_line = " ".join(ar[i] for i in range(100, 108))
    s = [
        "",
        "   ",
        " ",
        "\t",
        "\n",
        "مرحبا",
        "  مرحبا بالعالم  ",
        " مرحبا",
        "مرحبا ",
        "مرحبا    بالعالم",
        "مرحبا\tبالعالم",
        "مرحبا\t\tبالعالم\t",
        "مرحبا\u00a0بالعالم",
        "سعر البرميل 3.5 دولار و 12,000 برميل و 0.75%",
        "في عام ١٢٣ و ٢٠٢٤ و ٣٫٥ و ٥٪",
        "رقم الهاتف 0123456789",
        "قال رئيس Microsoft إن شركة OpenAI تعمل مع iPhone",
        "زوروا https://www.example.com/path?a=1&b=2 لمزيد من المعلومات",
        "راسلونا على info@example.org",
        "نحن نعيد بدء حملة #مهمة_واحدة و # متعددة البلدان",
        "في سوريا والعراق ، مع تكثيف هجماته ، الأربعاء ،",
        "في سوريا والعراق، مع تكثيف هجماته؛ هل؟ نعم!",
        "“نحن نعيد بدء حملة” وأنه “في الأسابيع المقبلة“.”.",
        "«مرحبا» قال ‹هو›",
        "‘اقتباس مفرد’ و ‚هذا‘ و „ذلك“",
        "من 2017 – 2019 — وما بعد",
        "انتظر… ثم ...",
        "حالة 😀👍🏽 ممتازة ❤️",
        "مُحَمَّدٌ رَسُولُ اللَّهِ",
        "كـــتـــاب جـمـيـل",
        "لا\u200dإله\u200c و\u200bكلمة",
        "\ufefb \ufef5 \ufdf2 \ufe8d\ufe8e",
        "\u0627\u0644\u0633\u0644\u0627\u0645 \u0639\u0644\u064a\u0643\u0645",
        "".join(unknown_chars),
        "نص " + "".join(unknown_chars[:2]) + " نص",
        "ΩΣλ مختلطة",
        "(أعضاء في برلمان ويلز) .",
        "( مرحبا )",
        "نسبة 5 % و ٥ % فقط",
        "نسبة 5\u00a0% و 10\u00a0000",
        "A",
        "a b c",
        "Hello, world! This is English text.",
        "ﺍﻟﻌﺮﺑﻴﺔ",
        "\u202bنص\u202c \u200fمن اليمين\u200e",
        "١٢٣٤٥٦٧٨٩٠",
        "۱۲۳ فارسی",
        "ـ",
        "؟؟؟ !!! ...",
        "x" * 40,
        "ضضضضضضضضضضضضضضضضضضضضضض",
        "\u3000مسافة\u2002عريضة\u2009رفيعة",
        "Ａｒａｂｉｃ ＡＢＣ １２３",
        "½ ² ℃ ﬁ",
        "line1\r\nline2",
        long_line,
    ]
    for ch in src_unknown_but_in_vocab[:3]:
        s.append("الحرف %s هنا" % ch)
        s.append(ch)
    return s, src_unknown_but_in_vocab, unknown_chars


def moses_tricky():
    return [
        "",
        " ",
        "   leading and trailing   ",
        "a\rb\r\nc",
        "f(x)=y",
        "( spaced ) .",
        "(a) , (b) ! (c) ? (d) : (e) ; (f) .",
        "x  ( y )  z",
        "50 % off, ٥٠ % خصم, 50  %",
        "time : 10 ; note :",
        "`single backtick' and ``double''",
        "he said ''hi'' then",
        "„German“ “English” «French» ‹angle›",
        "« spaced » \u00a0«\u00a0nbsp\u00a0»\u00a0 «\u00a0a \u00a0»",
        "en–dash em—dash em — dash",
        "acute´s and ´´double acute",
        "don‘t don’t ‘quoted’ ‚low‘ rock’n’roll",
        "ÉA’B 1’2 a’ ’b",
        "wait… what…",
        "''''",
        "\u00a0%  nº\u00a0 5 \u00a0: 20\u00a0ºC 3\u00a0cm why\u00a0? wow\u00a0! x\u00a0; a,\u00a0b",
        "1\u00a0000 and ١\u00a0٢ and a\u00a0b",
        "1\u00a0000\u00a0000",
        'the "quoted", text "end".',
        'the "quoted", text "end"...',
        "قال \"مرحبا\"، ثم \"وداعا\".",
        "في سوريا والعراق ، مع تكثيف هجماته ، الأربعاء ،",
        "“نحن نعيد بدء حملة # مهمة واحدة # متعددة البلدان” وأنه “في الأسابيع المقبلة سنبدأ“.”.",
        "multiple     spaces\there",
        "tabs\t\tstay\t",
        "\u3000ideographic\u2002en\u2009thin\u200bzw",
        "trailing nbsp\u00a0",
        "\u00a0leading nbsp",
        "\x1c\x1dinfo separators\x1e\x1f",
        "line\u2028sep\u2029para\x85nel",
        "，。、：？！（）；「」０１２３％",
        "١٢٣ % و 3 %",
        "(١٢٣) ,",
        "a ) . b ) , c ) ;",
        "a ) ) . b",
        "🙂 ( emoji ) 🙂",
        "x'' y ``z''",
        "quote ’’ double",
        "´´´",
        "— — —",
        "nº\u00a0\u00a05",
    ]


def stage_tokenizer(data, shared):
    import sentencepiece as spm  # noqa: F401
    from transformers import MarianTokenizer

    ar, en = data.ar, data.en
    OUT_MODEL.mkdir(parents=True, exist_ok=True)
    OUT_REF.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        src = train_spm(shared / "ntrex/ar.txt", td / "source", 0.9995)
        tgt = train_spm(shared / "ntrex/en.txt", td / "target", 1.0)
        vocab = build_vocab(src, tgt)
        vocab_path = td / "vocab.json"
        write_json(vocab_path, vocab)
        tok = MarianTokenizer(
            str(src), str(tgt), str(vocab_path), source_lang="ar", target_lang="en"
        )
        fixture_common.clean_dir(
            OUT_MODEL,
            ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json", "special_tokens_map.json"],
        )
        tok.save_pretrained(str(OUT_MODEL))

    tok = load_tokenizer()
    pad_id, eos_id, unk_id = tok.pad_token_id, tok.eos_token_id, tok.unk_token_id
    assert (eos_id, unk_id, pad_id) == (0, 1, len(tok.encoder) - 1), (eos_id, unk_id, pad_id)
    print("vocab size", len(tok.encoder), "pad", pad_id)

    # ---- encode / pieces ---------------------------------------------------
    lines = pick_spread(len(ar), 56)
    texts = [ar[i - 1] for i in lines]
    tricky, unk_in_vocab, unknown_chars = tricky_strings(tok, ar)
    texts += tricky
    encode, pieces = [], []
    for t in texts:
        ids = tok(t)["input_ids"]
        # transformers 5.x MarianTokenizer does NOT run the Moses normalizer in
        # tok(): tokenize() -> (split on literal special tokens) -> _tokenize()
        # -> spm_source.encode(text). So the spm input is the raw text.
        p = tok.spm_source.encode(t, out_type=str)
        assert tok.tokenize(t) == p, (t, tok.tokenize(t), p)
        assert ids == [tok.encoder.get(x, unk_id) for x in p] + [eos_id], t
        encode.append({"text": t, "ids": ids})
        pieces.append({"text": t, "pieces": p})

    # literal special tokens / language codes inside the text: the base
    # tokenizer splits on them before spm (encode each segment separately).
    special_texts = [
        "مرحبا </s> بالعالم",
        "مرحبا</s>بالعالم",
        "<unk>",
        "نص <pad> نص",
        "</s>",
        ">>ara<< مرحبا",
        ">>eng<<",
        "<s> مرحبا </s>",
    ]
    encode_special = []
    for t in special_texts:
        encode_special.append(
            {"text": t, "ids": tok(t)["input_ids"], "tokens": tok.tokenize(t)}
        )

    # ---- decode ------------------------------------------------------------
    inv = {v: k for k, v in tok.encoder.items()}
    tgt_sp = tok.spm_target
    src_sp = tok.spm_source
    src_only = [
        i
        for p, i in tok.encoder.items()
        if i not in (0, 1, pad_id) and tgt_sp.piece_to_id(p) == tgt_sp.unk_id()
    ]
    tgt_only = [
        i
        for p, i in tok.encoder.items()
        if i not in (0, 1, pad_id) and src_sp.piece_to_id(p) == src_sp.unk_id()
    ]
    shared_ids = [
        i
        for p, i in tok.encoder.items()
        if i not in (0, 1, pad_id)
        and src_sp.piece_to_id(p) != src_sp.unk_id()
        and tgt_sp.piece_to_id(p) != tgt_sp.unk_id()
    ]
    rng = random.Random(SEED)
    id_seqs = []
    for ln in pick_spread(len(en), 22):
        id_seqs.append(tok(text_target=en[ln - 1])["input_ids"])
    e5 = tok(text_target=en[4])["input_ids"]
    e9 = tok(text_target=en[8])["input_ids"]
    id_seqs += [
        [],
        [eos_id],
        [pad_id],
        [unk_id],
        [pad_id] + e5,
        e5[:3] + [unk_id] + e5[3:],
        e5[:4] + [eos_id] + e5[4:],
        e5[:2] + [pad_id, pad_id] + e5[2:] + [pad_id],
        e5[:-1] + e9,
        rng.sample(src_only, 6) + [eos_id],
        e5[:3] + rng.sample(src_only, 3) + e5[3:],
        tok("مرحبا بالعالم في سوريا والعراق")["input_ids"],
        rng.sample(tgt_only, 8),
        rng.sample(shared_ids, 8),
        [tok.encoder["▁"]] * 3 + e5,
        e5 + [tok.encoder["▁"]] * 2 + [eos_id],
        [tok.encoder.get(p, unk_id) for p in tgt_sp.encode(" Hello ,  world . ( x ) ' s", out_type=str)],
    ]
    for chars in unk_in_vocab[:1]:
        id_seqs.append(tok(text_target="a " + chars + " b")["input_ids"])
    decode = []
    for ids in id_seqs:
        rec = fixture_common.decode_record(tok, ids)
        rec["text_target_spm"] = tok.decode(ids, skip_special_tokens=True, use_source_tokenizer=False)
        rec["tokens"] = tok.convert_ids_to_tokens(ids)
        decode.append(rec)

    write_json(
        OUT_REF / "tokenizer.json",
        {
            "about": (
                "MarianTokenizer (transformers %s) on tests/fixtures/marian-tiny. "
                "encode.ids = tok(text)['input_ids'] (trailing </s> included); "
                "pieces = spm_source.encode(text, out_type=str) on the RAW text "
                "(transformers 5.x does not apply the Moses punct normalizer in tok(); "
                "see moses.json for that normalizer on its own). "
                "encode_special: literal special tokens / >>lang<< codes in the text "
                "(tokens = tok.tokenize(text)). "
                "decode.text = tok.decode(ids, skip_special_tokens=True) (NOTE: with a "
                "joint vocab transformers 5.x decodes with source.spm by default); "
                "text_keep_special = skip_special_tokens=False; "
                "text_target_spm = use_source_tokenizer=False (target.spm); "
                "tokens = convert_ids_to_tokens(ids)." % versions()["transformers"]
            ),
            "ids": {"eos": eos_id, "unk": unk_id, "pad": pad_id, "vocab_size": len(tok.encoder)},
            "encode": encode,
            "encode_special": encode_special,
            "pieces": pieces,
            "decode": decode,
        },
    )
    print("tokenizer.json: %d encode, %d decode" % (len(encode), len(decode)))

    # ---- moses -------------------------------------------------------------
    from sacremoses import MosesPunctNormalizer

    norm_ar = MosesPunctNormalizer("ar").normalize
    norm_en = MosesPunctNormalizer("en").normalize
    # the exact callable MarianTokenizer builds (lang = source_lang = "ar")
    assert tok.punc_normalizer.__self__.substitutions == MosesPunctNormalizer("ar").substitutions
    cases = [{"text": t, "normalized": tok.normalize(t)} for t in ar]
    cases += [{"text": t, "normalized": tok.normalize(t)} for t in en[:200]]
    cases += [{"text": t, "normalized": tok.normalize(t)} for t in moses_tricky()]
    cases += [{"text": t, "normalized": tok.normalize(t)} for t in tricky]
    for c in cases:
        if c["text"]:
            assert c["normalized"] == norm_ar(c["text"])
    en_cases = [{"text": t, "normalized": norm_en(t)} for t in moses_tricky() if t]
    write_json(
        OUT_REF / "moses.json",
        {
            "about": (
                "sacremoses %s MosesPunctNormalizer(lang='ar') defaults (penn=True, "
                "norm_quote_commas=True, norm_numbers=True, no pre/post steps), via "
                "MarianTokenizer.normalize (which maps '' to ''). NOTE: transformers 5.x "
                "MarianTokenizer does not call this in tok(). cases_en: lang='en' "
                "(adds the quote-before-comma rule), for reference only."
                % versions()["sacremoses"]
            ),
            "lang": "ar",
            "cases": cases,
            "cases_en": en_cases,
        },
    )
    print("moses.json: %d cases" % len(cases))


# --------------------------------------------------------------------------
# stage 2: model
# --------------------------------------------------------------------------

D_MODEL = 128
MAX_POS = 256
TRAIN_LOSS_TARGET = 0.8
MAX_EPOCHS = 120
BATCH = 32
WARMUP = 200
LR = 1e-3
TRAIN_LINES = 640  # train on ntrex lines 1..640 (CPU budget); the rest is unseen
OVERSAMPLE_FIRST = 10  # lines 1..10 are repeated in the extra epochs, if needed
EXTRA_EPOCHS_MAX = 30
CHECK_LINES = 30  # meta.json: which of lines 1..30 greedy reproduces


def make_config(tok):
    from transformers import MarianConfig

    V = len(tok.encoder)
    pad = tok.pad_token_id
    return MarianConfig(
        vocab_size=V,
        decoder_vocab_size=V,
        **fixture_common.bart_shape(D_MODEL, 2, 4, 256),
        activation_function="swish",
        scale_embedding=True,
        static_position_embeddings=True,
        normalize_before=False,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        max_position_embeddings=MAX_POS,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        dropout=0.1,
        attention_dropout=0.0,
        activation_dropout=0.0,
        architectures=["MarianMTModel"],
    )


def make_generation_config(tok):
    from transformers import GenerationConfig

    pad = tok.pad_token_id
    # shaped like Helsinki-NLP/opus-mt-*'s generation_config.json
    return GenerationConfig(
        bad_words_ids=[[pad]],
        decoder_start_token_id=pad,
        eos_token_id=0,
        forced_eos_token_id=0,
        pad_token_id=pad,
        max_length=128,
        num_beams=4,
        renormalize_logits=True,
    )


def greedy_texts(model, tok, texts, bs=16):
    import torch

    out = []
    with torch.no_grad():
        for b in range(0, len(texts), bs):
            enc = tok(texts[b : b + bs], return_tensors="pt", padding=True)
            gen = model.generate(**enc, num_beams=1, do_sample=False, max_length=128)
            out += tok.batch_decode(gen, skip_special_tokens=True)
    return out


def half_state_dict(model):
    """The state dict in f16, tied tensors still shared, so that the legacy-format copy stays
    small (2.5 MB instead of 5): the fixtures must stay under 20 MB. Loading it also checks
    that tarjama converts f16 checkpoints to the f32 it runs in."""
    halves = {}
    out = {}
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            key = (v.data_ptr(), tuple(v.shape))
            out[k] = halves.setdefault(key, v.half())
        else:
            out[k] = v
    return out


def stage_model(data):
    import torch
    from transformers import MarianMTModel

    ar, en = data.ar, data.en
    tok = load_tokenizer()
    pad = tok.pad_token_id
    src = [tok(a)["input_ids"] for a in ar[:TRAIN_LINES]]
    tgt = [tok(text_target=e)["input_ids"] for e in en[:TRAIN_LINES]]
    assert max(map(len, src)) < MAX_POS and max(map(len, tgt)) < MAX_POS

    torch.manual_seed(SEED)
    model = MarianMTModel(make_config(tok))
    model.generation_config = make_generation_config(tok)
    # set before training, so that the model learns around it
    fixture_common.nonzero_final_logits_bias(model, SEED + 1)

    opt = fixture_common.adamw(model, LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / WARMUP))

    def run_epoch(ep, extra=()):
        """One pass over the training lines (and `extra`), in length-bucketed batches (chunks of
        50 batches) in an order of the epoch's own seed."""
        model.train()
        rng = random.Random(SEED * 1000 + ep)
        tot_loss, tot_tok = 0.0, 0
        size = lambda i: len(src[i]) + len(tgt[i])
        for bidx in fixture_common.length_bucketed_batches(len(src), size, rng, BATCH, 50, extra):
            loss, ntok = fixture_common.train_step(
                model, opt, sched, [src[i] for i in bidx], [tgt[i] for i in bidx], pad
            )
            tot_loss += loss * ntok
            tot_tok += ntok
        return tot_loss / tot_tok

    t0 = time.time()
    history = []
    for ep in range(MAX_EPOCHS):
        loss = run_epoch(ep)
        history.append(round(loss, 4))
        print("epoch %d loss %.4f  %.0fs" % (ep, loss, time.time() - t0), flush=True)
        if loss < TRAIN_LOSS_TARGET:
            break
    model.eval()
    extra_epochs = 0
    while greedy_texts(model, tok, [ar[2]])[0] != en[2]:
        assert extra_epochs < EXTRA_EPOCHS_MAX, "line 3 still not reproduced"
        loss = run_epoch(MAX_EPOCHS + extra_epochs, extra=list(range(OVERSAMPLE_FIRST)) * 8)
        extra_epochs += 1
        history.append(round(loss, 4))
        print("extra epoch %d loss %.4f  %.0fs" % (extra_epochs, loss, time.time() - t0), flush=True)
        model.eval()
    train_time = time.time() - t0
    model.eval()

    # loss of the final model in eval mode (no dropout) over the whole set
    eval_loss = fixture_common.eval_loss(model, src, tgt, pad)

    fixture_common.clean_dir(OUT_MODEL, ["model.safetensors", "config.json", "generation_config.json"])
    model.save_pretrained(str(OUT_MODEL))
    torch.save(half_state_dict(model), OUT_REF / "pytorch_model.bin")
    write_json(
        OUT_REF / "meta.json",
        {
            "training": {
            "train_lines": "ntrex 1-%d" % TRAIN_LINES,
            "torch_threads": torch.get_num_threads(),
            "epochs": len(history) - extra_epochs,
            "extra_epochs_oversampling_lines_1_10": extra_epochs,
            "epoch_train_loss": history,
            "final_train_loss": history[-1],
            "final_eval_loss": round(eval_loss, 4),
            "train_time_s": round(train_time, 1),
            "optimizer": "AdamW lr %g betas (0.9, 0.98) wd 0, linear warmup %d steps then constant, "
            "grad clip 1.0, batch %d (length-bucketed), dropout 0.1" % (LR, WARMUP, BATCH),
            }
        },
    )
    print("train: loss %.4f (eval %.4f), %.0fs" % (history[-1], eval_loss, train_time))


# --------------------------------------------------------------------------
# stage 3: references
# --------------------------------------------------------------------------

# fixture_common.GEN_CASES run here, in this order (defaults = generation_config.json;
# every case sets num_beams explicitly)
CASES = [
    "greedy",
    "beam4",
    "beam4_lp0.6",
    "beam4_lp2.0",
    "beam4_early_stopping",
    "beam4_early_stopping_never",
    "greedy_no_repeat3",
    "beam4_no_repeat3",
    "greedy_repetition1.3",
    "beam4_repetition1.3",
    "beam4_min_length12",
    "greedy_max_length10",
    "beam4_max_length10",
    "beam4_no_renormalize",
    "beam2_lp0.6",
]
# settings generate.json's params do not record here (nor pass): none of the cases sets them
PARAMS_OMITTED = ("forced_bos_token_id", "max_new_tokens")


def gen_inputs(data):
    ar, art = data.ar, data.article
    longest = max(range(len(ar)), key=lambda i: len(ar[i]))
    inputs = [ar[i] for i in range(12)]  # lines 1..12 (training data)
    inputs += [ar[i - 1] for i in (50, 200, 401, 777, 1000, 1500, 1990)]
    inputs += [
        ar[2].replace("بسبب ", ""),  # line 3, one word dropped
        ar[0].replace("قلقهم", "غضبهم"),  # line 1, one word replaced
        ar[24].rstrip(".") + "!",  # line 25, end punctuation changed
        " ".join(ar[10].split()[: len(ar[10].split()) // 2]),  # line 11, first half
        ar[25],  # a short line (26)
        "مرحبا",
        "شكرا جزيلا",
        ar[longest],  # the longest ntrex line
        art[1],  # headline of article-ar.txt (not in ntrex)
        art[4],  # a sentence of article-ar.txt (not in ntrex)
        "ذهب الولد إلى المدرسة صباح اليوم.",
        "",
        "   ",
    ]
    assert len(inputs) == 32, len(inputs)
    return inputs


def stage_refs(data):
    import torch
    from safetensors.torch import save_file
    from transformers import MarianMTModel

    ar, en = data.ar, data.en
    tok = load_tokenizer()
    pad, eos, unk = tok.pad_token_id, tok.eos_token_id, tok.unk_token_id
    model = MarianMTModel.from_pretrained(str(OUT_MODEL), attn_implementation="eager")
    model.eval()
    gc = model.generation_config
    start = model.config.decoder_start_token_id
    assert gc.bad_words_ids == [[pad]] and gc.num_beams == 4 and gc.max_length == 128, gc

    # the legacy-format copy must hold the same weights, rounded to f16
    legacy = torch.load(OUT_REF / "pytorch_model.bin", map_location="cpu", weights_only=True)
    sd = model.state_dict()
    for k, v in legacy.items():
        assert torch.equal(v, sd[k].half() if sd[k].is_floating_point() else sd[k]), k
    assert float(model.final_logits_bias.abs().sum()) > 0
    from safetensors import safe_open

    with safe_open(str(OUT_MODEL / "model.safetensors"), "pt") as f:
        saved_keys = sorted(f.keys())
    assert "final_logits_bias" in saved_keys, saved_keys

    # ---- forward ------------------------------------------------------------
    src_len = lambda i: len(tok(ar[i])["input_ids"])
    tgt_len = lambda i: len(tok(text_target=en[i])["input_ids"])
    picks = []
    for lo, hi in ((4, 7), (8, 11), (12, 15), (17, 22)):
        i = next(
            i for i in range(400) if lo <= src_len(i) <= hi and tgt_len(i) <= 20 and i not in picks
        )
        picks.append(i)
    enc = tok([ar[i] for i in picks], text_target=[en[i] for i in picks], return_tensors="pt", padding=True)
    labels = enc["labels"]
    from transformers.models.marian.modeling_marian import shift_tokens_right

    dec_in = shift_tokens_right(labels, pad, start)
    fwd = fixture_common.forward_tensors(model, enc["input_ids"], enc["attention_mask"], dec_in)
    save_file(
        fwd,
        str(OUT_REF / "forward.safetensors"),
        # a single metadata key: safetensors writes the metadata map in hash
        # order, so several keys would make the file bytes vary between runs
        metadata={
            "about": "ntrex lines %s (ar -> en); eval mode, f32, eager attention; "
            "decoder_input_ids = English labels shifted right (start = pad id), padded with pad; "
            "NO decoder attention mask was passed (causal mask only), so logits at decoder pad "
            "positions are valid too" % ",".join(str(i + 1) for i in picks),
        },
    )
    print("forward: lines", [i + 1 for i in picks], "S", fwd["input_ids"].shape, "T", dec_in.shape)

    # ---- generate -----------------------------------------------------------
    inputs = gen_inputs(data)
    cases, unbatched_equal = [], {}
    for name in CASES:
        params = fixture_common.gen_params(gc, fixture_common.GEN_CASES[name], omit=PARAMS_OMITTED)
        out_ids, texts, seq_scores, _ = fixture_common.generate_case(model, tok, inputs, params)
        same = fixture_common.batched_equals_unbatched(model, tok, inputs, out_ids, params, eos, name)
        if name == "greedy":
            assert same, "greedy: batched and unbatched outputs differ"
        unbatched_equal[name] = same
        cases.append(
            {
                "name": name,
                "params": params,
                "inputs": inputs,
                "input_ids": [tok(x)["input_ids"] for x in inputs],
                "output_ids": out_ids,
                "texts": texts,
            }
        )
        if seq_scores:
            # beam search only: HF's sequences_scores (sum of processed log-probs
            # / gen_len ** length_penalty), for debugging; compare with a tolerance
            cases[-1]["sequence_scores"] = seq_scores
        lens = [len(fixture_common.trim(r, eos)) for r in out_ids]
        print("  %-28s lens %s" % (name, lens))

    by = {c["name"]: c for c in cases}
    min_gap = fixture_common.min_top2_gap(
        model, tok, inputs, by["greedy"]["output_ids"], by["greedy"]["params"], start, eos
    )
    print("greedy: smallest top-2 logit gap %.4f" % min_gap)
    assert min_gap > 1e-3, min_gap
    greedy_vs_beam = sum(
        a != b for a, b in zip(by["greedy"]["texts"], by["beam4"]["texts"])
    )
    assert greedy_vs_beam > 0, "greedy and beam4 agree on every input"
    assert len(set(by["greedy"]["texts"])) > len(inputs) // 2, "outputs do not vary with the input"
    ends = [r for r in by["greedy"]["output_ids"] if eos in r]
    assert len(set(len(fixture_common.trim(r, eos)) for r in ends)) > 5, "lengths do not vary"
    write_json(
        OUT_REF / "generate.json",
        {
            "about": (
                "model.generate(**tok(batch, return_tensors='pt', padding=True), **params, "
                "do_sample=False, num_return_sequences=1) over consecutive batches of "
                "params.batch_size inputs (transformers %s, CPU f32, eager attention). "
                "params: the effective value of each of these settings, all passed explicitly "
                "to generate() (everything else comes from generation_config.json: eos 0, "
                "pad = decoder start = ids.pad). output_ids: rows as "
                "HF returns them: leading decoder start (= pad) and trailing pad up to the "
                "longest row of the batch. texts: batch_decode(skip_special_tokens=True). "
                "sequence_scores (beam cases only): HF's sequences_scores, f32, for debugging."
                % versions()["transformers"]
            ),
            "ids": {"eos": eos, "unk": unk, "pad": pad, "decoder_start": start},
            "cases": cases,
        },
    )

    # ---- meta ---------------------------------------------------------------
    n = CHECK_LINES
    greedy = greedy_texts(model, tok, ar[:n])
    reproduced = [i + 1 for i in range(n) if greedy[i] == en[i]]
    with torch.no_grad():
        beam = []
        for b in range(0, n, fixture_common.GEN_BATCH):
            g = model.generate(**tok(ar[b : b + fixture_common.GEN_BATCH], return_tensors="pt", padding=True))
            beam += tok.batch_decode(g, skip_special_tokens=True)
    reproduced_beam = [i + 1 for i in range(n) if beam[i] == en[i]]
    assert 3 in reproduced, "greedy does not reproduce line 3"
    fixture_common.update_meta(
        OUT_REF / "meta.json",
        {
            "versions": versions(),
            "seed": SEED,
            "ids": {"eos": eos, "unk": unk, "pad": pad, "vocab_size": len(tok.encoder)},
            "greedy_reproduces_ntrex_lines": reproduced,
            "beam4_default_config_reproduces_ntrex_lines": reproduced_beam,
            "checked_lines": "1-%d" % n,
            "greedy_vs_beam4_differ_on_inputs": greedy_vs_beam,
            "greedy_case_min_top2_logit_gap": round(min_gap, 5),
            "batched_equals_unbatched": unbatched_equal,
            "forward_ntrex_lines": [i + 1 for i in picks],
            "model_safetensors_keys": saved_keys,
            "pytorch_model_bin_keys": sorted(legacy.keys()),
        },
    )
    print("greedy reproduces lines", reproduced)
    print("beam4 reproduces lines", reproduced_beam)


# --------------------------------------------------------------------------
# the family's part of the pipeline
# --------------------------------------------------------------------------


def run(shared, stage, threads):
    """Runs `stage` (all, tokenizer, model or refs) from a fresh seed, as a process of its own
    would: the pipeline has checked the versions."""
    fixture_common.seed_everything(SEED, threads)
    t0 = time.time()
    data = fixture_common.Data(shared)
    fixture_common.run_stages(
        stage,
        tokenizer=lambda: stage_tokenizer(data, shared),
        model=lambda: stage_model(data),
        refs=lambda: stage_refs(data),
    )
    print("marian: done in %.1fs" % (time.time() - t0))
