//! Throughput of tarjama's generation on a model directory, for scripts/bench-translate.
//!
//! Usage: bench_translate MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS
//! Runs the encoder-decoder model (any family: translator or summarizer) on the first LINES
//! lines in batches of BATCH, in file order (no length sorting, so the work equals the
//! reference's), generating exactly TOKENS tokens per line, and prints one line of JSON with the
//! measured tokens per second.

use std::time::Instant;

// The same allocator as the tarjama binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{DType, Device};
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::Seq2Seq;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, input, lines, tokens, batch, beams] = args.as_slice() else {
        anyhow::bail!("usage: bench_translate MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS");
    };
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
    let mut translator = Seq2Seq::load(&files, &Device::Cpu, DType::F32)?;
    let load_s = load.elapsed().as_secs_f64();
    let g = &mut translator.generation;
    g.num_beams = beams;
    // Lengths count the decoder start token, as in the reference.
    g.min_length = tokens + 1;
    g.max_length = tokens + 1;

    let start = Instant::now();
    let mut generated = 0;
    for chunk in sentences.chunks(batch) {
        for ids in translator.generate_ids(chunk)? {
            generated += ids.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"system\": \"tarjama\", \"lines\": {}, \"tokens\": {generated}, \"seconds\": {secs:.3}, \"tokens_per_s\": {:.1}, \"load_s\": {load_s:.3}}}",
        sentences.len(),
        generated as f64 / secs
    );
    Ok(())
}
