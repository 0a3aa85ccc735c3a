//! SentencePiece vocabularies (`tokenizer.ggml.model = "llama"`: Llama 2, Mistral, Gemma, Phi-3).
//!
//! Built as transformers 5.24's GGUF converter builds them (integrations/gguf/
//! gguf_tokenizer_mapping.py): a BPE with byte fallback over the pieces as the file spells them
//! (`▁` for a space, `<0x0A>` for a byte). The file has pieces and scores but no merges, so the
//! merges are recovered: every split of a piece into two pieces is a merge, ranked by the score
//! of the piece it makes. SentencePiece and llama.cpp (`llm_tokenizer_spm`) merge by that same
//! score, so the ids agree with theirs too (tests/fixtures/llama-gguf), except where the
//! prefix space goes:
//!
//! * transformers prepends `▁` only at the start of the text, and not when the text already
//!   starts with a space: ` hi` is `▁hi` here and `▁▁hi` in SentencePiece and llama.cpp. llama.cpp
//!   also prepends one after every special token (`[INST] hi` gives `[INST]`, `▁▁hi`).
//! * transformers picks the builder by `general.architecture`: Gemma files never get a prefix
//!   space and rank merges by piece position (Gemma's scores do not follow its merge order);
//!   Phi-3 files get it from a normalizer, so also after every special token.
//! * `tokenizer.ggml.add_space_prefix = false` turns the prefix space off, as in llama.cpp;
//!   transformers ignores that key.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use candle_core::quantized::gguf_file::{self, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};

use super::{as_int, bad_meta, meta, str_of};
use crate::{Error, Result};

const SPACE: &str = "\u{2581}";

/// The transformers builder a file gets, by `general.architecture`.
#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    Llama,
    Gemma,
    Phi3,
}

/// The BPE model, normalizer, pre-tokenizer and decoder of a SentencePiece vocabulary. `unk` is
/// `tokenizer.ggml.unknown_token_id`, already checked to be a token id.
pub(super) fn tokenizer(
    ct: &gguf_file::Content,
    tokens: &[&str],
    unk: Option<u32>,
) -> Result<Tokenizer> {
    let flavour = match meta(ct, "general.architecture", str_of)? {
        Some("gemma" | "gemma2" | "gemma3") => Flavour::Gemma,
        Some("phi3") => Flavour::Phi3,
        _ => Flavour::Llama,
    };
    // Gemma files store a piece of several spaces with real spaces; its merges are spelled `▁`.
    let pieces: Vec<Cow<str>> = tokens
        .iter()
        .map(|&t| match flavour {
            Flavour::Gemma if t.contains(' ') && t.chars().all(is_python_space) => {
                Cow::Owned(SPACE.repeat(t.chars().count()))
            }
            _ => Cow::Borrowed(t),
        })
        .collect();
    let merges = match meta(ct, "tokenizer.ggml.merges", Value::to_vec)? {
        Some(list) => file_merges(list)?,
        None if flavour == Flavour::Gemma => {
            let positions: Vec<f64> = (0..pieces.len()).map(|i| -(i as f64)).collect();
            derive_merges(&pieces, &positions)
        }
        None => derive_merges(&pieces, &scores(ct, pieces.len())?),
    };

    let vocab: Vocab = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_string(), i as u32))
        .collect();
    let mut bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .fuse_unk(true)
        .byte_fallback(true);
    // Only transformers' GemmaTokenizer names the unknown token to its BPE; byte fallback leaves
    // it unused anyway unless a byte piece is missing.
    if let (Flavour::Gemma, Some(unk)) = (flavour, unk) {
        bpe = bpe.unk_token(pieces[unk as usize].to_string());
    }
    let bpe = bpe
        .build()
        .map_err(|e| bad_meta("tokenizer.ggml.merges", e))?;

    let prefix = meta(ct, "tokenizer.ggml.add_space_prefix", Value::to_bool)?.unwrap_or(true);
    let mut inner = Tokenizer::new(bpe);
    let spaces: NormalizerWrapper = replace(" ", SPACE)?.into();
    let normalizer = match flavour {
        Flavour::Llama => {
            let scheme = if prefix {
                PrependScheme::First
            } else {
                PrependScheme::Never
            };
            inner.with_pre_tokenizer(Some(Metaspace::new('\u{2581}', scheme, false)));
            None
        }
        Flavour::Phi3 if prefix => {
            let prepend = Prepend::new(SPACE.to_string()).into();
            Some(NormalizerSequence::new(vec![prepend, spaces]).into())
        }
        Flavour::Phi3 => Some(spaces),
        // GemmaTokenizer also splits at spaces; none are left after this normalizer.
        Flavour::Gemma => Some(spaces),
    };
    inner
        .with_normalizer(normalizer)
        .map_err(|e| Error::model(format!("cannot set up the SentencePiece normalizer: {e}")))?;
    let mut decoders: Vec<DecoderWrapper> = vec![
        replace(SPACE, " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix && flavour != Flavour::Gemma {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(inner)
}

/// transformers' `generate_merges`: for each piece, in order of first appearance, its splits
/// into two pieces (ordered by their ids), then all of them stably sorted best-first by
/// (`rank` of the piece they make, length of the left part, length of the right part).
fn derive_merges(pieces: &[Cow<str>], rank: &[f64]) -> Vec<(String, String)> {
    // Python dicts built from the lists: a repeated piece keeps its last id and rank.
    let ids: HashMap<&str, usize> = pieces.iter().enumerate().map(|(i, p)| (&**p, i)).collect();
    struct Merge<'a> {
        left: &'a str,
        right: &'a str,
        rank: f64,
        // Python's len(): characters, not bytes.
        left_len: usize,
        right_len: usize,
    }
    let mut merges = Vec::new();
    let mut seen = HashSet::with_capacity(pieces.len());
    let mut local = Vec::new();
    for piece in pieces.iter().map(|p| &**p) {
        if !seen.insert(piece) {
            continue;
        }
        for (at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(at);
            if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                local.push((l, r, left, right));
            }
        }
        local.sort_by_key(|&(l, r, _, _)| (l, r));
        let rank = rank[ids[piece]];
        merges.extend(local.drain(..).map(|(_, _, left, right)| Merge {
            left,
            right,
            rank,
            left_len: left.chars().count(),
            right_len: right.chars().count(),
        }));
    }
    merges.sort_by(|a, b| {
        (b.rank.partial_cmp(&a.rank).unwrap_or(Ordering::Equal))
            .then(b.left_len.cmp(&a.left_len))
            .then(b.right_len.cmp(&a.right_len))
    });
    merges
        .into_iter()
        .map(|m| (m.left.to_string(), m.right.to_string()))
        .collect()
}

/// `tokenizer.ggml.merges` where a SentencePiece file has them: `left right` strings.
fn file_merges(list: &[Value]) -> Result<Vec<(String, String)>> {
    const KEY: &str = "tokenizer.ggml.merges";
    list.iter()
        .map(|v| {
            let merge = str_of(v).map_err(|_| bad_meta(KEY, "a merge is not a string"))?;
            match merge.split(' ').collect::<Vec<_>>()[..] {
                [left, right] => Ok((left.to_string(), right.to_string())),
                _ => Err(bad_meta(KEY, format!("`{merge}` is not two tokens"))),
            }
        })
        .collect()
}

/// `tokenizer.ggml.scores`, one per token: SentencePiece's merge ranks.
fn scores(ct: &gguf_file::Content, n_tokens: usize) -> Result<Vec<f64>> {
    const KEY: &str = "tokenizer.ggml.scores";
    let list = meta(ct, KEY, Value::to_vec)?.ok_or_else(|| {
        bad_meta(
            KEY,
            "missing; a SentencePiece vocabulary needs its scores to rank merges",
        )
    })?;
    if list.len() != n_tokens {
        return Err(bad_meta(
            KEY,
            format!("{} scores for {n_tokens} tokens", list.len()),
        ));
    }
    list.iter()
        .map(|v| {
            let score = match *v {
                Value::F32(x) => f64::from(x),
                Value::F64(x) => x,
                _ => as_int(v).ok_or_else(|| {
                    bad_meta(KEY, format!("a {:?} is not a score", v.value_type()))
                })? as f64,
            };
            // NaN has no rank: transformers' sort would order the merges arbitrarily.
            if score.is_nan() {
                return Err(bad_meta(KEY, "a score is NaN"));
            }
            Ok(score)
        })
        .collect()
}

fn replace(from: &str, to: &str) -> Result<Replace> {
    Replace::new(from, to)
        .map_err(|e| Error::model(format!("cannot set up `{from}` → `{to}`: {e}")))
}

/// Python's `str.isspace()`, which transformers' Gemma builder uses (via `strip()`): Rust's
/// `char::is_whitespace` plus the information separators U+001C–U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}
