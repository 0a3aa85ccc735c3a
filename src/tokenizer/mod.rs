//! Tokenizers: SentencePiece models with a Marian vocab.json, `tokenizer.json` files, and the
//! vocabularies inside GGUF files.

pub mod gguf;
mod marian;
mod marian_config;
mod moses;
mod sentencepiece;
mod seq2seq;
mod spm_encode;
mod spm_normalizer;
mod spm_proto;
mod t5_spiece;
mod trie;

pub use gguf::GgufTokenizer;
pub use marian::MarianTokenizer;
pub use moses::MosesPunctNormalizer;
pub use sentencepiece::SentencePiece;
pub use seq2seq::{PipelineTokenizer, Seq2SeqTokenizer};
