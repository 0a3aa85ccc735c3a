//! Reading a Marian tokenizer directory's JSON files: `vocab.json` (in file order, as Python's
//! `json.load` keeps it) and the parts of `tokenizer_config.json` that change tokenization.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::{Error, Result};

/// A token → id map in file order. A key repeated in the file keeps its first position and its
/// last id, as a Python dict built by `json.load` does.
#[derive(Debug, Default, Clone)]
pub(crate) struct Vocab {
    pub entries: Vec<(String, u32)>,
}

impl Vocab {
    pub fn load(path: &Path) -> Result<Self> {
        let text = read(path)?;
        let mut de = serde_json::Deserializer::from_str(&text);
        let entries = de.deserialize_map(EntriesVisitor).map_err(|e| {
            Error::model(format!(
                "{} is not a token → id JSON object ({e}). Re-download the model files",
                path.display()
            ))
        })?;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        let mut vocab = Vocab::default();
        for (token, id) in entries {
            match index.get(&token) {
                Some(&at) => vocab.entries[at].1 = id,
                None => {
                    index.insert(token.clone(), vocab.entries.len());
                    vocab.entries.push((token, id));
                }
            }
        }
        Ok(vocab)
    }

    pub fn encoder(&self) -> HashMap<String, u32> {
        self.entries.iter().cloned().collect()
    }

    /// id → token; where ids repeat, the token that comes last wins (a Python dict inversion).
    pub fn decoder(&self) -> HashMap<u32, String> {
        self.entries
            .iter()
            .map(|(t, id)| (*id, t.clone()))
            .collect()
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(String, u32)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object mapping tokens to integer ids")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry::<String, u32>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// A token matched in the text before SentencePiece runs (transformers' `AddedToken`).
#[derive(Debug, Clone)]
pub(crate) struct AddedToken {
    pub content: String,
    pub id: Option<u32>,
    pub lstrip: bool,
    pub rstrip: bool,
    pub single_word: bool,
}

/// What `tokenizer_config.json` says, with MarianTokenizer's defaults for what it leaves out.
#[derive(Debug, Clone)]
pub(crate) struct TokenizerConfig {
    pub source_lang: Option<String>,
    pub separate_vocabs: bool,
    pub clean_up_tokenization_spaces: bool,
    pub unk_token: String,
    pub eos_token: String,
    pub pad_token: String,
    /// Every special token (named and extra), in transformers' `all_special_tokens` order.
    pub special_tokens: Vec<String>,
    /// Tokens from `added_tokens_decoder`, with their ids.
    pub added_tokens: Vec<AddedToken>,
}

/// transformers' `SPECIAL_TOKENS_ATTRIBUTES`, in its order.
const NAMED_SPECIAL_TOKENS: &[&str] = &[
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

impl TokenizerConfig {
    /// Reads `path`, or MarianTokenizer's defaults when there is no such file.
    pub fn load(path: &Path) -> Result<Self> {
        let config = if path.exists() {
            let text = read(path)?;
            serde_json::from_str(&text).map_err(|e| {
                Error::model(format!(
                    "{} is not valid JSON ({e}). Re-download the model files",
                    path.display()
                ))
            })?
        } else {
            Value::Object(Default::default())
        };
        let get = |key: &str| config.get(key).filter(|v| !v.is_null());
        let flag = |key: &str| get(key).and_then(Value::as_bool).unwrap_or(false);

        let mut named: HashMap<&str, String> = HashMap::new();
        named.insert("unk_token", "<unk>".into());
        named.insert("eos_token", "</s>".into());
        named.insert("pad_token", "<pad>".into());
        for key in NAMED_SPECIAL_TOKENS {
            if let Some(content) = get(key).and_then(token_content) {
                named.insert(key, content);
            }
        }
        let mut special_tokens: Vec<String> = Vec::new();
        let mut push_unique = |token: String| {
            if !special_tokens.contains(&token) {
                special_tokens.push(token);
            }
        };
        for key in NAMED_SPECIAL_TOKENS {
            if let Some(token) = named.get(key) {
                push_unique(token.clone());
            }
        }
        for key in ["additional_special_tokens", "extra_special_tokens"] {
            for token in get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(content) = token_content(token) {
                    push_unique(content);
                }
            }
        }

        let mut added_tokens = Vec::new();
        if let Some(decoder) = get("added_tokens_decoder").and_then(Value::as_object) {
            for (id, token) in decoder {
                let Some(content) = token_content(token) else {
                    continue;
                };
                let attr = |name: &str| token.get(name).and_then(Value::as_bool).unwrap_or(false);
                added_tokens.push(AddedToken {
                    content,
                    id: id.parse().ok(),
                    lstrip: attr("lstrip"),
                    rstrip: attr("rstrip"),
                    single_word: attr("single_word"),
                });
            }
        }

        Ok(TokenizerConfig {
            source_lang: get("source_lang")
                .and_then(Value::as_str)
                .map(str::to_string),
            separate_vocabs: flag("separate_vocabs"),
            clean_up_tokenization_spaces: flag("clean_up_tokenization_spaces"),
            unk_token: named["unk_token"].clone(),
            eos_token: named["eos_token"].clone(),
            pad_token: named["pad_token"].clone(),
            special_tokens,
            added_tokens,
        })
    }
}

/// A token given as a string or as an `AddedToken` object with a `content` field.
fn token_content(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::model(format!(
            "cannot read {}: {e}. Re-download the model files",
            path.display()
        ))
    })
}
