//! Translation quality metrics, computed exactly as the reference Python tools do so that
//! scores can be compared with published ones.
//!
//! - [`chrf`]: sacrebleu's default chrF (character n-gram F-score, chrF2).

pub mod chrf;

pub use chrf::{corpus_chrf, sentence_chrf, ChrfStats};
