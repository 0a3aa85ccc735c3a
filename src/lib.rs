//! tarjama: Arabic → English translation and summaries with open models on candle.
//!
//! The pipeline: [`document`] reads and segments an article, [`hub`] resolves a model to files,
//! [`models`] builds the network, [`tokenizer`] maps text to ids, [`generate`] decodes, and
//! [`pipeline`] ties them together; [`output`] writes results atomically.

// Every `unsafe` block is in `kernels`, behind safe functions, except `allocator`'s one call.
#![deny(unsafe_code)]

// The settings of the global allocator: one foreign call into mimalloc, which is configuration,
// not a kernel, and which the binary makes before anything else runs.
#[allow(unsafe_code)]
pub mod allocator;
pub mod cli;
pub mod commands;
pub mod device;
pub mod document;
pub mod error;
pub mod eval;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod hub;
pub mod interrupt;
#[allow(unsafe_code)]
pub mod kernels;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod tokenizer;

pub use error::{Error, Result};
