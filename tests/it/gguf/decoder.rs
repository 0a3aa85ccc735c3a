//! The GGUF decoder (Llama, Qwen2, Qwen3) against transformers on tiny random-weight models with
//! F32 tensors (tests/fixtures/gguf-tiny, made by scripts/make-gguf-model-fixtures.py): logits
//! within 1e-4, through the key/value cache, after cutting the cache back to a shared prompt
//! prefix, and greedy ids exactly.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::Device;
use serde::Deserialize;
use tarjama::fuzzing::{gemma3_gguf, GgufParts};
use tarjama::models::gguf::{read_header, ChatModel};

use crate::common;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    models: std::collections::HashMap<String, ModelCases>,
}

#[derive(Deserialize)]
struct ModelCases {
    file: String,
    last_logits: Vec<LogitsCase>,
    incremental: Incremental,
    prefix_reuse: PrefixReuse,
    greedy: Greedy,
}

#[derive(Deserialize)]
struct LogitsCase {
    input_ids: Vec<u32>,
    logits: Vec<f32>,
}

#[derive(Deserialize)]
struct Incremental {
    prompt: Vec<u32>,
    steps: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct PrefixReuse {
    common_prefix: usize,
    a: LogitsCase,
    b: LogitsCase,
}

#[derive(Deserialize)]
struct Greedy {
    input_ids: Vec<u32>,
    max_new_tokens: usize,
    generated_ids: Vec<u32>,
    step_logits: Vec<Vec<f32>>,
}

fn fixtures() -> PathBuf {
    common::fixtures().join("gguf-tiny")
}

fn cases(arch: &str) -> ModelCases {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    let mut reference: Reference = serde_json::from_str(&text).unwrap();
    reference.models.remove(arch).unwrap()
}

fn load(cases: &ModelCases) -> ChatModel {
    let (content, mut file) = read_header(&fixtures().join(&cases.file)).unwrap();
    ChatModel::load(&content, &mut file, &Device::Cpu).unwrap()
}

#[track_caller]
fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: vocabulary size");
    let worst = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0f32, f32::max);
    assert!(worst <= TOLERANCE, "{what}: max |Δlogit| {worst:e}");
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn check_architecture(arch: &str) {
    let cases = cases(arch);
    let mut model = load(&cases);
    assert_eq!(model.architecture, arch);

    for (i, case) in cases.last_logits.iter().enumerate() {
        model.reset();
        let logits = model.forward(&case.input_ids).unwrap();
        assert_close(&logits, &case.logits, &format!("{arch} prompt {i}"));
    }

    let inc = &cases.incremental;
    model.reset();
    let logits = model.forward(&inc.prompt).unwrap();
    assert_close(
        &logits,
        &inc.logits[0],
        &format!("{arch} incremental prompt"),
    );
    for (step, (&token, expected)) in inc.steps.iter().zip(&inc.logits[1..]).enumerate() {
        let logits = model.forward(&[token]).unwrap();
        assert_close(
            &logits,
            expected,
            &format!("{arch} incremental step {step}"),
        );
    }

    // A's keys and values are cut back to the shared prefix, and B continues from there.
    let reuse = &cases.prefix_reuse;
    model.reset();
    let logits = model.forward(&reuse.a.input_ids).unwrap();
    assert_close(&logits, &reuse.a.logits, &format!("{arch} prompt A"));
    let cached = model.reuse_prefix(&reuse.b.input_ids);
    assert_eq!(cached, reuse.common_prefix, "{arch}: reused prefix");
    assert_eq!(model.position(), reuse.common_prefix);
    let logits = model.forward(&reuse.b.input_ids[cached..]).unwrap();
    assert_close(
        &logits,
        &reuse.b.logits,
        &format!("{arch} prompt B after A"),
    );

    let greedy = &cases.greedy;
    model.reset();
    let mut logits = model.forward(&greedy.input_ids).unwrap();
    let mut generated = Vec::new();
    for step in 0..greedy.max_new_tokens {
        assert_close(
            &logits,
            &greedy.step_logits[step],
            &format!("{arch} greedy step {step}"),
        );
        let next = argmax(&logits);
        generated.push(next);
        logits = model.forward(&[next]).unwrap();
    }
    assert_eq!(generated, greedy.generated_ids, "{arch} greedy ids");
}

#[test]
fn qwen2_matches_transformers() {
    check_architecture("qwen2");
}

#[test]
fn qwen3_matches_transformers() {
    check_architecture("qwen3");
}

#[test]
fn llama_matches_transformers() {
    check_architecture("llama");
}

#[test]
fn a_prompt_already_cached_still_reads_its_last_token() {
    let cases = cases("qwen2");
    let mut model = load(&cases);
    let prompt = &cases.last_logits[1].input_ids;
    model.forward(prompt).unwrap();
    // The whole prompt is cached, but the logits after it need one token read again.
    assert_eq!(model.reuse_prefix(prompt), prompt.len() - 1);
    let logits = model.forward(&prompt[prompt.len() - 1..]).unwrap();
    assert_close(
        &logits,
        &cases.last_logits[1].logits,
        "qwen2 re-read prompt",
    );
}

#[test]
fn a_different_prompt_reuses_nothing() {
    let cases = cases("qwen2");
    let mut model = load(&cases);
    model.forward(&[1, 2, 3]).unwrap();
    assert_eq!(model.reuse_prefix(&[4, 5, 6]), 0);
    assert_eq!(model.position(), 0);
}

/// A file's weights used where a mapping of it puts them (`load`) and the same bytes read into
/// memory of their own give the same logits, bit for bit.
#[test]
fn a_mapped_file_and_its_bytes_read_give_the_same_logits() {
    for arch in ["qwen2", "qwen3", "llama"] {
        let cases = cases(arch);
        let mut mapped = load(&cases);
        let bytes = std::fs::read(fixtures().join(&cases.file)).unwrap();
        let mut read = load_bytes(&bytes).unwrap();
        // The embeddings at least (the F32 linears become candle's own float copies).
        assert!(mapped.in_place_bytes() > 0, "{arch}: nothing used in place");
        assert_eq!(read.in_place_bytes(), 0);
        let prompt = &cases.greedy.input_ids;
        let (a, b) = (
            mapped.forward(prompt).unwrap(),
            read.forward(prompt).unwrap(),
        );
        assert_eq!(a, b, "{arch} prompt");
        let next = argmax(&a);
        assert_eq!(
            mapped.forward(&[next]).unwrap(),
            read.forward(&[next]).unwrap(),
            "{arch} step"
        );
    }
}

/// The same on the real model, whose Q5_0, Q4_K, Q6_K and Q8_0 weights take every path: the
/// output projection and embeddings used in place, Q5_0 weights converted from the mapping
/// (whose pages are then let go), K-quants repacked by candle.
#[test]
fn the_real_model_mapped_and_read_gives_the_same_logits() {
    let Some(path) = common::real_test_model() else {
        return;
    };
    let (content, mut file) = read_header(&path).unwrap();
    let mut mapped = ChatModel::load(&content, &mut file, &Device::Cpu).unwrap();
    mapped.fault_in_weights();
    // The Q8_0 output projection (145 MB) and Q5_0 embeddings (94 MB) at least.
    assert!(
        mapped.in_place_bytes() > 230_000_000,
        "{}",
        mapped.in_place_bytes()
    );
    let bytes = std::fs::read(&path).unwrap();
    let mut read = load_bytes(&bytes).unwrap();
    drop(bytes);
    let prompt = [151644, 872, 198, 9707, 11, 1879, 0, 151645, 198];
    let (a, b) = (
        mapped.forward(&prompt).unwrap(),
        read.forward(&prompt).unwrap(),
    );
    assert_eq!(a, b, "prompt");
    let next = argmax(&a);
    assert_eq!(
        mapped.forward(&[next]).unwrap(),
        read.forward(&[next]).unwrap(),
        "step"
    );
}

/// Loads GGUF bytes in memory, as `read_header` and `ChatModel::load` do a file.
fn load_bytes(bytes: &[u8]) -> tarjama::Result<ChatModel> {
    let mut reader = std::io::Cursor::new(bytes);
    let content = tarjama::models::gguf::read_content(&mut reader, Path::new("model.gguf"))?;
    ChatModel::load(&content, &mut reader, &Device::Cpu)
}

/// The tiny Gemma 3 made from the Qwen3 fixture (`tarjama::fuzzing::gemma3_gguf`) with one
/// metadata key changed.
fn gemma3_with(key: &str, value: gguf_file::Value) -> Vec<u8> {
    let mut parts = GgufParts::read(&gemma3_gguf());
    parts.set(key, Some(value));
    parts.to_bytes()
}

/// candle's Gemma 3 loader reads its hyperparameters without checking them: a sliding-window
/// period of 0 divided by zero as the first layer loaded, and 0 key/value heads as the first
/// token ran. They are checked first now, as for the other architectures.
#[test]
fn gemma3_hyperparameters_are_checked_before_candle_reads_them() {
    let mut model = load_bytes(&gemma3_gguf()).unwrap();
    assert_eq!(model.architecture, "gemma3");
    assert_eq!(model.forward(&[1, 2, 3]).unwrap().len(), 512);
    for (key, value, what) in [
        (
            "gemma3.attention.sliding_window_type",
            gguf_file::Value::U32(0),
            "gemma3.attention.sliding_window_type is 0",
        ),
        (
            "gemma3.attention.head_count_kv",
            gguf_file::Value::U32(0),
            "gemma3.attention.head_count_kv is 0",
        ),
        (
            "gemma3.attention.head_count",
            gguf_file::Value::U32(2),
            "tensor blk.0.attn_q.weight is 128 × 64 where the metadata implies 64 × 64",
        ),
        (
            "gemma3.attention.value_length",
            gguf_file::Value::U32(16),
            "gemma3.attention.value_length is 16, not the key width 32",
        ),
        (
            "gemma3.rope.local_freq_base",
            gguf_file::Value::F32(f32::NAN),
            "gemma3.rope.local_freq_base is NaN",
        ),
    ] {
        let err = match load_bytes(&gemma3_with(key, value)) {
            // Before: these loaded, and the model had to run to show it.
            Ok(mut model) => {
                let ran = model.forward(&[1, 2, 3]);
                panic!("{key}: loaded, and ran to {:?}", ran.map(|l| l.len()))
            }
            Err(err) => err,
        };
        let msg = err.to_string();
        assert_eq!(err.exit_code(), 3, "{msg}");
        assert!(msg.contains(what) && msg.lines().count() == 1, "{msg}");
    }
}
