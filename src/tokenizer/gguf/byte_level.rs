//! Byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`: Qwen2, Llama 3).
//!
//! The BPE model itself comes from candle's `TokenizerFromGguf`, which reads the vocabulary and
//! merges correctly; the rest of its pipeline differs from the reference, so it is rebuilt here:
//!
//! * candle puts an NFC normalizer on `qwen2` (copied from the Qwen repo's tokenizer.json). The
//!   GGUF reference does not normalize, so decomposed text (`e` + U+0301, `ا` + U+0654) got other
//!   ids than llama.cpp gives.
//! * candle adds every token whose type is not NORMAL as a special token. The UNUSED ones
//!   (`[PAD151665]`…) are then matched whole in text, which llama.cpp and transformers never do,
//!   and USER_DEFINED ones (`<tool_call>`) become special, so `skip_special` decoding dropped them.
//!   The parent module adds the special and user-defined tokens instead.
//! * candle knows four `tokenizer.ggml.pre` values and silently splits any other like GPT-2,
//!   `llama-bpe` (what llama.cpp writes for Llama 3) included; here an unknown one is an error.

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::candle_one_line as one_line;
use crate::{Error, Result};

// Split regexes by `tokenizer.ggml.pre`, verbatim from transformers 5.24
// (integrations/gguf/gguf_tokenizer_mapping.py), which ports llama.cpp's. Only qwen2 is checked
// against a real model (tests/it/gguf/tokenizer.rs); the others are as transformers has them.
const SPLIT_QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SPLIT_QWEN35: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SPLIT_LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SPLIT_TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SPLIT_GPT4O: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The BPE model, pre-tokenizer and decoder of a byte-level vocabulary; `pre` is
/// `tokenizer.ggml.pre`.
pub(super) fn tokenizer(ct: &gguf_file::Content, pre: &str) -> Result<Tokenizer> {
    let split = split_regex(pre)?;
    let built = Tokenizer::from_gguf(ct).map_err(|e| {
        Error::model(format!(
            "cannot build the tokenizer from the GGUF metadata: {}. The file is damaged; \
             download it again",
            one_line(&e)
        ))
    })?;
    let mut inner = Tokenizer::new(built.get_model().clone());
    inner.with_pre_tokenizer(Some(pre_tokenizer(split)?));
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(inner)
}

/// Whether `token` is spelled in the 256-symbol byte alphabet, as every real token of a
/// byte-level vocabulary is. A CONTROL token outside it is a converter mislabel that transformers
/// skips too: adding it would give the vocabulary a token the model has no embedding for.
pub(super) fn spelled_in_alphabet() -> impl Fn(&str) -> bool {
    let alphabet = ByteLevel::alphabet();
    move |token| token.chars().all(|c| alphabet.contains(&c))
}

/// `None`: GPT-2's own splitting (ByteLevel with its built-in regex), as transformers does.
fn split_regex(pre: &str) -> Result<Option<&'static str>> {
    Ok(Some(match pre {
        "default" | "gpt2" | "gpt-2" => return Ok(None),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => SPLIT_QWEN2,
        "qwen35" => SPLIT_QWEN35,
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => SPLIT_LLAMA3,
        "tekken" => SPLIT_TEKKEN,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => SPLIT_GPT4O,
        other => {
            return Err(Error::model(format!(
                "GGUF pre-tokenizer `{other}` (tokenizer.ggml.pre) is not supported; \
                 load the model repo's tokenizer.json instead"
            )))
        }
    }))
}

fn pre_tokenizer(split: Option<&str>) -> Result<PreTokenizerWrapper> {
    let Some(regex) = split else {
        return Ok(ByteLevel::new(false, true, true).into());
    };
    let split = Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| Error::model(format!("cannot compile the pre-tokenizer regex: {e}")))?;
    // The regex has already split the text; ByteLevel only maps bytes to its alphabet.
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ])
    .into())
}
