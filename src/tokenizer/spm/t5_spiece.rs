//! A T5 tokenizer built from `spiece.model` alone, for repos that ship no `tokenizer.json`
//! (csebuetnlp/mT5_multilingual_XLSum has only the SentencePiece file).
//!
//! transformers 5.24 builds its T5 tokenizer from such a file as a `tokenizers` pipeline
//! (`T5Converter.convert_from_spm` and `T5Tokenizer.__init__`); this builds the same pipeline with
//! the same library, so ids agree with transformers rather than with the sentencepiece library
//! (the two differ, e.g. on runs of spaces, which T5's whitespace pre-tokenizer drops):
//! - a Unigram model over the pieces with their scores, then `<extra_id_{n-1}>` … `<extra_id_0>`
//!   appended in that (reversed) order with score 0, so `<extra_id_0>` is the last id;
//! - unk id 2, as T5Tokenizer fixes it whatever the file says;
//! - the file's precompiled charsmap as the normalizer, whitespace split then `▁` prefixing;
//! - `</s>` appended to every input;
//! - the control and user-defined pieces, `<unk>` and the extra ids matched whole in the text.

use std::path::Path;

use prost::Message;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::Precompiled;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::proto::{piece_type, ModelProto};
use crate::{Error, Result};

/// T5Tokenizer's fixed unknown-token id.
const UNK_ID: usize = 2;

/// Builds the tokenizer of `spiece.model` with `extra_ids` sentinel tokens (`extra_ids` in
/// tokenizer_config.json; 100 unless it says otherwise, 0 for mT5).
pub(in crate::tokenizer) fn from_spiece(path: &Path, extra_ids: usize) -> Result<Tokenizer> {
    let unusable = |why: String| {
        Error::model(format!(
            "{} is not a usable SentencePiece model: {why}. Download the model again",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let proto = ModelProto::decode(bytes.as_slice())
        .map_err(|e| unusable(format!("it does not parse ({e})")))?;
    if proto.pieces.len() <= UNK_ID {
        return Err(unusable(format!(
            "it has {} pieces, too few for T5's unknown token at id {UNK_ID}",
            proto.pieces.len()
        )));
    }
    let text = |p: &super::proto::Piece| p.piece.clone().unwrap_or_default();
    let mut vocab: Vec<(String, f64)> = proto
        .pieces
        .iter()
        .map(|p| (text(p), f64::from(p.score.unwrap_or(0.0))))
        .collect();
    let sentinels: Vec<String> = (0..extra_ids)
        .rev()
        .map(|i| format!("<extra_id_{i}>"))
        .collect();
    vocab.extend(sentinels.iter().map(|s| (s.clone(), 0.0)));
    let unigram = Unigram::from(vocab, Some(UNK_ID), false)
        .map_err(|e| unusable(format!("its vocabulary is rejected ({e})")))?;

    let mut tokenizer = Tokenizer::new(unigram);
    let charsmap = proto
        .normalizer_spec
        .as_ref()
        .and_then(|n| n.precompiled_charsmap.as_deref())
        .filter(|c| !c.is_empty());
    if let Some(charsmap) = charsmap {
        let normalizer = Precompiled::from(charsmap)
            .map_err(|e| unusable(format!("its normalization table is corrupt ({e})")))?;
        tokenizer
            .with_normalizer(Some(normalizer))
            .map_err(|e| unusable(e.to_string()))?;
    }
    let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::WhitespaceSplit(WhitespaceSplit),
        PreTokenizerWrapper::Metaspace(metaspace.clone()),
    ])));
    tokenizer.with_decoder(Some(metaspace));

    let mut special: Vec<AddedToken> = proto
        .pieces
        .iter()
        .filter(|p| p.kind() == piece_type::CONTROL)
        .map(|p| AddedToken::from(text(p), true))
        .collect();
    special.push(AddedToken::from(text(&proto.pieces[UNK_ID]), true));
    special.extend(
        sentinels
            .into_iter()
            .rev()
            .map(|s| AddedToken::from(s, true)),
    );
    tokenizer
        .add_special_tokens(special)
        .map_err(|e| unusable(e.to_string()))?;
    let user_defined: Vec<AddedToken> = proto
        .pieces
        .iter()
        .filter(|p| p.kind() == piece_type::USER_DEFINED)
        .map(|p| AddedToken::from(text(p), false).normalized(false))
        .collect();
    tokenizer
        .add_tokens(user_defined)
        .map_err(|e| unusable(e.to_string()))?;

    let eos = tokenizer
        .token_to_id("</s>")
        .ok_or_else(|| unusable("it has no </s> piece".into()))?;
    let template = TemplateProcessing::builder()
        .try_single("$A </s>")
        .map_err(|e| unusable(e.to_string()))?
        .try_pair("$A </s> $B </s>")
        .map_err(|e| unusable(e.to_string()))?
        .special_tokens(vec![("</s>", eos)])
        .build()
        .map_err(|e| unusable(e.to_string()))?;
    tokenizer.with_post_processor(Some(template));
    Ok(tokenizer)
}
