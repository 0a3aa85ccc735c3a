//! The tokenizer of a GGUF chat model, built from the file's metadata or from a repo's
//! `tokenizer.json`.
//!
//! The reference is what llama.cpp and transformers' `AutoTokenizer.from_pretrained(dir,
//! gguf_file=...)` build from the same metadata. Two kinds of vocabulary are supported
//! (`tokenizer.ggml.model`), each in a module of its own that builds the `tokenizers` model and
//! pipeline:
//!
//! * `gpt2`, byte-level BPE (Qwen2, Llama 3): `byte_level.rs`; tests/fixtures/qwen-gguf records
//!   transformers on a real model.
//! * `llama`, SentencePiece (Llama 2, Mistral, Gemma, Phi-3): `spm_vocab.rs`;
//!   tests/fixtures/llama-gguf records transformers on small trained vocabularies.
//!
//! Special tokens, BOS/EOS insertion and the chat template are handled here, the same for both:
//! CONTROL tokens and the bos/eos/unk/pad ids are special, USER_DEFINED ones are matched whole
//! but are not special (so `skip_special` decoding keeps them), UNUSED ones are plain text.
//! Other vocabularies (`t5`, `bert`, `rwkv`…) load from their repo's tokenizer.json with
//! [`GgufTokenizer::from_tokenizer_json`].

mod byte_level;
mod spm_vocab;

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::candle_one_line as one_line;
use crate::{Error, Result};

// llama.cpp's `llama_token_type`, stored per token in `tokenizer.ggml.token_type`.
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;

/// Tokens that end a turn in the chat formats we know. A model's `eos_token_id` names only one
/// (Qwen2.5-Instruct: `<|im_end|>`), but its generation config stops on several: without these a
/// reply that ends with `<|endoftext|>` would run on until the length limit.
const END_OF_TURN: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "</s>",
];

/// A chat model's tokenizer with the ids a generation loop needs.
pub struct GgufTokenizer {
    inner: Tokenizer,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    /// `eos_id` first, then every other end-of-turn token the vocabulary has.
    eos_ids: Vec<u32>,
    /// Sorted ids of the tokens added as special (control tokens, bos/eos/pad/unk).
    special_ids: Vec<u32>,
    chat_template: Option<String>,
}

impl GgufTokenizer {
    /// Reads only the header and metadata of a GGUF file, not its tensors.
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::model(format!(
                "cannot open GGUF model {}: {e}. Check the path",
                path.display()
            ))
        })?;
        let content = crate::gguf_reader::read_content(&mut std::io::BufReader::new(file), path)?;
        Self::from_content(&content)
    }

    pub fn from_content(ct: &gguf_file::Content) -> Result<Self> {
        let kind = meta(ct, "tokenizer.ggml.model", str_of)?.ok_or_else(|| {
            Error::model(
                "the GGUF file has no tokenizer (tokenizer.ggml.model is missing); \
                 load the model repo's tokenizer.json instead",
            )
        })?;
        let tokens = meta(ct, "tokenizer.ggml.tokens", Value::to_vec)?
            .ok_or_else(|| bad_meta("tokenizer.ggml.tokens", "missing"))?
            .iter()
            .map(str_of)
            .collect::<candle_core::Result<Vec<&str>>>()
            .map_err(|e| bad_meta("tokenizer.ggml.tokens", one_line(&e)))?;
        let id = |key: &str| -> Result<Option<u32>> {
            match ct.metadata.get(key) {
                None => Ok(None),
                Some(v) => match as_int(v) {
                    Some(i) if (0..tokens.len() as i64).contains(&i) => Ok(Some(i as u32)),
                    Some(i) => Err(bad_meta(key, format!("{i} is not a token id"))),
                    None => Err(bad_meta(
                        key,
                        format!("a {:?} is not a token id", v.value_type()),
                    )),
                },
            }
        };
        let bos_id = id("tokenizer.ggml.bos_token_id")?;
        let eos_id = id("tokenizer.ggml.eos_token_id")?;
        let unk_id = id("tokenizer.ggml.unknown_token_id")?;

        let mut inner = match kind {
            "gpt2" => {
                let pre = meta(ct, "tokenizer.ggml.pre", str_of)?.unwrap_or("default");
                byte_level::tokenizer(ct, pre)?
            }
            "llama" => spm_vocab::tokenizer(ct, &tokens, unk_id)?,
            other => return Err(unsupported_model(other)),
        };
        // Only a byte-level vocabulary has an alphabet to check CONTROL tokens against.
        let spelled = (kind == "gpt2").then(byte_level::spelled_in_alphabet);

        let mut specials = BTreeSet::new();
        for key in ["unknown", "padding", "bos", "eos"] {
            specials.extend(id(&format!("tokenizer.ggml.{key}_token_id"))?);
        }
        let mut user_defined = Vec::new();
        for (i, ty) in token_types(ct, tokens.len())?.into_iter().enumerate() {
            match ty {
                TYPE_CONTROL if spelled.as_ref().is_none_or(|spelled| spelled(tokens[i])) => {
                    specials.insert(i as u32);
                }
                TYPE_USER_DEFINED => user_defined.push(i as u32),
                _ => {}
            }
        }
        // A token the model's vocabulary spells otherwise (a Gemma run of spaces) or holds under
        // another id (a repeated token) would be added as a new id the model has no embedding
        // for.
        let in_vocab = |i: &u32| inner.token_to_id(tokens[*i as usize]) == Some(*i);
        specials.retain(in_vocab);
        user_defined.retain(in_vocab);
        let added = |ids: &[u32], special: bool| -> Vec<AddedToken> {
            let tok = |&i: &u32| AddedToken::from(tokens[i as usize], special).normalized(false);
            ids.iter().map(tok).collect()
        };
        let special_ids: Vec<u32> = specials.into_iter().collect();
        inner
            .add_special_tokens(added(&special_ids, true))
            .map_err(|e| Error::model(format!("cannot add the GGUF special tokens: {e}")))?;
        inner
            .add_tokens(added(&user_defined, false))
            .map_err(|e| Error::model(format!("cannot add the GGUF user-defined tokens: {e}")))?;

        // llama.cpp and transformers add a BOS to a SentencePiece vocabulary that does not say.
        let add_bos =
            meta(ct, "tokenizer.ggml.add_bos_token", Value::to_bool)?.unwrap_or(kind == "llama");
        let add_eos = meta(ct, "tokenizer.ggml.add_eos_token", Value::to_bool)?.unwrap_or(false);
        let bos = add_bos.then_some(bos_id).flatten();
        let eos = add_eos.then_some(eos_id).flatten();
        if bos.is_some() || eos.is_some() {
            let pair = |id: u32| (tokens[id as usize].to_string(), id);
            let processor = template(bos.map(pair), eos.map(pair))?;
            inner.with_post_processor(Some(processor));
        }

        let chat_template = meta(ct, "tokenizer.chat_template", str_of)?.map(str::to_string);
        let extra = [
            id("tokenizer.ggml.eot_token_id")?,
            id("tokenizer.ggml.eom_token_id")?,
        ];
        Ok(Self::assemble(
            inner,
            bos_id,
            eos_id,
            &extra,
            special_ids,
            chat_template,
        ))
    }

    /// Loads a Hugging Face `tokenizer.json`. The ids and the chat template come from the
    /// `tokenizer_config.json`, `chat_template.jinja` and `generation_config.json` beside it,
    /// where present, as transformers reads them.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| {
            Error::model(format!(
                "cannot load tokenizer {}: {e}. It must be a Hugging Face tokenizer.json; \
                 download it again",
                path.display()
            ))
        })?;
        // A prompt must never be cut or padded behind the caller's back.
        inner
            .with_truncation(None)
            .map_err(|e| Error::model(format!("cannot turn off truncation: {e}")))?;
        inner.with_padding(None);
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = read_json_opt(&dir.join("tokenizer_config.json"))?;
        let token = |key: &str| {
            let value = config.as_ref()?.get(key)?;
            let content = value.as_str().or_else(|| value.get("content")?.as_str())?;
            inner.token_to_id(content)
        };
        let (bos_id, eos_id) = (token("bos_token"), token("eos_token"));
        let chat_template = match config.as_ref().and_then(|c| c.get("chat_template")) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            // Older configs keep a list of named templates; "default" is the chat one.
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
            // Newer transformers versions save the template in a file of its own.
            _ => read_opt(&dir.join("chat_template.jinja"))?,
        };
        // generation_config.json's eos_token_id (a number or a list) is what generate() stops on.
        let generation = read_json_opt(&dir.join("generation_config.json"))?;
        let extra: Vec<Option<u32>> = match generation.as_ref().and_then(|g| g.get("eos_token_id"))
        {
            Some(serde_json::Value::Array(ids)) => ids.iter().map(json_id).collect(),
            Some(v) => vec![json_id(v)],
            None => Vec::new(),
        };
        let special_ids: Vec<u32> = {
            let mut ids: Vec<u32> = inner
                .get_added_tokens_decoder()
                .into_iter()
                .filter(|(_, t)| t.special)
                .map(|(id, _)| id)
                .collect();
            ids.sort_unstable();
            ids
        };
        Ok(Self::assemble(
            inner,
            bos_id,
            eos_id,
            &extra,
            special_ids,
            chat_template,
        ))
    }

    fn assemble(
        inner: Tokenizer,
        bos_id: Option<u32>,
        eos_id: Option<u32>,
        extra_eos: &[Option<u32>],
        special_ids: Vec<u32>,
        chat_template: Option<String>,
    ) -> Self {
        // Only special tokens count: a plain vocabulary entry that happens to read `</s>` is text.
        let known = END_OF_TURN
            .iter()
            .filter_map(|t| inner.token_to_id(t))
            .filter(|id| special_ids.binary_search(id).is_ok());
        let mut eos_ids = Vec::new();
        for id in eos_id
            .into_iter()
            .chain(extra_eos.iter().flatten().copied())
            .chain(known)
        {
            if !eos_ids.contains(&id) {
                eos_ids.push(id);
            }
        }
        Self {
            inner,
            bos_id,
            eos_id,
            eos_ids,
            special_ids,
            chat_template,
        }
    }

    /// Special tokens written in `text` (`<|im_start|>`…) become their single ids, as for chat
    /// prompts in transformers. `add_special` adds the BOS/EOS the model asks for (none for Qwen).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, add_special)
            .map_err(|e| Error::model(format!("cannot tokenize the text: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens included (transformers' `decode` default). A prefix
    /// ending inside a UTF-8 character decodes the partial bytes as U+FFFD; unknown ids are
    /// skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_impl(ids, false)
    }

    /// The text of `ids` without the special tokens (`<|im_end|>`…); user-defined ones stay.
    pub fn decode_skip_special(&self, ids: &[u32]) -> Result<String> {
        self.decode_impl(ids, true)
    }

    fn decode_impl(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| Error::model(format!("cannot decode token ids: {e}")))
    }

    /// The vocabulary entry of `id` as stored (`Ġworld` byte-level, `▁world` SentencePiece).
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    /// Every id that ends a reply: the model's EOS first, then the end-of-turn tokens it has.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.binary_search(&id).is_ok()
    }

    /// The Jinja chat template the model was trained with (`tokenizer.chat_template`).
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The underlying tokenizer, e.g. for `decode_stream` or saving as tokenizer.json.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

fn template(bos: Option<(String, u32)>, eos: Option<(String, u32)>) -> Result<TemplateProcessing> {
    let wrap = |seq: &str, type_id: u32| -> Vec<String> {
        let b = bos.iter().map(|(t, _)| format!("{t}:{type_id}"));
        let e = eos.iter().map(|(t, _)| format!("{t}:{type_id}"));
        b.chain([format!("{seq}:{type_id}")]).chain(e).collect()
    };
    let pair: Vec<String> = wrap("$A", 0).into_iter().chain(wrap("$B", 1)).collect();
    TemplateProcessing::builder()
        .try_single(wrap("$A", 0))
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| Error::model(format!("cannot set up BOS/EOS insertion: {e}")))?
        .special_tokens(bos.into_iter().chain(eos).collect::<Vec<_>>())
        .build()
        .map_err(|e| Error::model(format!("cannot set up BOS/EOS insertion: {e}")))
}

fn unsupported_model(kind: &str) -> Error {
    Error::model(format!(
        "GGUF tokenizer type `{kind}` (tokenizer.ggml.model) is not supported, only `gpt2` \
         (byte-level BPE: Qwen2, Llama 3) and `llama` (SentencePiece: Llama 2, Mistral, Gemma, \
         Phi-3); load the model repo's tokenizer.json instead"
    ))
}

pub(super) fn bad_meta(key: &str, e: impl std::fmt::Display) -> Error {
    Error::model(format!(
        "GGUF metadata `{key}` is invalid ({e}); the file is damaged, download it again"
    ))
}

/// `key`'s value through one of candle's typed getters; `None` when the key is absent.
pub(super) fn meta<'a, T>(
    ct: &'a gguf_file::Content,
    key: &str,
    get: impl Fn(&'a Value) -> candle_core::Result<T>,
) -> Result<Option<T>> {
    let value = ct.metadata.get(key);
    value
        .map(|v| get(v).map_err(|e| bad_meta(key, one_line(&e))))
        .transpose()
}

/// GGUF writers store ids and token types in whichever integer type they like.
pub(super) fn as_int(v: &Value) -> Option<i64> {
    Some(match *v {
        Value::U8(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::U64(x) => i64::try_from(x).ok()?,
        Value::I64(x) => x,
        _ => return None,
    })
}

pub(super) fn str_of(v: &Value) -> candle_core::Result<&str> {
    v.to_string().map(String::as_str)
}

/// `tokenizer.ggml.token_type`, one per token; empty when the file has none (all NORMAL).
fn token_types(ct: &gguf_file::Content, n_tokens: usize) -> Result<Vec<i64>> {
    const KEY: &str = "tokenizer.ggml.token_type";
    let Some(list) = meta(ct, KEY, Value::to_vec)? else {
        return Ok(Vec::new());
    };
    if list.len() != n_tokens {
        return Err(bad_meta(
            KEY,
            format!("{} types for {n_tokens} tokens", list.len()),
        ));
    }
    list.iter()
        .map(|v| {
            as_int(v)
                .ok_or_else(|| bad_meta(KEY, format!("a {:?} is not a token type", v.value_type())))
        })
        .collect()
}

fn json_id(v: &serde_json::Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

/// The text of `path`, `None` when there is no such file.
fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::model(format!("cannot read {}: {e}", path.display()))),
    }
}

fn read_json_opt(path: &Path) -> Result<Option<serde_json::Value>> {
    let Some(text) = read_opt(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::model(format!(
            "{} is not valid JSON ({e}); download it again",
            path.display()
        ))
    })
}
