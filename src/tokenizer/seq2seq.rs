//! The tokenizer of an encoder-decoder model: Marian's SentencePiece files, or a `tokenizers`
//! pipeline (a `tokenizer.json` of BART, NLLB/M2M100, mBART or T5, or T5's `spiece.model` alone),
//! with the language codes multilingual models put around the text.

use std::path::Path;

use tokenizers::Tokenizer;

use super::marian::clean_up_tokenization;
use super::spm::t5_spiece;
use super::MarianTokenizer;
use crate::{Error, Result};

/// Language codes of the multilingual translation models, as their vocabularies spell them:
/// NLLB-200 (FLORES-200 codes), M2M100, then mBART-50.
const ARABIC_CODES: &[&str] = &["arb_Arab", "__ar__", "ar_AR"];
const ENGLISH_CODES: &[&str] = &["eng_Latn", "__en__", "en_XX"];

/// Model types whose repos may carry only `spiece.model`, and T5Tokenizer's default number of
/// sentinel tokens when tokenizer_config.json does not give `extra_ids`.
const T5_TYPES: &[&str] = &["t5", "mt5"];
const T5_EXTRA_IDS: u64 = 100;

/// Model types whose inputs start with the source language code and whose outputs start with
/// the target language code.
const LANGUAGE_CODED: &[&str] = &["m2m_100", "mbart"];

pub enum Seq2SeqTokenizer {
    Marian(MarianTokenizer),
    Pipeline(PipelineTokenizer),
}

/// A `tokenizers` pipeline with what transformers' tokenizer class adds around it.
pub struct PipelineTokenizer {
    inner: Tokenizer,
    /// NLLB/M2M100: `[source language code] text </s>`, built here because the file's own
    /// post-processor holds whatever language the repo was saved with.
    language_wrap: Option<(u32, u32)>,
    /// Text put before every input, such as T5's `summarize: ` or MADLAD's `<2en> `.
    pub text_prefix: String,
    pad: u32,
    eos: u32,
    /// transformers' `clean_up_tokenization_spaces` (" ." → "." and the like) on decode.
    clean_up_spaces: bool,
}

impl Seq2SeqTokenizer {
    /// Loads the tokenizer of the model in `dir`: `tokenizer.json` when present, else T5's
    /// `spiece.model`, else Marian's files. `model_type` comes from config.json; M2M100/NLLB and mBART inputs get the Arabic
    /// code.
    pub fn from_dir(dir: &Path, model_type: &str, config: &serde_json::Value) -> Result<Self> {
        let tokenizer_config = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .unwrap_or_default();
        let path = dir.join("tokenizer.json");
        let spiece = dir.join("spiece.model");
        let inner = if path.is_file() {
            Tokenizer::from_file(&path).map_err(|e| {
                Error::model(format!(
                    "{} is not a readable tokenizer ({e}): download the model again",
                    path.display()
                ))
            })?
        } else if T5_TYPES.contains(&model_type) && spiece.is_file() {
            let extra_ids = tokenizer_config
                .get("extra_ids")
                .and_then(|v| v.as_u64())
                .unwrap_or(T5_EXTRA_IDS) as usize;
            t5_spiece::from_spiece(&spiece, extra_ids)?
        } else {
            return Ok(Self::Marian(MarianTokenizer::from_dir(dir)?));
        };
        let id = |key: &str| config.get(key).and_then(|v| v.as_u64()).map(|v| v as u32);
        let pad = id("pad_token_id").unwrap_or(0);
        let eos = id("eos_token_id").unwrap_or(1);
        let language_wrap = if LANGUAGE_CODED.contains(&model_type) {
            let source = first_known(&inner, ARABIC_CODES).ok_or_else(|| {
                Error::model(format!(
                    "{} is a multilingual model without an Arabic source code ({}) in its vocabulary: it cannot translate Arabic",
                    dir.display(),
                    ARABIC_CODES.join(" or ")
                ))
            })?;
            Some((source, eos))
        } else {
            None
        };
        Ok(Self::Pipeline(PipelineTokenizer {
            inner,
            language_wrap,
            text_prefix: String::new(),
            pad,
            eos,
            clean_up_spaces: tokenizer_config
                .get("clean_up_tokenization_spaces")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        }))
    }

    /// The token the decoder must start the translation with, for models that write the target
    /// language first (NLLB's `eng_Latn`).
    pub fn english_code(&self) -> Option<u32> {
        match self {
            Self::Pipeline(t) if t.language_wrap.is_some() => first_known(&t.inner, ENGLISH_CODES),
            _ => None,
        }
    }

    /// MADLAD-400's way of naming the output language: a `<2en>` tag before the source text.
    pub fn target_language_tag(&self) -> Option<String> {
        match self {
            Self::Pipeline(t) if t.inner.token_to_id("<2en>").is_some() => Some("<2en> ".into()),
            _ => None,
        }
    }

    /// Sets a text prefix put before every input (T5 task prefixes). Marian has none.
    pub fn set_text_prefix(&mut self, prefix: &str) {
        if let Self::Pipeline(t) = self {
            t.text_prefix = prefix.to_string();
        }
    }

    /// Input ids as the model reads them, special tokens included.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Self::Marian(t) => t.encode(text),
            Self::Pipeline(t) => t.encode(text),
        }
    }

    pub fn count_tokens(&self, text: &str) -> usize {
        match self {
            Self::Marian(t) => t.count_tokens(text),
            Self::Pipeline(t) => t.encode(text).len(),
        }
    }

    /// Text of generated ids, special tokens dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Self::Marian(t) => t.decode(ids),
            Self::Pipeline(t) => t.decode(ids),
        }
    }

    pub fn pad_id(&self) -> u32 {
        match self {
            Self::Marian(t) => t.pad_id(),
            Self::Pipeline(t) => t.pad,
        }
    }

    pub fn eos_id(&self) -> u32 {
        match self {
            Self::Marian(t) => t.eos_id(),
            Self::Pipeline(t) => t.eos,
        }
    }
}

impl PipelineTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        let text = format!("{}{text}", self.text_prefix);
        let add_special = self.language_wrap.is_none();
        // Encoding a string cannot fail for a tokenizer that loaded; an empty input is the
        // harmless answer if it ever did.
        let ids = self
            .inner
            .encode(text.as_str(), add_special)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default();
        match self.language_wrap {
            Some((code, eos)) => std::iter::once(code)
                .chain(ids)
                .chain(std::iter::once(eos))
                .collect(),
            None => ids,
        }
    }

    fn decode(&self, ids: &[u32]) -> String {
        let text = self.inner.decode(ids, true).unwrap_or_default();
        if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        }
    }
}

fn first_known(tokenizer: &Tokenizer, tokens: &[&str]) -> Option<u32> {
    tokens.iter().find_map(|t| tokenizer.token_to_id(t))
}
