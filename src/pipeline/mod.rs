//! Orchestration: documents in, translations and summaries out, with batching and progress.

pub mod chat;
mod checkpoint;
mod progress;
mod prompts;
mod reply;
mod summarize;
mod translate;

pub use chat::{ChatPipeline, SummaryLength};
pub use progress::Progress;
pub use summarize::{trim_to_length, ArticleSummary, Summarizer};
pub use translate::{GenerationOverrides, Seq2Seq, Task, Translator};
