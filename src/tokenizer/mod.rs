//! Tokenizers: SentencePiece models with a Marian vocab.json, `tokenizer.json` files, and the
//! vocabularies inside GGUF files.

pub mod gguf;
mod marian;
mod marian_config;
mod moses;
mod seq2seq;
mod spm;

pub use gguf::GgufTokenizer;
pub use marian::MarianTokenizer;
pub use moses::MosesPunctNormalizer;
pub use seq2seq::{PipelineTokenizer, Seq2SeqTokenizer};
pub use spm::SentencePiece;
