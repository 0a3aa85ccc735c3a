//! Throughput measurements shared by the benchmark examples (scripts/bench-translate,
//! scripts/bench-llm) and the GPU check (scripts/gpu-check), so that the CPU and GPU figures come
//! from the same code.
#![allow(dead_code)] // each example uses a different subset

use std::time::Instant;

use candle_core::{DType, Device};
use tarjama::device::{Precision, QuantizeChoice};
use tarjama::generate::argmax;
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::chat::load_model;
use tarjama::pipeline::Seq2Seq;

/// The translation workload: the first `lines` lines of `input` in batches of `batch`, in file
/// order (no length sorting, so the work equals the reference's), exactly `tokens` generated
/// tokens per line, with `beams` beams.
pub struct TranslateWorkload<'a> {
    pub model_dir: &'a str,
    pub input: &'a str,
    pub lines: usize,
    pub tokens: usize,
    pub batch: usize,
    pub beams: usize,
}

impl<'a> TranslateWorkload<'a> {
    /// From the command-line words `MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS`.
    pub fn parse(args: &'a [String]) -> anyhow::Result<Self> {
        let [model_dir, input, lines, tokens, batch, beams] = args else {
            anyhow::bail!("expected MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS");
        };
        Ok(Self {
            model_dir,
            input,
            lines: lines.parse()?,
            tokens: tokens.parse()?,
            batch: batch.parse()?,
            beams: beams.parse()?,
        })
    }

    /// Runs the workload with weights `weights` (`f32`, `f16`, `bf16` or `q8_0`) on `device` and
    /// returns one line of JSON: tokens per second, load time, peak resident memory. With
    /// `ids_out`, the generated ids are written there as JSON.
    pub fn run(
        &self,
        device: &Device,
        weights: &str,
        ids_out: Option<&std::path::Path>,
    ) -> anyhow::Result<String> {
        let precision = match weights {
            "f32" => Precision::from(DType::F32),
            "f16" => Precision::from(DType::F16),
            "bf16" => Precision::from(DType::BF16),
            other => Precision {
                dtype: DType::F32,
                quantize: Some(
                    other
                        .parse::<QuantizeChoice>()
                        .map_err(anyhow::Error::msg)?
                        .format(),
                ),
            },
        };
        let text = std::fs::read_to_string(self.input)?;
        let sentences: Vec<&str> = text.lines().take(self.lines).collect();

        let load = Instant::now();
        let files = hub::resolve(self.model_dir, &HubOptions::default())?;
        let mut translator = Seq2Seq::load(&files, device, precision)?;
        let load_s = load.elapsed().as_secs_f64();
        let g = &mut translator.generation;
        g.num_beams = self.beams;
        // Lengths count the decoder start token, as in the reference.
        g.min_length = self.tokens + 1;
        g.max_length = self.tokens + 1;

        let start = Instant::now();
        let mut generated = 0;
        let mut outputs = Vec::with_capacity(sentences.len());
        for chunk in sentences.chunks(self.batch.max(1)) {
            for ids in translator.generate_ids(chunk)? {
                generated += ids.len();
                outputs.push(ids);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if let Some(path) = ids_out {
            std::fs::write(path, serde_json::to_string(&outputs)?)?;
        }
        Ok(format!(
            "{{\"system\": \"tarjama {weights}\", \"device\": \"{}\", \"lines\": {}, \"tokens\": {generated}, \"seconds\": {secs:.3}, \"tokens_per_s\": {:.1}, \"load_s\": {load_s:.3}, \"peak_rss_mb\": {:.0}, {}}}",
            tarjama::device::describe(device),
            sentences.len(),
            generated as f64 / secs,
            peak_rss_mb(),
            stage_split(&translator.stage_times())
        ))
    }
}

/// The seconds spent in the encoder and in the decoding loops, the decoding steps' mean split,
/// in milliseconds per step, and the share of a step spent on the host around the model's
/// forward pass (scoring, bookkeeping, cache reordering), as JSON fields.
fn stage_split(stages: &tarjama::generate::StageTimes) -> String {
    let t = &stages.steps;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / t.steps.max(1) as f64;
    let host = t.scoring + t.bookkeeping + t.reorder;
    format!(
        "\"encode_s\": {:.3}, \"decode_s\": {:.3}, \"steps\": {}, \"step_ms\": {{\"model\": {:.3}, \"scoring\": {:.3}, \"bookkeeping\": {:.3}, \"reorder\": {:.3}}}, \"host_share\": {:.4}",
        stages.encode.as_secs_f64(),
        stages.decode.as_secs_f64(),
        t.steps,
        ms(t.model),
        ms(t.scoring),
        ms(t.bookkeeping),
        ms(t.reorder),
        host.as_secs_f64() / (host + t.model).as_secs_f64().max(1e-9)
    )
}

/// Feeds `prompt_file` (already in chat format) to a GGUF chat model in chunks of 256 tokens,
/// then generates exactly `new_tokens` greedy tokens, ignoring end-of-turn. Returns one line of
/// JSON with prompt and generation speed.
pub fn llm(
    model: &str,
    prompt_file: &str,
    new_tokens: usize,
    device: &Device,
) -> anyhow::Result<String> {
    let load = Instant::now();
    let (tokenizer, mut chat) = load_model(std::path::Path::new(model), device)?;
    let load_s = load.elapsed().as_secs_f64();
    let prompt = tokenizer.encode(&std::fs::read_to_string(prompt_file)?, false)?;

    let start = Instant::now();
    let mut logits = Vec::new();
    for chunk in prompt.chunks(256) {
        logits = chat.forward(chunk)?;
    }
    let prompt_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..new_tokens {
        let next = argmax(&logits);
        logits = chat.forward(&[next])?;
    }
    let gen_s = start.elapsed().as_secs_f64();
    Ok(format!(
        "{{\"system\": \"tarjama\", \"device\": \"{}\", \"prompt_tokens\": {}, \"prompt_tok_s\": {:.1}, \"generated\": {new_tokens}, \"gen_tok_s\": {:.1}, \"load_s\": {load_s:.2}, \"peak_rss_mb\": {:.0}}}",
        tarjama::device::describe(device),
        prompt.len(),
        prompt.len() as f64 / prompt_s,
        new_tokens as f64 / gen_s,
        peak_rss_mb()
    ))
}

/// The process's peak resident memory (`VmHWM`), in MB; 0 where /proc is not there.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
