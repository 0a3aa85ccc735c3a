//! Orchestration: documents in, translations and summaries out, with batching and progress.

mod bans;
pub mod chat;
mod checked;
mod checkpoint;
mod engine;
pub mod int8;
mod progress;
mod prompts;
pub mod record;
mod reply;
mod summarize;
mod translate;

pub use chat::{ChatPipeline, SummaryLength};
pub use engine::{
    ChatOptions, Engine, EngineOptions, EngineSpec, Purpose, Runtime, Summary, Translated, Usage,
};
pub use progress::{Progress, ProgressMode};
pub use record::OutputRecord;
pub use summarize::{article_paragraphs, trim_to_length, ArticleSummary, Summarizer};
pub use translate::{GenerationOverrides, Seq2Seq, Task, Translator};
