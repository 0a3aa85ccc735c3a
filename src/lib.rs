//! tarjama: Arabic → English translation and summaries with open models on candle.
//!
//! The pipeline: [`document`] reads and segments an article, [`hub`] resolves a model to files,
//! [`models`] builds the network, [`tokenizer`] maps text to ids, [`generate`] decodes, and
//! [`pipeline`] ties them together; [`output`] writes results atomically.

pub mod allocator;
pub mod cli;
pub mod commands;
pub mod device;
pub mod document;
pub mod error;
pub mod eval;
pub mod exp;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod hub;
pub mod interrupt;
pub mod models;
pub mod output;
pub mod parallel;
pub mod pipeline;
pub mod tokenizer;

pub use error::{Error, Result};
