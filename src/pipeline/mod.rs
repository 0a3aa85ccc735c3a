//! Orchestration: documents in, translations out, with batching and progress.

pub mod chat;
mod progress;
mod prompts;
mod translate;

pub use chat::{ChatPipeline, SummaryLength};
pub use progress::Progress;
pub use translate::{GenerationOverrides, Seq2Seq, Task, Translator};
