//! Tokenizers: SentencePiece models with a Marian vocab.json.

pub mod gguf;
mod marian;
mod marian_config;
mod moses;
mod sentencepiece;
mod spm_encode;
mod spm_normalizer;
mod spm_proto;
mod trie;

pub use gguf::GgufTokenizer;
pub use marian::MarianTokenizer;
pub use moses::MosesPunctNormalizer;
pub use sentencepiece::SentencePiece;
