//! The integration tests, in one binary: every test file used to be a binary of its own, each
//! linking candle, and linking took much of a test run. One module per area; run one with
//! `cargo test --release --test it <module>::` (for example `parity::`, `cli::`, `metrics::bleu::`).
//!
//! The tests read the committed fixtures in `tests/fixtures/` and the shared corpus in
//! `../shared/data`. Tests that measure the memory of the processes they start run themselves in
//! a process of their own (`common::alone_in_a_process`).

mod common;

mod batch;
mod cli;
mod conventions;
mod docs;
mod document;
mod engine_flags;
mod eval_cli;
mod exit_codes;
mod faithful;
mod fuzz_regressions;
mod help;
mod language;
mod long_lines;
mod model_limits;
mod models_cli;
mod output_safety;
mod parser_memory;
mod portable;
mod progress;
mod quantize;
mod quantize_saved;
mod recipes;
mod scripts;
mod serve;
mod shards;
mod soak;
mod streaming;
mod streams;
mod summarize;
mod summarize_seq2seq;
mod summary_check;
mod tokenizer;

/// Reference parity with transformers, per model family.
mod parity {
    mod marian;
    mod seq2seq;
    mod t5;
}

/// chrF, chrF++, BLEU and ROUGE against sacrebleu and rouge-score.
mod metrics {
    mod bleu;
    mod chrf;
    mod multiref;
    mod rouge;
}

/// Chat models in GGUF files: the decoder and the tokenizers.
mod gguf {
    mod decoder;
    mod reference;
    mod spm_tokenizer;
    mod tokenizer;
}
