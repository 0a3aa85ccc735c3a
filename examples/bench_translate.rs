//! Throughput of tarjama's generation on a model directory, for scripts/bench-translate.
//!
//! Usage: bench_translate MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS [f32|q8_0]
//! Runs the encoder-decoder model (any family: translator or summarizer) on the first LINES
//! lines in batches of BATCH, in file order (no length sorting, so the work equals the
//! reference's), generating exactly TOKENS tokens per line, with f32 weights or linear layers
//! quantized to q8_0, and prints one line of JSON with the measured tokens per second, the load
//! time and the peak resident memory.

use std::time::Instant;

// The same allocator as the tarjama binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{DType, Device};
use tarjama::device::{Precision, QuantizeChoice};
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::Seq2Seq;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, input, lines, tokens, batch, beams, weights) = match args.as_slice() {
        [d, i, l, t, b, n] => (d, i, l, t, b, n, "f32"),
        [d, i, l, t, b, n, w] => (d, i, l, t, b, n, w.as_str()),
        _ => anyhow::bail!(
            "usage: bench_translate MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS [f32|q8_0]"
        ),
    };
    let precision = Precision {
        dtype: DType::F32,
        quantize: match weights {
            "f32" => None,
            other => Some(
                other
                    .parse::<QuantizeChoice>()
                    .map_err(anyhow::Error::msg)?
                    .format(),
            ),
        },
    };
    tarjama::device::configure_threads(None)?;
    let (lines, tokens, batch, beams): (usize, usize, usize, usize) = (
        lines.parse()?,
        tokens.parse()?,
        batch.parse()?,
        beams.parse()?,
    );
    let text = std::fs::read_to_string(input)?;
    let sentences: Vec<&str> = text.lines().take(lines).collect();

    let load = Instant::now();
    let files = hub::resolve(dir, &HubOptions::default())?;
    let mut translator = Seq2Seq::load(&files, &Device::Cpu, precision)?;
    let load_s = load.elapsed().as_secs_f64();
    let g = &mut translator.generation;
    g.num_beams = beams;
    // Lengths count the decoder start token, as in the reference.
    g.min_length = tokens + 1;
    g.max_length = tokens + 1;

    let start = Instant::now();
    let mut generated = 0;
    let mut outputs = Vec::with_capacity(sentences.len());
    for chunk in sentences.chunks(batch) {
        for ids in translator.generate_ids(chunk)? {
            generated += ids.len();
            outputs.push(ids);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // The generated ids, for comparing weight formats with each other.
    if let Some(path) = std::env::var_os("TARJAMA_BENCH_IDS") {
        std::fs::write(path, serde_json::to_string(&outputs)?)?;
    }
    println!(
        "{{\"system\": \"tarjama {weights}\", \"lines\": {}, \"tokens\": {generated}, \"seconds\": {secs:.3}, \"tokens_per_s\": {:.1}, \"load_s\": {load_s:.3}, \"peak_rss_mb\": {:.0}}}",
        sentences.len(),
        generated as f64 / secs,
        peak_rss_mb()
    );
    Ok(())
}

/// The process's peak resident memory (`VmHWM`), in MB; 0 where /proc is not there.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
