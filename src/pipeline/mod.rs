//! Orchestration: documents in, translations out, with batching and progress.

mod progress;
mod translate;

pub use progress::Progress;
pub use translate::{GenerationOverrides, Translator};
