//! Prompt and generation speed of a GGUF chat model on the CPU, for scripts/bench-llm.
//!
//! Usage: bench_llm MODEL.gguf PROMPT_FILE NEW_TOKENS
//! Feeds the prompt file's text (already in chat format) and then generates exactly NEW_TOKENS
//! greedy tokens, ignoring end-of-turn, and prints one line of JSON.

// The same allocator as the tarjama binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/bench.rs"]
mod bench;

fn main() -> anyhow::Result<()> {
    tarjama::allocator::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, prompt, new_tokens] = args.as_slice() else {
        anyhow::bail!("usage: bench_llm MODEL.gguf PROMPT_FILE NEW_TOKENS");
    };
    let line = bench::llm(
        model,
        prompt,
        new_tokens.parse()?,
        &candle_core::Device::Cpu,
    )?;
    println!("{line}");
    Ok(())
}
