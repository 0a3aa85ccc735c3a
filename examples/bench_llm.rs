//! Prompt and generation speed of a GGUF chat model, for scripts/bench-llm.
//!
//! Usage: bench_llm MODEL.gguf PROMPT_FILE NEW_TOKENS
//! Feeds the prompt file's text (already in chat format) and then generates exactly NEW_TOKENS
//! greedy tokens, ignoring end-of-turn, and prints one line of JSON.

use std::time::Instant;

use candle_core::Device;
use tarjama::generate::argmax;
use tarjama::models::gguf::{read_header, ChatModel};
use tarjama::tokenizer::GgufTokenizer;

// The same allocator as the tarjama binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, prompt, new_tokens] = args.as_slice() else {
        anyhow::bail!("usage: bench_llm MODEL.gguf PROMPT_FILE NEW_TOKENS");
    };
    let new_tokens: usize = new_tokens.parse()?;
    let load = Instant::now();
    let (content, mut file) = read_header(std::path::Path::new(model))?;
    let tokenizer = GgufTokenizer::from_content(&content)?;
    let mut chat = ChatModel::load(content, &mut file, &Device::Cpu)?;
    let load_s = load.elapsed().as_secs_f64();
    let prompt = tokenizer.encode(&std::fs::read_to_string(prompt)?, false)?;

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
    println!(
        "{{\"system\": \"tarjama\", \"prompt_tokens\": {}, \"prompt_tok_s\": {:.1}, \"generated\": {new_tokens}, \"gen_tok_s\": {:.1}, \"load_s\": {load_s:.2}}}",
        prompt.len(),
        prompt.len() as f64 / prompt_s,
        new_tokens as f64 / gen_s
    );
    Ok(())
}
