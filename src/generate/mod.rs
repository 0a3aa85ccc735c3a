//! Decoding for every encoder-decoder model: greedy and beam search with Hugging Face semantics.
//!
//! A model only has to implement [`Seq2SeqModel`] (defined in [`crate::models`]); the loops here own the decoder cache, reorder
//! it for beam search and drop inputs that are finished, so every model family shares one
//! implementation of search, scoring and stopping.

mod beam;
mod config;
mod device_masks;
mod greedy;
mod host_scores;
pub mod llm;
mod processors;

use candle_core::{Device, Tensor};

pub use config::{refuse_unsupported_generation, EarlyStopping, GenerationConfig};
pub use processors::{argmax, log_softmax, Processors};

pub use crate::models::{CausalLm, DecoderCache, Seq2SeqModel};

/// Generates one token sequence per input of a padded batch. Each result excludes the decoder
/// start token and includes the end-of-sequence token when one was generated.
pub fn generate<M: Seq2SeqModel + ?Sized>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    cfg: &GenerationConfig,
) -> candle_core::Result<Vec<Vec<u32>>> {
    generate_timed(
        model,
        input_ids,
        attention_mask,
        cfg,
        &mut StageTimes::default(),
    )
}

/// Time spent in the encoder and in the decoding loop (cross-attention set-up included), summed
/// over batches, for `--verbose`; `steps` splits the decoding loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub encode: std::time::Duration,
    pub decode: std::time::Duration,
    pub steps: StepTimes,
}

impl std::ops::AddAssign for StageTimes {
    fn add_assign(&mut self, other: Self) {
        self.encode += other.encode;
        self.decode += other.decode;
        self.steps += other.steps;
    }
}

/// The decoding loop's steps split into the model's forward pass and the host work around it,
/// summed over steps: what the benchmark reports as the host's share of a step.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTimes {
    pub steps: usize,
    /// The decoder's forward pass (to the logits).
    pub model: std::time::Duration,
    /// Log-softmax, processors and the choice of tokens (top-k or argmax).
    pub scoring: std::time::Duration,
    /// Hypothesis bookkeeping: finished and running beams, stopping.
    pub bookkeeping: std::time::Duration,
    /// Reordering the cache's rows (following beams, dropping finished inputs).
    pub reorder: std::time::Duration,
}

impl std::ops::AddAssign for StepTimes {
    fn add_assign(&mut self, other: Self) {
        self.steps += other.steps;
        self.model += other.model;
        self.scoring += other.scoring;
        self.bookkeeping += other.bookkeeping;
        self.reorder += other.reorder;
    }
}

/// A stopwatch that bills the time since its last lap to one of a [`StepTimes`]' parts.
struct Laps(std::time::Instant);

impl Laps {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn lap(&mut self, part: &mut std::time::Duration) {
        let now = std::time::Instant::now();
        *part += now - self.0;
        self.0 = now;
    }
}

/// [`generate`], adding the time each stage took to `times`.
pub fn generate_timed<M: Seq2SeqModel + ?Sized>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    cfg: &GenerationConfig,
    times: &mut StageTimes,
) -> candle_core::Result<Vec<Vec<u32>>> {
    let started = std::time::Instant::now();
    let encoder_hidden = model.encode(input_ids, attention_mask)?;
    // GPU kernels run asynchronously: wait for the encoder so its time is not billed to decoding.
    model.device().synchronize()?;
    let encoded = std::time::Instant::now();
    times.encode += encoded - started;
    let cache = model.start_decoder(&encoder_hidden, attention_mask)?;
    let batch = input_ids.dim(0)?;
    let ids = if cfg.max_length <= 1 {
        vec![Vec::new(); batch]
    } else if cfg.num_beams <= 1 {
        greedy::search(model, cache, batch, cfg, &mut times.steps)?
    } else {
        beam::search(model, cache, batch, cfg, &mut times.steps)?
    };
    times.decode += encoded.elapsed();
    Ok(ids)
}

fn row_index(rows: &[u32], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::new(rows, device)
}
