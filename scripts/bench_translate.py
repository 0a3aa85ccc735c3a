"""Reference side of scripts/bench-translate: builds the opus-mt-ar-en-shaped random model and
times Hugging Face transformers (PyTorch, fp32) on the same work as tarjama.

    python scripts/bench_translate.py build MODEL_DIR
    python scripts/bench_translate.py run MODEL_DIR INPUT LINES TOKENS BATCH BEAMS
"""
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "fixtures" / "marian-tiny"
VOCAB = 62834  # Helsinki-NLP/opus-mt-ar-en


def build(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    # The fixture's SentencePiece models, with vocab.json padded to opus-mt-ar-en's size so the
    # output projection has the real cost. Extra entries are never produced by the tokenizer.
    vocab = json.loads((TINY / "vocab.json").read_text())
    pieces = [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if p != "<pad>"]
    pieces += [f"<unused{i}>" for i in range(VOCAB - 1 - len(pieces))] + ["<pad>"]
    (out / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}, ensure_ascii=False))
    for name in ("source.spm", "target.spm", "tokenizer_config.json"):
        shutil.copy(TINY / name, out / name)
    pad = VOCAB - 1
    config = MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=512, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        activation_function="swish", max_position_embeddings=512, scale_embedding=True,
        pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0, forced_eos_token_id=0,
        num_beams=4, max_length=512, bad_words_ids=[[pad]], share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)


def run(model_dir, input_path, lines, tokens, batch, beams):
    torch.set_grad_enabled(False)
    load = time.perf_counter()
    tok = MarianTokenizer.from_pretrained(model_dir)
    model = MarianMTModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    load_s = time.perf_counter() - load
    sentences = Path(input_path).read_text(encoding="utf-8").splitlines()[:lines]
    start = time.perf_counter()
    generated = 0
    for i in range(0, len(sentences), batch):
        enc = tok(sentences[i : i + batch], return_tensors="pt", padding=True)
        out = model.generate(
            **enc, num_beams=beams, do_sample=False, min_length=tokens + 1, max_length=tokens + 1,
            early_stopping=False, num_return_sequences=1,
        )
        generated += int((out[:, 1:] != model.config.pad_token_id).sum())
    secs = time.perf_counter() - start
    print(json.dumps({"system": "transformers", "lines": len(sentences), "tokens": generated,
                      "seconds": round(secs, 3), "tokens_per_s": round(generated / secs, 1),
                      "load_s": round(load_s, 3), "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(Path(sys.argv[2]))
    else:
        run(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8]))
