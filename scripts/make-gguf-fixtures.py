#!/usr/bin/env python3
"""Record the reference tokenization of the real GGUF test model for tests/it/gguf/tokenizer.rs.

Run from the repository root, after scripts/fetch-test-model:

    /work/venv/fx/bin/python scripts/make-gguf-fixtures.py [--model PATH] [--shared ../shared/data]

Pinned versions (the script refuses others unless --any-version is given):

    python        3.11.7
    transformers  5.24.0   (its GGUF tokenizer reader is its own: the `gguf` package is not needed)
    tokenizers    0.23.3
    torch         2.15.0   (imported by transformers' GGUF reader; CPU only)

Output: tests/fixtures/qwen-gguf/tokenizer.json (named like marian-tiny-ref/tokenizer.json: it
holds reference cases, it is NOT a Hugging Face tokenizer.json), with

    model           file name and sha256 of the GGUF it was recorded from
    chat_template   `tokenizer.chat_template` as transformers reads it
    special         bos/eos/pad ids, whether encoding adds a BOS, and every added token
    encode          {name, text, ids, tokens, decoded, decoded_skip_special}
    partial_decode  {ids, decoded}: prefixes cutting a UTF-8 character, as streaming sees them

The reference is `AutoTokenizer.from_pretrained(dir, gguf_file=NAME)`, i.e. the tokenizer
transformers builds from the same GGUF metadata tarjama reads, not the model repo's
tokenizer.json. The two differ: the repo's applies NFC, the GGUF one (like llama.cpp) does not.
Ids are recorded with add_special_tokens=False; the script checks that True gives the same ids
(Qwen2.5's GGUF has add_bos_token = false, so no BOS is added either way).
"""

import argparse
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fixture_common  # noqa: E402  (scripts/fixture_common.py)

PINNED = {"transformers": "5.24.0", "tokenizers": "0.23.3", "torch": "2.15.0"}
MODEL_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "tests/fixtures/qwen-gguf/tokenizer.json"


def default_model() -> pathlib.Path:
    # Same lookup as scripts/fetch-test-model and tests/it/gguf/tokenizer.rs.
    base = os.environ.get("TARJAMA_TEST_MODELS")
    if not base:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(cache, "tarjama", "test-models")
    return pathlib.Path(base) / MODEL_NAME


nonempty_lines = fixture_common.nonempty_lines


def texts(shared: pathlib.Path) -> list[tuple[str, str]]:
    """(name, text) pairs: what a translation/summary prompt of Arabic news will contain."""
    ar = nonempty_lines(shared / "ntrex/ar.txt")
    en = nonempty_lines(shared / "ntrex/en.txt")
    article_text = (shared / "article-ar.txt").read_text(encoding="utf-8")
    article = nonempty_lines(shared / "article-ar.txt")
    cases = []
    # Spread over the whole file so many articles (names, numbers, quotes) are covered.
    cases += [(f"ntrex-ar-{i}", ar[i]) for i in range(0, len(ar), 100)]
    cases += [(f"article-ar-{i}", line) for i, line in enumerate(article[:14])]
    cases += [
        ("article-ar-whole", article_text),  # blank lines, curly quotes, hashtag, ` ،`
        ("ar-comma-space", "في سوريا والعراق ، مع تكثيف هجماته"),
        ("ar-curly-quotes", "“نحن نعيد بدء حملة # مهمة واحدة # متعددة البلدان” وأنه “في الأسابيع”."),
        ("ar-numbers", "فرضت واشنطن عقوبات على 5 أشخاص في 2023 و12 شخصا، أي 17.5%"),
        ("ar-indic-digits", "عام ٢٠٢٤ قتل ١٢٣ شخصا"),
        ("ar-diacritics", "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ"),
        ("ar-tatweel-marks", "مـــرحبا\u200f بكم\u200c في\u200d الأخبار"),
        ("ar-decomposed", "ا\u0654حمد و\u0654ا\u0653"),  # NFC would compose these: reference does not
    ]
    cases += [(f"ntrex-en-{i}", en[i]) for i in range(0, len(en), 90)]
    cases += [
        ("en-contractions", "It's, we'LL, they'Ve, I'd, you'RE, 'ſ"),
        ("en-decomposed", "cafe\u0301 nai\u0308ve"),
        ("mixed-ar-en", "قال الرئيس Joe Biden إن \"Hamas\" (حماس) ستدفع الثمن - CNN, 2023-10-07."),
        ("mixed-code", "def f(x):\n    return x ** 2  # مربع\n"),
        ("url-email", "https://www.example.com/ar/news?id=42 info@example.org"),
        ("emoji", "👍🏽 مرحبا 🇸🇦 😀😀 👨‍👩‍👧‍👦 ❤️"),
        ("digits", "1234567890 3.14159 1,000,000 007"),
        ("whitespace-runs", "a    b\t\tc   \u00a0  d"),
        ("leading-trailing", "   leading and trailing   "),
        ("newlines", "line1\nline2\n\n\nline3\r\nline4\n"),
        ("only-newlines", "\n\n"),
        ("space-newline", " \n \n"),
        ("empty", ""),
        ("single-space", " "),
        ("special-in-text", "before<|im_end|>after<|endoftext|><|im_start|>"),
        ("user-defined-token", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>"),
        ("unused-pad-token", "[PAD151665] [PAD151935]"),  # type UNUSED: not matched whole
        ("near-special", "<|im_start |> <|im_start|"),
    ]
    return cases


SYSTEM_TRANSLATE = "You are a professional translator. Translate the user's Arabic text into English."
SYSTEM_SUMMARY = "Summarize the following Arabic news article in three English sentences."


def chat_prompts(tok, shared: pathlib.Path) -> list[tuple[str, str]]:
    ar = nonempty_lines(shared / "ntrex/ar.txt")
    article = nonempty_lines(shared / "article-ar.txt")
    convs = [
        [SYSTEM_TRANSLATE, ar[0]],
        [SYSTEM_TRANSLATE, article[3]],
        [SYSTEM_SUMMARY, "\n\n".join(article[1:8])],
        ["أنت مساعد مفيد.", "ما هي عاصمة المغرب؟"],
        [SYSTEM_TRANSLATE, "Text with a literal <|im_end|> inside and\nnew lines.\n"],
    ]
    out = []
    for i, (system, user) in enumerate(convs):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The prompt shape the Rust side will build itself; fail loudly if the template differs.
        expected = (f"<|im_start|>system\n{system}<|im_end|>\n"
                    f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
        if text != expected:
            sys.exit(f"chat template rendered an unexpected prompt:\n{text!r}")
        out.append((f"chat-{i}", text))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=default_model())
    parser.add_argument("--shared", type=pathlib.Path, default=REPO.parent / "shared/data")
    parser.add_argument("--any-version", action="store_true")
    args = parser.parse_args()
    fixture_common.check_versions(PINNED, args.any_version)
    if not args.model.is_file():
        sys.exit(f"{args.model} not found; run scripts/fetch-test-model first")

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(args.model.parent), gguf_file=args.model.name)
    cases = texts(args.shared) + chat_prompts(tok, args.shared)
    encode = []
    for name, text in cases:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if tok(text, add_special_tokens=True)["input_ids"] != ids:
            sys.exit(f"{name}: add_special_tokens=True adds tokens; record both then")
        encode.append({
            "name": name,
            "text": text,
            "ids": ids,
            "tokens": tok.convert_ids_to_tokens(ids),
            "decoded": tok.decode(ids),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })

    # Streaming decodes prefixes of a reply: some end inside a multi-byte character.
    partial = []
    for name in ("emoji", "ar-diacritics", "article-ar-1"):
        ids = next(c["ids"] for c in encode if c["name"] == name)
        for k in range(1, min(len(ids), 8)):
            partial.append({"ids": ids[:k], "decoded": tok.decode(ids[:k])})

    added = sorted(tok.added_tokens_decoder.items())
    ref = {
        "model": {"file": args.model.name, "sha256": fixture_common.sha256(args.model)},
        "chat_template": tok.chat_template,
        "special": {
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
            "adds_bos": False,
            "vocab_size": len(tok),
            "added_tokens": [{"id": i, "content": t.content, "special": t.special} for i, t in added],
        },
        "encode": encode,
        "partial_decode": partial,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fixture_common.write_text(OUT, fixture_common.dumps_indented(ref))
    print(f"wrote {OUT.relative_to(REPO)}: {len(encode)} encode cases, {len(partial)} partial decodes")


if __name__ == "__main__":
    main()
