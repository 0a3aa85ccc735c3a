#!/usr/bin/env python3
"""Build small SentencePiece-vocabulary GGUF files and record transformers' tokenizer of them.

For tests/it/gguf/spm_tokenizer.rs. Run from the repository root (nothing is downloaded):

    /work/venv/fx/bin/python scripts/make-gguf-spm-fixtures.py [--shared ../shared/data]

Pinned versions (the script refuses others unless --any-version is given):

    python        3.11.7
    transformers  5.24.0   (builds the reference tokenizer from the GGUF metadata)
    tokenizers    0.23.3
    torch         2.15.0   (imported by transformers' GGUF reader; CPU only)
    sentencepiece 0.2.3    (trains the vocabulary; its own encoding is compared, for information)
    gguf          0.19.0   (llama.cpp's writer, as its convert script uses it)

What it does:

1. Trains a SentencePiece BPE model (vocabulary 3000, byte fallback, identity normalization,
   digits split, whitespace kept: Llama 2's trainer settings) on NTREX Arabic + English, plus a few
   indented lines so that multi-space pieces (`▁▁`, `▁▁▁▁`) exist as in real vocabularies.
2. Writes that vocabulary as llama.cpp's convert_hf_to_gguf.py does for a SentencePiece model
   (`tokenizer.ggml.model = "llama"`): pieces, scores, types (UNKNOWN, CONTROL for `<s>`, `</s>`,
   `[INST]`, `[/INST]`, BYTE for `<0x00>`..`<0xFF>`), then an added USER_DEFINED `<tool_call>`
   (score -1000) and two UNUSED `[PADn]` fillers, bos/eos/unk ids, add_bos_token = true,
   add_eos_token = false and a chat template. No tensors: transformers needs none for a tokenizer.
   Three files differ only where transformers' converter picks a different builder by
   `general.architecture`:

       llama.gguf   generic (`LlamaTokenizer`: Metaspace, prefix space on the first piece only)
       gemma3.gguf  Gemma: whitespace-only tokens stored as spaces, merges ordered by token
                    position, no prefix space (add_space_prefix = false), `<mask>` added
       phi3.gguf    Phi-3: the prefix space comes from a normalizer; add_bos_token = false

3. Records `AutoTokenizer.from_pretrained(dir, gguf_file=NAME)` on 79 strings and 2 chat prompts.

Output: tests/fixtures/llama-gguf/{llama,gemma3,phi3}.gguf and {llama,gemma3,phi3}.json. The
JSON has the shape of tests/fixtures/qwen-gguf/tokenizer.json (reference cases, NOT a Hugging
Face tokenizer.json):

    model           file name and sha256 of the GGUF it was recorded from
    chat_template   `tokenizer.chat_template` as transformers reads it
    special         bos/eos/unk/pad ids, adds_bos/adds_eos, vocab_size, every added token
    merges          the BPE merges transformers derived, in rank order
    encode          {name, text, ids (add_special_tokens=False), ids_special (True), tokens,
                     decoded (of ids), decoded_special and decoded_skip_special (of ids_special),
                     spm_ids: sentencepiece's own ids, only for text without added tokens}
    partial_decode  {ids, decoded}: prefixes cutting a UTF-8 character, as streaming sees them

llama.json also has `no_prefix_ids` per plain case: sentencepiece's ids with add_dummy_prefix
turned off, which is what llama.cpp gives for a file that says add_space_prefix = false
(transformers ignores that key). Where sentencepiece and transformers disagree is printed; that
is information about transformers, not a failure.

The corpus is NTREX-128 (Microsoft, CC BY-SA 4.0, ../shared/data/ntrex/LICENSE.md); the
vocabulary and the copied lines are derived from it under the same license.
"""

import argparse
import json
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fixture_common  # noqa: E402  (scripts/fixture_common.py)

PINNED = {"transformers": "5.24.0", "tokenizers": "0.23.3", "torch": "2.15.0",
          "sentencepiece": "0.2.3", "gguf": "0.19.0"}
REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "tests/fixtures/llama-gguf"
VOCAB_SIZE = 3000

# llama.cpp's llama_token_type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}"
    "{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
)

# Indented and spaced lines: NTREX has no runs of spaces, real vocabularies have pieces for them.
WHITESPACE_LINES = [
    "def f(x):", "    return x * 2", "        if x:", "            pass", "  - item one",
    "a  b  c", "\tindented", "x = 1;    y = 2", "        ", "    مرحبا    بكم",
]


nonempty_lines = fixture_common.nonempty_lines


def train(shared: pathlib.Path, tmp: pathlib.Path):
    import sentencepiece as spm

    corpus = tmp / "corpus.txt"
    lines = nonempty_lines(shared / "ntrex/ar.txt") + nonempty_lines(shared / "ntrex/en.txt")
    corpus.write_text("\n".join(lines + WHITESPACE_LINES * 40) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp / "spm"),
        vocab_size=VOCAB_SIZE,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=0.9995,  # the rarest letters are left to byte fallback
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        control_symbols=["[INST]", "[/INST]"],
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return tmp / "spm.model"


def vocabulary(sp) -> tuple[list[str], list[float], list[int]]:
    """As convert_hf_to_gguf.py's _create_vocab_sentencepiece, then an added_tokens.json entry."""
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        kind = NORMAL
        if sp.is_unknown(i):
            kind = UNKNOWN
        elif sp.is_control(i):
            kind = CONTROL
        elif sp.is_unused(i):
            kind = UNUSED
        elif sp.is_byte(i):
            kind = BYTE
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(kind)
    # An added token, then the [PADn] fillers convert writes up to the model's vocab_size.
    for token, kind in [("<tool_call>", USER_DEFINED), ("[PAD3001]", UNUSED), ("[PAD3002]", UNUSED)]:
        tokens.append(token)
        scores.append(-1000.0)
        types.append(kind)
    return tokens, scores, types


def write_gguf(path, arch, tokens, scores, types, add_bos, add_space_prefix=None, pad_id=None) -> None:
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    if pad_id is not None:
        w.add_pad_token_id(pad_id)
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(False)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    w.add_chat_template(CHAT_TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def variants(tokens, scores, types) -> dict[str, dict]:
    # Gemma's files name their specials <bos>/<eos>/<pad>/<mask>; under other names transformers'
    # GemmaTokenizer would append its defaults as new tokens.
    gemma = [" " * len(t) if len(t) > 1 and set(t) == {"\u2581"} else t for t in tokens]
    gemma[1:3] = ["<bos>", "<eos>"]
    return {
        "llama": dict(tokens=tokens, scores=scores, types=types, add_bos=True),
        "gemma3": dict(tokens=gemma + ["<mask>", "<pad>"], scores=scores + [0.0, 0.0],
                       types=types + [CONTROL, CONTROL], add_bos=True, add_space_prefix=False,
                       pad_id=len(tokens) + 1),
        "phi3": dict(tokens=tokens, scores=scores, types=types, add_bos=False),
    }


def texts(shared: pathlib.Path) -> list[tuple[str, str]]:
    """(name, text): what prompts of Arabic news contain, and the edges of SentencePiece."""
    ar = nonempty_lines(shared / "ntrex/ar.txt")
    en = nonempty_lines(shared / "ntrex/en.txt")
    article = nonempty_lines(shared / "article-ar.txt")
    cases = [(f"ntrex-ar-{i}", ar[i]) for i in range(0, len(ar), 100)]
    cases += [(f"ntrex-en-{i}", en[i]) for i in range(50, len(en), 200)]
    cases += [(f"article-ar-{i}", line) for i, line in enumerate(article[:4])]
    cases += [
        ("article-ar-paragraphs", "\n\n".join(article[1:5])),
        ("ar-comma-space", "في سوريا والعراق ، مع تكثيف هجماته"),
        ("ar-numbers", "فرضت واشنطن عقوبات على 5 أشخاص في 2023 و12 شخصا، أي 17.5%"),
        ("ar-indic-digits", "عام ٢٠٢٤ قتل ١٢٣ شخصا"),
        ("ar-diacritics", "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ"),
        ("ar-tatweel-marks", "مـــرحبا\u200f بكم\u200c في\u200d الأخبار"),
        ("ar-decomposed", "ا\u0654حمد و\u0654ا\u0653"),
        ("mixed-ar-en", "قال الرئيس Joe Biden إن \"Hamas\" (حماس) ستدفع الثمن - CNN, 2023-10-07."),
        ("mixed-code", "def f(x):\n    return x ** 2  # مربع\n"),
        ("url-email", "https://www.example.com/ar/news?id=42 info@example.org"),
        ("digits", "1234567890 3.14159 1,000,000 007"),
        ("en-contractions", "It's, we'LL, they'Ve, I'd, you'RE"),
        ("en-decomposed", "cafe\u0301 nai\u0308ve"),
        ("emoji", "👍🏽 مرحبا 🇸🇦 😀😀 👨‍👩‍👧‍👦 ❤️"),
        ("rare-scripts", "中文 日本語 한국어 हिन्दी ελληνικά ∑∫√ ß ŉ"),
        ("rare-only", "漢"),
        ("replacement-char", "a\ufffdb \U0010ffff"),
        ("metaspace-char", "a\u2581b \u2581 \u2581\u2581c"),
        ("byte-token-text", "<0x41> <0xFF><0x0A>"),
        ("whitespace-runs", "a    b\t\tc   \u00a0  d"),
        ("leading-space", " leading"),
        ("leading-spaces", "   leading and trailing   "),
        ("trailing-space", "trailing "),
        ("indent", "        indented by eight"),
        ("newlines", "line1\nline2\n\n\nline3\r\nline4\n"),
        ("leading-newline", "\nafter a newline"),
        ("only-newlines", "\n\n"),
        ("space-newline", " \n \n"),
        ("tab", "\t"),
        ("empty", ""),
        ("single-space", " "),
        ("two-spaces", "  "),
        ("single-char", "x"),
        ("special-bos-eos", "<s>hello</s>"),
        ("special-spaced", "<s> hello </s> world"),
        ("special-start", "</s>"),
        ("special-unk", "an <unk> token"),
        ("special-inst", "[INST] ما هي عاصمة المغرب؟ [/INST]"),
        ("special-inst-tight", "[INST]hi[/INST]ok"),
        ("special-adjacent", "<s><s></s>[INST]"),
        ("user-defined-token", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>"),
        ("user-defined-tight", "x<tool_call>y"),
        ("unused-pad-token", "[PAD3001] [PAD3002]"),
        ("near-special", "<s <s/> < s> [INST [/INST"),
        ("gemma-specials", "<bos>a <mask> b<pad><eos>"),
    ]
    return cases


def chat_prompts(tok, shared: pathlib.Path) -> list[tuple[str, str]]:
    ar = nonempty_lines(shared / "ntrex/ar.txt")
    convs = [
        [{"role": "user", "content": "Translate into English: " + ar[0]}],
        [{"role": "user", "content": "ما هي عاصمة المغرب؟"}, {"role": "assistant", "content": "الرباط."},
         {"role": "user", "content": "And of Egypt?"}],
    ]
    return [(f"chat-{i}", tok.apply_chat_template(m, tokenize=False)) for i, m in enumerate(convs)]


ADDED_IN_TEXT = ("<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<tool_call>", "<bos>", "<eos>", "<mask>", "<pad>")


def record(path: pathlib.Path, shared: pathlib.Path, sp, no_prefix_sp=None) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    cases = texts(shared) + chat_prompts(tok, shared)
    encode, differ = [], []
    for name, text in cases:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        ids_special = tok(text, add_special_tokens=True)["input_ids"]
        case = {
            "name": name,
            "text": text,
            "ids": ids,
            "ids_special": ids_special,
            "tokens": tok.convert_ids_to_tokens(ids),
            "decoded": tok.decode(ids),
            "decoded_special": tok.decode(ids_special),
            "decoded_skip_special": tok.decode(ids_special, skip_special_tokens=True),
            "spm_ids": None,
        }
        if not any(t in text for t in ADDED_IN_TEXT):
            case["spm_ids"] = sp.encode(text)
            if case["spm_ids"] != ids:
                differ.append(name)
            if no_prefix_sp is not None:
                case["no_prefix_ids"] = no_prefix_sp.encode(text)
        encode.append(case)
    plain = sum(c["spm_ids"] is not None for c in encode)
    print(f"{path.name}: sentencepiece gives transformers' ids for {plain - len(differ)}/{plain} plain "
          f"strings; differs on: {', '.join(differ) or 'none'}")

    partial = []
    for name in ("emoji", "rare-scripts"):
        ids = next(c["ids"] for c in encode if c["name"] == name)
        for k in range(1, min(len(ids), 10)):
            partial.append({"ids": ids[:k], "decoded": tok.decode(ids[:k])})

    backend = json.loads(tok.backend_tokenizer.to_str())
    added = sorted(tok.added_tokens_decoder.items())
    return {
        "model": {"file": path.name, "sha256": fixture_common.sha256(path)},
        "chat_template": tok.chat_template,
        "special": {
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "unk_token_id": tok.unk_token_id,
            "pad_token_id": tok.pad_token_id,
            "adds_bos": tok.add_bos_token,
            "adds_eos": tok.add_eos_token,
            "vocab_size": len(tok),
            "added_tokens": [{"id": i, "content": t.content, "special": t.special} for i, t in added],
        },
        "merges": [" ".join(m) for m in backend["model"]["merges"]],
        "encode": encode,
        "partial_decode": partial,
    }


def without_dummy_prefix(model_path: pathlib.Path):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model_path.read_bytes())
    proto.normalizer_spec.add_dummy_prefix = False
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=pathlib.Path, default=REPO.parent / "shared/data")
    parser.add_argument("--any-version", action="store_true")
    args = parser.parse_args()
    fixture_common.check_versions(PINNED, args.any_version)

    import sentencepiece as spm

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = train(args.shared, pathlib.Path(tmp))
        sp = spm.SentencePieceProcessor(model_file=str(model_path))
        no_prefix = without_dummy_prefix(model_path)
    tokens, scores, types = vocabulary(sp)
    for arch, v in variants(tokens, scores, types).items():
        path = OUT / f"{arch}.gguf"
        write_gguf(path, arch, v["tokens"], v["scores"], v["types"], v["add_bos"],
                   v.get("add_space_prefix"), v.get("pad_id"))
        # Gemma's own sentencepiece model has no dummy prefix either.
        spm_reference = no_prefix if arch == "gemma3" else sp
        ref = record(path, args.shared, spm_reference, no_prefix if arch == "llama" else None)
        out = OUT / f"{arch}.json"
        fixture_common.write_text(out, fixture_common.dumps_item_per_line(ref))
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes) and {out.relative_to(REPO)}: "
              f"{len(ref['encode'])} encode cases, {len(ref['merges'])} merges")


if __name__ == "__main__":
    main()
