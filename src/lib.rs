//! tarjama: Arabic → English translation and summaries with open models on candle.
//!
//! The pipeline: [`document`] reads and segments an article, [`hub`] resolves a model to files,
//! [`models`] builds the network, [`tokenizer`] maps text to ids, [`generate`] decodes, and
//! [`pipeline`] ties them together; [`output`] writes results atomically.
//!
//! # Layers
//!
//! Modules use each other only downwards. The list runs from the bottom up; each line names
//! modules and, after the colon, the only other modules their code may use, all of them on
//! earlier lines, so the modules form a DAG and modules of one line are independent of each
//! other. A unit test (`layers`) reads every `crate::` and `super::` path in `src/` and fails on
//! a use this list does not allow: change the code, or this list where the design changes.
//!
//! - `error`, `allocator`, `kernels`: nothing
//! - `output`, `device`, `document`, `eval`, `hub`, `gguf_reader`: `error`
//! - `interrupt`: `error`, `output`
//! - `faithful`: `error`, `document`
//! - `tokenizer`: `error`, `gguf_reader`
//! - `models`: `error`, `kernels`, `gguf_reader`
//! - `generate`: `error`, `kernels`, `models`
//! - `pipeline`: `error`, `allocator`, `interrupt`, `device`, `document`, `faithful`, `hub`, `tokenizer`, `models`, `generate`
//! - `fuzzing`: `error`, `document`, `gguf_reader`, `tokenizer`, `models`
//! - `cli`: `error`, `device`, `hub`
//! - `serve`: `error`, `document`, `pipeline`
//! - `commands`: `error`, `output`, `interrupt`, `device`, `document`, `eval`, `hub`, `generate`, `pipeline`, `cli`, `serve`
//! - `layers` (the test of this list): nothing
//!
//! Above them all, `main` (the binary) uses the library. So the models (networks, caches,
//! weights loaded from paths) know nothing of decoding; decoding ([`generate`]) runs over the
//! model traits ([`models::Seq2SeqModel`], [`models::CausalLm`]) and knows tokens only; the
//! [`pipeline`] owns text (documents, tokenizers, when a chat reply has said enough) and turns
//! the files [`hub`] resolves into the paths models load; [`tokenizer`] and [`models`] share the
//! GGUF container reader ([`gguf_reader`]) and nothing else.

// Every `unsafe` block is in `kernels`, behind safe functions, except `allocator`'s calls.
#![deny(unsafe_code)]

// The settings of the global allocator: foreign calls that set mimalloc's options, which are
// configuration, not kernels.
#[allow(unsafe_code)]
pub mod allocator;
pub mod cli;
pub mod commands;
pub mod device;
pub mod document;
pub mod error;
pub mod eval;
pub mod faithful;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod gguf_reader;
pub mod hub;
pub mod interrupt;
#[allow(unsafe_code)]
pub mod kernels;
#[cfg(test)]
mod layers;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod serve;
pub mod tokenizer;

pub use error::{Error, Result};
