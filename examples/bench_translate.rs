//! Throughput of tarjama's generation on a model directory, for scripts/bench-translate.
//!
//! Usage: bench_translate MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS [f32|q8_0]
//! Runs the encoder-decoder model (any family: translator or summarizer) on the CPU over the
//! first LINES lines in batches of BATCH, in file order, generating exactly TOKENS tokens per
//! line, with f32 weights or linear layers quantized to q8_0, and prints one line of JSON with
//! the measured tokens per second, the load time, the peak resident memory, and the mean split
//! of a decoding step (`step_ms`: the model's forward pass, scoring, bookkeeping, cache
//! reorder) with the host's share of a step (`host_share`: all but the forward pass).
//! `TARJAMA_BENCH_IDS=FILE` (not empty) also writes the generated ids there.

// The same allocator as the tarjama binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/bench.rs"]
mod bench;

fn main() -> anyhow::Result<()> {
    tarjama::allocator::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_translate MODEL_DIR INPUT_FILE LINES TOKENS BATCH BEAMS [f32|q8_0]";
    let (workload, weights) = match args.len() {
        6 => (&args[..], "f32"),
        7 => (&args[..6], args[6].as_str()),
        _ => anyhow::bail!(usage),
    };
    let workload = bench::TranslateWorkload::parse(workload)?;
    tarjama::device::configure_threads(None)?;
    let ids = std::env::var_os("TARJAMA_BENCH_IDS")
        .filter(|path| !path.is_empty())
        .map(std::path::PathBuf::from);
    println!(
        "{}",
        workload.run(&candle_core::Device::Cpu, weights, ids.as_deref())?
    );
    Ok(())
}
