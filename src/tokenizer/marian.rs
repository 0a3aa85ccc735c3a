//! transformers' `MarianTokenizer` (the slow, sentencepiece-based one): SentencePiece segments
//! the text with `source.spm`, `vocab.json` maps the pieces to ids, `</s>` ends the sequence.
//!
//! As in transformers 5.x, `encode` does *not* run the Moses punctuation normalizer: transformers
//! only exposes it as `MarianTokenizer.normalize`, which its `__call__` never invokes. It is
//! available here as [`MarianTokenizer::normalize`] for callers that want it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::marian_config::{AddedToken, TokenizerConfig, Vocab};
use super::moses::{is_py_space, MosesPunctNormalizer};
use super::spm::SentencePiece;
use super::spm::SPACE_SYMBOL;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct MarianTokenizer {
    source: SentencePiece,
    target: SentencePiece,
    encoder: HashMap<String, u32>,
    decoder: HashMap<u32, String>,
    /// Split off before SentencePiece runs, longest first where they overlap.
    added: Vec<AddedToken>,
    added_ids: HashMap<String, u32>,
    added_by_id: HashMap<u32, String>,
    special_tokens: HashSet<String>,
    special_ids: HashSet<u32>,
    unk_id: u32,
    eos_id: u32,
    pad_id: u32,
    separate_vocabs: bool,
    clean_up_tokenization_spaces: bool,
    source_lang: String,
    moses: MosesPunctNormalizer,
}

impl MarianTokenizer {
    /// Loads `source.spm`, `target.spm`, `vocab.json` and, when present, `tokenizer_config.json`
    /// (and `target_vocab.json` for models with separate vocabularies) from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::model(format!(
                "model directory {} does not exist or is not a directory; point --model at a \
                 Marian model directory",
                dir.display()
            )));
        }
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::model(format!(
                    "model directory {} is missing {name}; re-download the model or point \
                     --model at a complete Marian directory",
                    dir.display()
                )))
            }
        };
        let source = SentencePiece::from_file(&file("source.spm")?)?;
        let target = SentencePiece::from_file(&file("target.spm")?)?;
        let vocab_path = file("vocab.json")?;
        let vocab = Vocab::load(&vocab_path)?;
        let config = TokenizerConfig::load(&dir.join("tokenizer_config.json"))?;

        let encoder = vocab.encoder();
        let decoder = if config.separate_vocabs {
            Vocab::load(&file("target_vocab.json")?)?.decoder()
        } else {
            vocab.decoder()
        };
        let Some(&unk_id) = encoder.get(&config.unk_token) else {
            return Err(Error::model(format!(
                "{} has no entry for the unknown token {:?}; re-download the model files",
                vocab_path.display(),
                config.unk_token
            )));
        };

        // Special tokens become added tokens with their vocab.json ids; transformers appends
        // the ones vocab.json lacks after the vocabulary.
        let mut added = config.added_tokens.clone();
        let mut next_id = encoder.len() as u32;
        for token in &config.special_tokens {
            if added.iter().any(|a| &a.content == token) {
                continue;
            }
            let id = encoder.get(token).copied().unwrap_or_else(|| {
                next_id += 1;
                next_id - 1
            });
            added.push(AddedToken {
                content: token.clone(),
                id: Some(id),
                lstrip: false,
                rstrip: false,
                single_word: false,
            });
        }
        let mut added_ids = HashMap::new();
        let mut added_by_id = HashMap::new();
        for token in &added {
            let id = token
                .id
                .or_else(|| encoder.get(&token.content).copied())
                .unwrap_or(unk_id);
            added_ids.insert(token.content.clone(), id);
            added_by_id.insert(id, token.content.clone());
        }
        let to_id = |token: &str| {
            added_ids
                .get(token)
                .or_else(|| encoder.get(token))
                .copied()
                .unwrap_or(unk_id)
        };
        let special_ids = config.special_tokens.iter().map(|t| to_id(t)).collect();
        let (eos_id, pad_id) = (to_id(&config.eos_token), to_id(&config.pad_token));

        let source_lang = config.source_lang.clone().unwrap_or_else(|| "ar".into());
        Ok(MarianTokenizer {
            moses: MosesPunctNormalizer::new(&source_lang),
            source,
            target,
            encoder,
            decoder,
            added,
            added_ids,
            added_by_id,
            special_tokens: config.special_tokens.iter().cloned().collect(),
            special_ids,
            unk_id,
            eos_id,
            pad_id,
            separate_vocabs: config.separate_vocabs,
            clean_up_tokenization_spaces: config.clean_up_tokenization_spaces,
            source_lang,
        })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// The number of entries in `vocab.json` (transformers' `vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    pub fn source_lang(&self) -> &str {
        &self.source_lang
    }

    /// The id of a token (added tokens first, then `vocab.json`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.added_ids
            .get(token)
            .or_else(|| self.encoder.get(token))
            .copied()
    }

    /// The source-side SentencePiece model.
    pub fn source_spm(&self) -> &SentencePiece {
        &self.source
    }

    /// transformers' `MarianTokenizer.normalize`: sacremoses' punctuation normalizer for the
    /// source language, with the empty string left as is. `encode` does not call it.
    pub fn normalize(&self, text: &str) -> String {
        if text.is_empty() {
            String::new()
        } else {
            self.moses.normalize(text)
        }
    }

    /// transformers' `tokenize`: added tokens split off whole, a leading `>>xx<<` language code
    /// kept as one token, the rest segmented into `source.spm` pieces.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        for chunk in self.split_added_tokens(text) {
            if chunk.is_empty() {
                continue;
            }
            if self.added_ids.contains_key(&chunk) || self.special_tokens.contains(&chunk) {
                tokens.push(chunk);
                continue;
            }
            let (code, rest) = split_language_code(&chunk);
            tokens.extend(code.map(str::to_string));
            tokens.extend(self.source.encode_pieces(rest));
        }
        tokens
    }

    /// `MarianTokenizer(text)["input_ids"]`: the ids of [`tokenize`](Self::tokenize)'s tokens
    /// (`<unk>` for those `vocab.json` lacks), then `</s>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let tokens = self.tokenize(text);
        let mut ids: Vec<u32> = tokens.iter().map(|t| self.id_of(t)).collect();
        ids.push(self.eos_id);
        ids
    }

    /// The number of ids [`encode`](Self::encode) returns for `text`, `</s>` included.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenize(text).len() + 1
    }

    fn id_of(&self, token: &str) -> u32 {
        self.token_to_id(token).unwrap_or(self.unk_id)
    }

    /// transformers' added-token split: the text cut around added tokens, with their
    /// lstrip/rstrip/single_word rules applied to the neighbouring chunks.
    fn split_added_tokens(&self, text: &str) -> Vec<String> {
        let mut chunks: Vec<String> = Vec::new();
        let mut last = 0;
        let mut pos = 0;
        while pos < text.len() {
            let longest = self
                .added
                .iter()
                .filter(|t| !t.content.is_empty() && text[pos..].starts_with(&t.content))
                .map(|t| t.content.len())
                .max();
            match longest {
                Some(len) => {
                    if last < pos {
                        chunks.push(text[last..pos].to_string());
                    }
                    chunks.push(text[pos..pos + len].to_string());
                    pos += len;
                    last = pos;
                }
                None => pos += text[pos..].chars().next().map_or(1, char::len_utf8),
            }
        }
        if last < text.len() {
            chunks.push(text[last..].to_string());
        }

        for i in 0..chunks.len() {
            let Some(token) = self.added.iter().find(|t| t.content == chunks[i]) else {
                continue;
            };
            let has_left = i > 0 && !chunks[i - 1].is_empty();
            let has_right = i + 1 < chunks.len() && !chunks[i + 1].is_empty();
            if token.rstrip && has_right {
                chunks[i + 1] = chunks[i + 1].trim_start_matches(is_py_space).to_string();
            }
            if token.lstrip && has_left {
                chunks[i - 1] = chunks[i - 1].trim_end_matches(is_py_space).to_string();
            }
            if token.single_word {
                if has_left && !chunks[i - 1].ends_with(' ') {
                    let content = std::mem::take(&mut chunks[i]);
                    chunks[i - 1].push_str(&content);
                } else if has_right && !chunks[i + 1].starts_with(' ') {
                    let content = std::mem::take(&mut chunks[i]);
                    chunks[i + 1].insert_str(0, &content);
                }
            }
        }
        chunks
    }

    /// `decode(ids, skip_special_tokens=True)`: special tokens dropped, the rest mapped to
    /// pieces and joined by SentencePiece. Ids that neither `vocab.json` nor the SentencePiece
    /// model knows are skipped (transformers raises on them).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.decode_ids(ids, true)
    }

    /// `decode(ids, skip_special_tokens=False)`: special tokens are written out, each followed
    /// by a space.
    pub fn decode_keeping_special(&self, ids: &[u32]) -> String {
        self.decode_ids(ids, false)
    }

    fn decode_ids(&self, ids: &[u32], skip_special_tokens: bool) -> String {
        // transformers decodes with the source model unless the vocabularies are separate.
        let spm = if self.separate_vocabs {
            &self.target
        } else {
            &self.source
        };
        let tokens = ids
            .iter()
            .filter(|id| !(skip_special_tokens && self.special_ids.contains(id)));
        let tokens = tokens.filter_map(|id| {
            self.added_by_id
                .get(id)
                .or_else(|| self.decoder.get(id))
                .map(String::as_str)
                .or_else(|| spm.id_to_piece(*id))
        });

        let mut out = String::new();
        let mut run: Vec<&str> = Vec::new();
        for token in tokens {
            if self.special_tokens.contains(token) {
                out.push_str(&spm.decode_pieces(&run));
                out.push_str(token);
                out.push(' ');
                run.clear();
            } else {
                run.push(token);
            }
        }
        out.push_str(&spm.decode_pieces(&run));
        let out = out.replace(SPACE_SYMBOL, " ");
        let out = out.trim_matches(is_py_space);
        if self.clean_up_tokenization_spaces {
            clean_up_tokenization(out)
        } else {
            out.to_string()
        }
    }
}

/// transformers' `remove_language_code`: a leading `>>xx<<` is its own token.
fn split_language_code(text: &str) -> (Option<&str>, &str) {
    if text.starts_with(">>") {
        if let Some(end) = text.find("<<") {
            return (Some(&text[..end + 2]), &text[end + 2..]);
        }
    }
    (None, text)
}

/// transformers' `clean_up_tokenization`: removes the spaces its word-level tokenizers left
/// before punctuation and English contractions.
pub(super) fn clean_up_tokenization(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}
