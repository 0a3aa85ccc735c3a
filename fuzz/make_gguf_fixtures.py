#!/usr/bin/env python3
"""Writes the hand-made GGUF files of tests/fixtures/fuzz/gguf_metadata/: two small valid
tokenizer files (also the fuzzer's seeds) and one malformed file per problem that
`validate_gguf` must reject. tests/it/fuzz_regressions.rs checks each one's error."""

import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/fuzz/gguf_metadata"
U8, U32, I32, F32, BOOL, STRING, ARRAY = 0, 4, 5, 6, 7, 8, 9


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(ty, v):
    if ty == STRING:
        return string(v)
    if ty == ARRAY:
        elem, items = v
        return struct.pack("<IQ", elem, len(items)) + b"".join(value(elem, x) for x in items)
    return struct.pack({U8: "<B", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B"}[ty], v)


def gguf(metadata, tensors=(), version=3):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, ty, v in metadata:
        out += string(key) + struct.pack("<I", ty) + value(ty, v)
    for name, dims, dtype, offset in tensors:
        out += string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", dtype, offset)
    return out


def write(name, data):
    (OUT / name).write_bytes(data)


OUT.mkdir(parents=True, exist_ok=True)

# A byte-level BPE vocabulary: the printable ASCII bytes, two merges and two control tokens.
ascii_tokens = [chr(c) for c in range(0x21, 0x7F)] + ["Ġ"]
gpt2_tokens = ascii_tokens + ["he", "hel", "<|im_end|>", "<|endoftext|>"]
n = len(gpt2_tokens)
write("valid-gpt2.gguf", gguf([
    ("general.architecture", STRING, "qwen2"),
    ("tokenizer.ggml.model", STRING, "gpt2"),
    ("tokenizer.ggml.pre", STRING, "qwen2"),
    ("tokenizer.ggml.tokens", ARRAY, (STRING, gpt2_tokens)),
    ("tokenizer.ggml.token_type", ARRAY, (I32, [1] * (n - 2) + [3, 3])),
    ("tokenizer.ggml.merges", ARRAY, (STRING, ["h e", "he l"])),
    ("tokenizer.ggml.eos_token_id", U32, n - 2),
], [("token_embd.weight", [32, 4], 0, 0)]))

# A SentencePiece vocabulary with scores and the byte pieces its fallback needs.
spm_tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁", "▁h", "he"]
m = len(spm_tokens)
write("valid-llama.gguf", gguf([
    ("general.architecture", STRING, "llama"),
    ("tokenizer.ggml.model", STRING, "llama"),
    ("tokenizer.ggml.tokens", ARRAY, (STRING, spm_tokens)),
    ("tokenizer.ggml.scores", ARRAY, (F32, [0.0] * (m - 3) + [-1.0, -2.0, -3.0])),
    ("tokenizer.ggml.token_type", ARRAY, (I32, [2, 3, 3] + [6] * 256 + [1, 1, 1])),
    ("tokenizer.ggml.bos_token_id", U32, 1),
    ("tokenizer.ggml.eos_token_id", U32, 2),
    ("general.alignment", U32, 64),
]))

arch = ("general.architecture", STRING, "llama")
write("wrong-magic.gguf", b"GGML" + gguf([arch])[4:])
write("truncated-header.gguf", gguf([arch])[:12])
# A key that claims 2^63 bytes.
write("absurd-string-length.gguf",
      b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 63) + b"general.name")
# A token list that claims 2^40 strings.
write("absurd-array-length.gguf",
      b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + string("tokenizer.ggml.tokens")
      + struct.pack("<IIQ", ARRAY, STRING, 1 << 40) + string("a"))
write("absurd-tensor-count.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1 << 50, 1) + gguf([arch])[24:])
write("absurd-tensor-dims.gguf", gguf([arch], [("t", [1 << 40, 1 << 40], 0, 0)]))
write("unknown-value-type.gguf",
      b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + string("general.name") + struct.pack("<IQ", 13, 0))
# Arrays three deep: [[[1]]].
write("nested-arrays.gguf", gguf([("x", ARRAY, (ARRAY, [(ARRAY, [(U8, [1])])]))]))
# candle rounds the tensor data offset up to a multiple of this: zero divides by zero.
write("zero-alignment.gguf", gguf([arch, ("general.alignment", U32, 0)]))
