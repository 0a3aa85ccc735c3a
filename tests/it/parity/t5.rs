//! What is particular to T5, on the tiny trained fixtures (`t5-tiny`: v1.0, ReLU, tied and
//! rescaled head; `t5v11-tiny`: gated-GELU, untied head): relative-position buckets against
//! transformers' tables, task prefixes, config errors, half precision and checkpoint layouts.
//! Logits and generations are checked with the other families in parity/seq2seq.rs.
//! Fixtures come from scripts/make-seq2seq-fixtures.py (transformers 5.24, CPU, f32).

use crate::common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use tarjama::generate::Seq2SeqModel;
use tarjama::models::t5::{self, T5Config, T5Model};

const MODELS: [&str; 2] = ["t5-tiny", "t5v11-tiny"];

fn load(name: &str) -> T5Model {
    let dir = common::fixtures().join(name);
    let config: T5Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb =
        tarjama::models::open_weights(&dir.join("model.safetensors"), DType::F32, &Device::Cpu)
            .unwrap();
    T5Model::load(&config, vb).unwrap()
}

fn reference(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        common::fixtures().join(format!("seq2seq-ref/{name}/forward.safetensors")),
        &Device::Cpu,
    )
    .unwrap()
}

fn to_u32(t: &Tensor) -> Tensor {
    t.to_dtype(DType::U32).unwrap()
}

#[test]
fn relative_position_buckets_match_reference() {
    for name in MODELS {
        let reference = reference(name);
        let config = load(name).config;
        let positions: Vec<i64> = reference["relative_position"].to_vec1().unwrap();
        for (key, bidirectional) in [
            ("relative_bucket_bidirectional", true),
            ("relative_bucket_causal", false),
        ] {
            let expected: Vec<i64> = reference[key].to_vec1().unwrap();
            let got: Vec<i64> = positions
                .iter()
                .map(|&p| t5::relative_position_bucket(&config, p, bidirectional) as i64)
                .collect();
            assert_eq!(got, expected, "{name}: {key}");
        }
    }
}

/// The task prefix each input set of the generation fixture was recorded with.
#[derive(Deserialize)]
struct GenerateFixture {
    input_sets: HashMap<String, InputSet>,
}

#[derive(Deserialize)]
struct InputSet {
    prefix: String,
}

fn load_generate(name: &str) -> GenerateFixture {
    let path = common::fixtures().join(format!("seq2seq-ref/{name}/generate.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn task_prefixes_come_from_the_config() {
    for name in MODELS {
        let model = load(name);
        let fixture = load_generate(name);
        for (task, set) in [("translation_ar_to_en", "ar"), ("summarization", "en_para")] {
            // Not every model has every input set (t5v11-tiny is not trained to summarize).
            if let Some(set) = fixture.input_sets.get(set) {
                assert_eq!(
                    model.task_prefix(task),
                    Some(set.prefix.as_str()),
                    "{name}: {task}"
                );
            }
        }
        assert_eq!(model.task_prefix("translation_en_to_de"), None);
    }
}

#[test]
fn unknown_feed_forward_is_one_clear_error() {
    let config: T5Config = serde_json::from_str(r#"{"feed_forward_proj": "gated-tanh"}"#).unwrap();
    let vb = candle_nn::VarBuilder::zeros(DType::F32, &Device::Cpu);
    let err = T5Model::load(&config, vb).unwrap_err().to_string();
    assert!(err.contains("gated-tanh") && !err.contains('\n'), "{err}");
}

#[test]
fn half_precision_runs_and_stays_near_f32() {
    // Exercises the f16 path (f32 `wo`, widened residual stream, inf clamp) and bf16. transformers
    // itself, loaded in f16/bf16, differs from its f32 logits by up to 0.09/0.54 on these inputs
    // (this implementation: 0.10/0.58).
    for name in MODELS {
        let dir = common::fixtures().join(name);
        let config = load(name).config;
        let reference = reference(name);
        let ids = to_u32(&reference["input_ids"]);
        let mask = to_u32(&reference["attention_mask"]);
        let valid: Vec<Vec<u32>> = to_u32(&reference["decoder_attention_mask"])
            .to_vec2()
            .unwrap();
        for (dtype, tolerance) in [(DType::F16, 0.25), (DType::BF16, 2.0)] {
            let vb =
                tarjama::models::open_weights(&dir.join("model.safetensors"), dtype, &Device::Cpu)
                    .unwrap();
            let model = T5Model::load(&config, vb).unwrap();
            let encoded = model.encode(&ids, &mask).unwrap();
            assert_eq!(encoded.dtype(), dtype);
            let mut cache = model.start_decoder(&encoded, &mask).unwrap();
            let logits = model
                .decode(&to_u32(&reference["decoder_input_ids"]), &mut cache)
                .unwrap();
            let mut worst = 0f32;
            for (r, row) in valid.iter().enumerate() {
                let n = row.iter().filter(|&&v| v == 1).count();
                let ours = logits.get(r).unwrap().narrow(0, 0, n).unwrap();
                let theirs = reference["logits"].get(r).unwrap().narrow(0, 0, n).unwrap();
                worst = worst.max(common::max_abs_diff(&ours, &theirs));
            }
            eprintln!("{name} {dtype:?}: logits max |Δ| from f32 reference {worst}");
            assert!(
                worst < tolerance,
                "{name} {dtype:?}: logits differ by {worst}"
            );
        }
    }
}

#[test]
fn embeddings_stored_per_stack_load_like_shared() {
    // Some checkpoints store `encoder.embed_tokens.weight`/`decoder.embed_tokens.weight` instead
    // of `shared.weight`; the tied LM head must then come from them.
    let name = "t5-tiny";
    let dir = common::fixtures().join(name);
    let mut tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let shared = tensors.remove("shared.weight").unwrap();
    tensors.insert("encoder.embed_tokens.weight".into(), shared.clone());
    tensors.insert("decoder.embed_tokens.weight".into(), shared);
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let renamed = T5Model::load(&load(name).config, vb).unwrap();
    let original = load(name);
    let reference = reference(name);
    let ids = to_u32(&reference["input_ids"]);
    let mask = to_u32(&reference["attention_mask"]);
    let decoder_ids = to_u32(&reference["decoder_input_ids"]);
    let logits = |model: &T5Model| {
        let encoded = model.encode(&ids, &mask).unwrap();
        let mut cache = model.start_decoder(&encoded, &mask).unwrap();
        model.decode(&decoder_ids, &mut cache).unwrap()
    };
    assert_eq!(
        common::max_abs_diff(&logits(&renamed), &logits(&original)),
        0.0
    );
}
