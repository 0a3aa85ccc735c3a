//! Parity with Hugging Face transformers on the tiny trained Marian fixture: encoder output and
//! logits within 1e-4, generated ids identical for greedy and beam search, batched or not.
//! Fixtures come from scripts/make-seq2seq-fixtures.py (its Marian family).

use crate::common;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::Translator;

fn translator() -> Translator {
    let files = hub::resolve(
        common::fixtures().join("marian-tiny").to_str().unwrap(),
        &HubOptions::default(),
    )
    .unwrap();
    Translator::load(&files, &Device::Cpu, DType::F32).unwrap()
}

fn to_u32(t: &Tensor) -> Tensor {
    t.to_dtype(DType::U32).unwrap()
}

#[test]
fn encoder_output_and_logits_match_reference() {
    let t = translator();
    let reference = candle_core::safetensors::load(
        common::fixtures().join("marian-tiny-ref/forward.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let ids = to_u32(&reference["input_ids"]);
    let mask = to_u32(&reference["attention_mask"]);
    let model = t.model();

    let encoded = model.encode(&ids, &mask).unwrap();
    let worst = common::max_abs_diff_real(&encoded, &reference["encoder_hidden_states"], &mask);
    assert!(worst < 1e-4, "encoder output differs by {worst}");

    let mut cache = model.start_decoder(&encoded, &mask).unwrap();
    let decoder_ids = to_u32(&reference["decoder_input_ids"]);
    let logits = model.decode(&decoder_ids, &mut cache).unwrap();
    // Positions after a row's padding may attend differently; compare only real positions.
    let all = Tensor::ones(decoder_ids.dims2().unwrap(), DType::U32, &Device::Cpu).unwrap();
    let valid = reference.get("decoder_attention_mask").unwrap_or(&all);
    let worst = common::max_abs_diff_real(&logits, &reference["logits"], valid);
    assert!(worst < 1e-4, "logits differ by {worst}");
}

#[derive(Deserialize)]
struct GenerateFixture {
    cases: Vec<GenerateCase>,
}

#[derive(Deserialize)]
struct GenerateCase {
    name: String,
    params: common::Params,
    inputs: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    output_ids: Vec<Vec<u32>>,
    texts: Vec<String>,
}

fn load_cases() -> Vec<GenerateCase> {
    let text =
        std::fs::read_to_string(common::fixtures().join("marian-tiny-ref/generate.json")).unwrap();
    serde_json::from_str::<GenerateFixture>(&text)
        .unwrap()
        .cases
}

/// The reference's row without its start token and trailing padding.
fn strip(row: &[u32], pad: u32) -> Vec<u32> {
    let mut out = row[1..].to_vec();
    while out.last() == Some(&pad) {
        out.pop();
    }
    out
}

#[test]
fn generation_matches_reference_in_padded_batches() {
    let mut t = translator();
    let pad = t.tokenizer().pad_id();
    let cases = load_cases();
    assert!(
        cases.len() >= 8,
        "expected the full set of generation cases"
    );
    for case in &cases {
        case.params.apply(&mut t.generation);
        assert!(case.inputs.len() >= 20, "{}: too few inputs", case.name);
        for (i, input) in case.inputs.iter().enumerate() {
            assert_eq!(
                t.tokenizer().encode(input),
                case.input_ids[i],
                "{}: input {i} ids",
                case.name
            );
        }
        let mut mismatches = Vec::new();
        for (b, batch) in case.inputs.chunks(case.params.batch_size).enumerate() {
            let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
            let got = t.generate_ids(&texts).unwrap();
            for (j, ids) in got.iter().enumerate() {
                let i = b * case.params.batch_size + j;
                let expected = strip(&case.output_ids[i], pad);
                if *ids != expected {
                    mismatches.push(format!("input {i}: got {ids:?}, expected {expected:?}"));
                } else {
                    assert_eq!(
                        t.tokenizer().decode(ids),
                        case.texts[i],
                        "{}: text {i}",
                        case.name
                    );
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "{}: {}",
            case.name,
            mismatches.join("\n")
        );
    }
}

#[test]
fn one_at_a_time_equals_batched() {
    let mut t = translator();
    let pad = t.tokenizer().pad_id();
    for case in load_cases().iter().filter(|c| {
        ["greedy", "beam4", "beam4_no_repeat3", "beam4_lp2.0"].contains(&c.name.as_str())
    }) {
        case.params.apply(&mut t.generation);
        for (i, input) in case.inputs.iter().enumerate().step_by(3) {
            let got = t.generate_ids(&[input.as_str()]).unwrap();
            assert_eq!(
                got[0],
                strip(&case.output_ids[i], pad),
                "{}: input {i}",
                case.name
            );
        }
    }
}

#[test]
fn default_generation_settings_come_from_generation_config() {
    let t = translator();
    let g = &t.generation;
    let pad = t.tokenizer().pad_id();
    assert_eq!(g.num_beams, 4);
    assert_eq!(g.max_length, 128);
    assert!(g.renormalize_logits);
    assert_eq!(g.bad_words_ids, vec![vec![pad]]);
    assert_eq!(g.forced_eos_token_id, Some(0));
    assert_eq!(g.decoder_start_token_id, pad);
}
