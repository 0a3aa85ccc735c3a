"""Reference side of scripts/bench-translate: builds random models shaped like real checkpoints
and times Hugging Face transformers (PyTorch, fp32) on the same work as tarjama.

    python scripts/bench_translate.py build MODEL_DIR                 # opus-mt-ar-en shape
    python scripts/bench_translate.py build-tc-big MODEL_DIR          # opus-mt-tc-big-ar-en shape
    python scripts/bench_translate.py build-nllb MODEL_DIR            # nllb-200-distilled-600M shape
    python scripts/bench_translate.py build-distilbart MODEL_DIR      # distilbart-cnn-12-6 shape
    python scripts/bench_translate.py article INPUT TOKENIZER_DIR TOKENS OUT   # one long line
    python scripts/bench_translate.py run MODEL_DIR INPUT LINES TOKENS BATCH BEAMS
        (on a GPU with TARJAMA_BENCH_DEVICE=cuda, TARJAMA_BENCH_DTYPE=float32|bfloat16|float16)
"""
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from transformers import (AutoModelForSeq2SeqLM, AutoTokenizer, BartConfig,
                          BartForConditionalGeneration, M2M100Config,
                          M2M100ForConditionalGeneration, MarianConfig, MarianMTModel)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
TINY = FIXTURES / "marian-tiny"
# The shapes of the two Arabic-English Marian checkpoints: Helsinki-NLP/opus-mt-ar-en
# (transformer-base) and Helsinki-NLP/opus-mt-tc-big-ar-en, tarjama's default (transformer-big).
MARIAN_SHAPES = {
    "opus-mt-ar-en": dict(vocab=62834, d_model=512, heads=8, ffn=2048, activation="swish"),
    "opus-mt-tc-big-ar-en": dict(vocab=61109, d_model=1024, heads=16, ffn=4096, activation="relu"),
}


def build(out: Path, shape: str = "opus-mt-ar-en"):
    vocab_size, d_model, heads, ffn, activation = MARIAN_SHAPES[shape].values()
    out.mkdir(parents=True, exist_ok=True)
    # The fixture's SentencePiece models, with vocab.json padded to the real model's size so the
    # output projection has the real cost. Extra entries are never produced by the tokenizer.
    vocab = json.loads((TINY / "vocab.json").read_text())
    pieces = [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if p != "<pad>"]
    pieces += [f"<unused{i}>" for i in range(vocab_size - 1 - len(pieces))] + ["<pad>"]
    (out / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}, ensure_ascii=False))
    for name in ("source.spm", "target.spm", "tokenizer_config.json"):
        shutil.copy(TINY / name, out / name)
    pad = vocab_size - 1
    config = MarianConfig(
        vocab_size=vocab_size, decoder_vocab_size=vocab_size, d_model=d_model, encoder_layers=6,
        decoder_layers=6, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, activation_function=activation,
        max_position_embeddings=512, scale_embedding=True,
        pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0, forced_eos_token_id=0,
        num_beams=4, max_length=512, bad_words_ids=[[pad]], share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)


def copy_tokenizer(fixture: str, out: Path):
    # The fixture's tokenizer: it only produces ids below its own small vocabulary, which the
    # bigger random model accepts; the output projection still has the real model's cost.
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FIXTURES / fixture / name, out / name)


def build_nllb(out: Path):
    """facebook/nllb-200-distilled-600M's shape: 12+12 pre-norm layers, d_model 1024, vocab 256206."""
    copy_tokenizer("nllb-tiny", out)
    tiny = json.loads((FIXTURES / "nllb-tiny" / "config.json").read_text())
    config = M2M100Config(
        vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12,
        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
        decoder_ffn_dim=4096, activation_function="relu", max_position_embeddings=1024,
        scale_embedding=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, forced_bos_token_id=tiny.get("forced_bos_token_id"),
    )
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).eval().save_pretrained(out, safe_serialization=True)


def build_distilbart(out: Path):
    """sshleifer/distilbart-cnn-12-6's shape: 12 encoder and 6 decoder layers, d_model 1024."""
    copy_tokenizer("bart-tiny", out)
    config = BartConfig(
        vocab_size=50264, d_model=1024, encoder_layers=12, decoder_layers=6,
        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
        decoder_ffn_dim=4096, max_position_embeddings=1024, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).eval().save_pretrained(out, safe_serialization=True)


def article(input_path, tokenizer_dir, tokens, out):
    """Joins ntrex English lines into one line of at least TOKENS tokens of the tokenizer."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = ""
    for line in Path(input_path).read_text(encoding="utf-8").splitlines():
        text = f"{text} {line}".strip()
        if len(tok(text)["input_ids"]) >= tokens:
            break
    Path(out).write_text(text + "\n", encoding="utf-8")


def run(model_dir, input_path, lines, tokens, batch, beams):
    # TARJAMA_BENCH_DEVICE=cuda and TARJAMA_BENCH_DTYPE=bfloat16|float16 for the GPU check.
    device = os.environ.get("TARJAMA_BENCH_DEVICE", "cpu")
    dtype = getattr(torch, os.environ.get("TARJAMA_BENCH_DTYPE", "float32"))
    torch.set_grad_enabled(False)
    load = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=dtype).eval().to(device)
    load_s = time.perf_counter() - load
    sentences = Path(input_path).read_text(encoding="utf-8").splitlines()[:lines]
    start = time.perf_counter()
    generated = 0
    for i in range(0, len(sentences), batch):
        enc = tok(sentences[i : i + batch], return_tensors="pt", padding=True).to(device)
        out = model.generate(
            **enc, num_beams=beams, do_sample=False, min_length=tokens + 1, max_length=tokens + 1,
            early_stopping=False, num_return_sequences=1,
        )
        generated += int((out[:, 1:] != model.config.pad_token_id).sum())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    secs = time.perf_counter() - start
    print(json.dumps({"system": f"transformers {device} {str(dtype).removeprefix('torch.')}", "lines": len(sentences), "tokens": generated,
                      "seconds": round(secs, 3), "tokens_per_s": round(generated / secs, 1),
                      "load_s": round(load_s, 3), "peak_rss_mb": peak_rss_mb(),
                      "torch_threads": torch.get_num_threads()}))


def peak_rss_mb():
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_ct2(model_dir, input_path, lines, tokens, batch, beams, compute_type, out_ids=None):
    """CTranslate2 on the same model, converted once to a directory next to it (per weight type),
    with the same tokenization and exactly `tokens` output tokens per line."""
    import ctranslate2

    ct2_dir = Path(str(model_dir).rstrip("/") + "-ct2-" + compute_type)
    if not (ct2_dir / "model.bin").is_file():
        # CTranslate2 4.8 reads the Marian vocabulary through tokenizer.get_vocab(), whose order
        # changed in transformers 5; read it from vocab.json in id order instead (the converter
        # then drops the trailing <pad> as it intends).
        from ctranslate2.converters import transformers as ct2_transformers

        def marian_vocabulary(self, model, tokenizer):
            vocab = json.loads((Path(model_dir) / "vocab.json").read_text(encoding="utf-8"))
            tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
            return tokens[:-1] if tokens[-1] == "<pad>" else tokens

        ct2_transformers.MarianMTLoader.get_vocabulary = marian_vocabulary
        quantization = None if compute_type == "float32" else compute_type
        ctranslate2.converters.TransformersConverter(str(model_dir)).convert(
            str(ct2_dir), quantization=quantization, force=True
        )
    load = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    threads = len(os.sched_getaffinity(0))
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type=compute_type,
                                        intra_threads=threads, inter_threads=1)
    load_s = time.perf_counter() - load
    sentences = Path(input_path).read_text(encoding="utf-8").splitlines()[:lines]
    start = time.perf_counter()
    generated = 0
    all_ids = []
    for i in range(0, len(sentences), batch):
        source = [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in sentences[i : i + batch]]
        results = translator.translate_batch(
            source, beam_size=beams, min_decoding_length=tokens, max_decoding_length=tokens,
            length_penalty=1.0, return_scores=False, max_batch_size=batch,
        )
        for r in results:
            ids = tok.convert_tokens_to_ids(r.hypotheses[0])
            all_ids.append(ids)
            generated += len(ids)
    secs = time.perf_counter() - start
    if out_ids:
        Path(out_ids).write_text(json.dumps(all_ids))
    print(json.dumps({"system": "ctranslate2 " + compute_type, "lines": len(sentences), "tokens": generated,
                      "seconds": round(secs, 3), "tokens_per_s": round(generated / secs, 1),
                      "load_s": round(load_s, 3), "peak_rss_mb": peak_rss_mb(), "threads": threads}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build":
        build(Path(sys.argv[2]))
    elif command == "build-tc-big":
        build(Path(sys.argv[2]), "opus-mt-tc-big-ar-en")
    elif command == "build-nllb":
        build_nllb(Path(sys.argv[2]))
    elif command == "build-distilbart":
        build_distilbart(Path(sys.argv[2]))
    elif command == "article":
        article(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif command == "run-ct2":
        run_ct2(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]), *sys.argv[8:])
    else:
        run(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]))
