//! Parity with transformers for every encoder-decoder family on tiny trained fixtures
//! (tests/fixtures/<name>/, references in tests/fixtures/seq2seq-ref/<name>/, both made by
//! scripts/make-seq2seq-fixtures.py): tokenizer ids and decodes exactly, encoder output and
//! padded-batch logits within 1e-4, greedy and beam generations in padded batches identical.
//! Marian has its own older fixture layout (parity/marian.rs).

use crate::common;

use std::collections::HashMap;

use candle_core::{DType, Device};
use serde::Deserialize;
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::Seq2Seq;
use tarjama::tokenizer::Seq2SeqTokenizer;

fn load(name: &str) -> Seq2Seq {
    let files = hub::resolve(
        common::fixtures().join(name).to_str().unwrap(),
        &HubOptions::default(),
    )
    .unwrap();
    Seq2Seq::load(&files, &Device::Cpu, DType::F32).unwrap()
}

fn reference(name: &str, file: &str) -> String {
    std::fs::read_to_string(common::fixtures().join("seq2seq-ref").join(name).join(file)).unwrap()
}

#[derive(Deserialize)]
struct TokenizerFixture {
    encode: Vec<EncodeCase>,
    #[serde(default)]
    encode_special: Vec<EncodeCase>,
    decode: Vec<DecodeCase>,
}

#[derive(Deserialize)]
struct EncodeCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct DecodeCase {
    ids: Vec<u32>,
    text: String,
}

fn check_tokenizer(name: &str) {
    let mut model = load(name);
    // The recorded ids are of the bare text; the pipeline adds task prefixes itself.
    model.tokenizer_mut().set_text_prefix("");
    let tok = model.tokenizer();
    let fixture: TokenizerFixture =
        serde_json::from_str(&reference(name, "tokenizer.json")).unwrap();
    assert!(
        fixture.encode.len() >= 20,
        "{name}: too few tokenizer cases"
    );
    for case in fixture.encode.iter().chain(&fixture.encode_special) {
        assert_eq!(
            tok.encode(&case.text),
            case.ids,
            "{name}: ids of {:?}",
            case.text
        );
    }
    for case in &fixture.decode {
        assert_eq!(
            tok.decode(&case.ids),
            case.text,
            "{name}: decode of {:?}",
            case.ids
        );
    }
}

fn check_forward(name: &str) {
    let seq2seq = load(name);
    let model = seq2seq.model();
    let reference = candle_core::safetensors::load(
        common::fixtures()
            .join("seq2seq-ref")
            .join(name)
            .join("forward.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let u32_of = |key: &str| reference[key].to_dtype(DType::U32).unwrap();
    let (ids, mask) = (u32_of("input_ids"), u32_of("attention_mask"));
    let encoded = model.encode(&ids, &mask).unwrap();
    let worst_hidden =
        common::max_abs_diff_real(&encoded, &reference["encoder_hidden_states"], &mask);
    let decoder_ids = u32_of("decoder_input_ids");
    let mut cache = model.start_decoder(&encoded, &mask).unwrap();
    let logits = model.decode(&decoder_ids, &mut cache).unwrap();
    let worst_logits = common::max_abs_diff_real(
        &logits,
        &reference["logits"],
        &reference["decoder_attention_mask"],
    );
    assert!(
        worst_hidden < 1e-4,
        "{name}: encoder output differs by {worst_hidden}"
    );
    assert!(
        worst_logits < 1e-4,
        "{name}: logits differ by {worst_logits}"
    );
}

#[derive(Deserialize)]
struct GenerateFixture {
    input_sets: HashMap<String, InputSet>,
    cases: Vec<GenerateCase>,
}

#[derive(Deserialize)]
struct InputSet {
    /// T5 task prefix, put before each input.
    #[serde(default)]
    prefix: String,
    inputs: Vec<String>,
    input_ids: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct GenerateCase {
    name: String,
    input_set: String,
    params: common::Params,
    output_ids: Vec<Vec<u32>>,
    texts: Vec<String>,
}

/// The reference row after its decoder start, up to and including the first end token (the
/// fill after it is pad or end token depending on the search).
fn expected_ids(row: &[u32], eos: u32) -> Vec<u32> {
    let row = &row[1..];
    match row.iter().position(|&t| t == eos) {
        Some(end) => row[..=end].to_vec(),
        None => row.to_vec(),
    }
}

fn check_generation(name: &str) {
    check_generation_cases(name, 8);
}

fn check_generation_cases(name: &str, min_cases: usize) {
    let mut model = load(name);
    let eos = model.tokenizer().eos_id();
    let fixture: GenerateFixture = serde_json::from_str(&reference(name, "generate.json")).unwrap();
    assert!(
        fixture.cases.len() >= min_cases,
        "{name}: too few generation cases"
    );
    let (mut compared, mut ended) = (0, 0);
    let mut mismatches = Vec::new();
    for case in &fixture.cases {
        case.params.apply(&mut model.generation);
        let set = &fixture.input_sets[&case.input_set];
        model.tokenizer_mut().set_text_prefix(&set.prefix);
        for (input, ids) in set.inputs.iter().zip(&set.input_ids) {
            assert_eq!(
                &model.tokenizer().encode(input),
                ids,
                "{name}/{}: ids of {input:?}",
                case.name
            );
        }
        for (b, batch) in set.inputs.chunks(case.params.batch_size).enumerate() {
            let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
            for (j, got) in model.generate_ids(&texts).unwrap().iter().enumerate() {
                let i = b * case.params.batch_size + j;
                let expected = expected_ids(&case.output_ids[i], eos);
                compared += 1;
                ended += usize::from(expected.last() == Some(&eos));
                if *got != expected {
                    mismatches.push(format!(
                        "{}/{i}: got {got:?}, expected {expected:?}",
                        case.name
                    ));
                } else {
                    assert_eq!(
                        model.tokenizer().decode(got),
                        case.texts[i],
                        "{name}/{}: text {i}",
                        case.name
                    );
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{name}: {} of {compared} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The fixture model was trained so that most outputs end before the length limit.
    assert!(
        ended * 2 > compared,
        "{name}: only {ended} of {compared} outputs end"
    );
}

#[test]
fn bart_tokenizer() {
    check_tokenizer("bart-tiny");
}

#[test]
fn bart_forward() {
    check_forward("bart-tiny");
}

#[test]
fn bart_generation() {
    check_generation("bart-tiny");
}

#[test]
fn nllb_tokenizer() {
    check_tokenizer("nllb-tiny");
}

#[test]
fn nllb_forward() {
    check_forward("nllb-tiny");
}

#[test]
fn nllb_generation() {
    check_generation("nllb-tiny");
}

/// Multilingual models start every output with the English code (NLLB `eng_Latn`, mBART
/// `en_XX`).
fn check_forces_english_first(name: &str) {
    let model = load(name);
    let english = model.tokenizer().english_code().unwrap();
    assert_eq!(model.generation.forced_bos_token_id, Some(english));
}

#[test]
fn nllb_forces_english_first() {
    check_forces_english_first("nllb-tiny");
}

#[test]
fn mbart_tokenizer() {
    check_tokenizer("mbart-tiny");
}

#[test]
fn mbart_forward() {
    check_forward("mbart-tiny");
}

#[test]
fn mbart_generation() {
    check_generation("mbart-tiny");
}

#[test]
fn mbart_forces_english_first() {
    check_forces_english_first("mbart-tiny");
}

#[test]
fn t5_tokenizer() {
    check_tokenizer("t5-tiny");
}

#[derive(Deserialize)]
struct SpieceFixture {
    settings: HashMap<String, SpieceSetting>,
}

#[derive(Deserialize)]
struct SpieceSetting {
    /// The json files next to spiece.model (csebuetnlp's tokenizer_config.json for mT5).
    files: HashMap<String, serde_json::Value>,
    encode: Vec<EncodeCase>,
    decode: Vec<DecodeCase>,
}

/// Repos without tokenizer.json (csebuetnlp/mT5_multilingual_XLSum): the tokenizer is built from
/// spiece.model as transformers builds it, with T5's default 100 sentinels and with mT5's none.
#[test]
fn t5_tokenizer_from_spiece_model_alone() {
    let reference_dir = common::fixtures().join("seq2seq-ref/t5-tiny");
    let fixture: SpieceFixture =
        serde_json::from_str(&reference("t5-tiny", "spiece.json")).unwrap();
    assert_eq!(fixture.settings.len(), 2);
    let config = serde_json::json!({"pad_token_id": 0, "eos_token_id": 1});
    for (name, setting) in &fixture.settings {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(
            reference_dir.join("spiece.model"),
            tmp.path().join("spiece.model"),
        )
        .unwrap();
        for (file, content) in &setting.files {
            std::fs::write(tmp.path().join(file), content.to_string()).unwrap();
        }
        let tok = Seq2SeqTokenizer::from_dir(tmp.path(), "mt5", &config).unwrap();
        assert!(setting.encode.len() >= 40, "{name}: too few cases");
        for case in &setting.encode {
            assert_eq!(tok.encode(&case.text), case.ids, "{name}: {:?}", case.text);
        }
        for case in &setting.decode {
            assert_eq!(tok.decode(&case.ids), case.text, "{name}: {:?}", case.ids);
        }
    }
}

/// The fixture model with spiece.model in place of its tokenizer.json (and its
/// tokenizer_config.json's 8 sentinels) loads and generates exactly as with the file.
#[test]
fn t5_model_without_tokenizer_json_generates_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t5-spiece");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(common::fixtures().join("t5-tiny")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "tokenizer.json" {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(
        common::fixtures().join("seq2seq-ref/t5-tiny/spiece.model"),
        dir.join("spiece.model"),
    )
    .unwrap();
    let from_spiece = {
        let files = hub::resolve(dir.to_str().unwrap(), &HubOptions::default()).unwrap();
        Seq2Seq::load(&files, &Device::Cpu, DType::F32).unwrap()
    };
    let from_json = load("t5-tiny");
    let fixture: TokenizerFixture =
        serde_json::from_str(&reference("t5-tiny", "tokenizer.json")).unwrap();
    for case in fixture.encode.iter().chain(&fixture.encode_special) {
        assert_eq!(
            from_spiece.tokenizer().encode(&case.text),
            from_json.tokenizer().encode(&case.text),
            "{:?}",
            case.text
        );
    }
    let inputs: Vec<&str> = fixture
        .encode
        .iter()
        .take(8)
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(
        from_spiece.generate_ids(&inputs).unwrap(),
        from_json.generate_ids(&inputs).unwrap()
    );
}

#[test]
fn t5_forward() {
    check_forward("t5-tiny");
}

#[test]
fn t5_generation() {
    check_generation("t5-tiny");
}

#[test]
fn t5_v1_1_forward() {
    check_forward("t5v11-tiny");
}

#[test]
fn t5_v1_1_generation() {
    check_generation("t5v11-tiny");
}

#[test]
fn t5_summarizer_gets_its_task_prefix() {
    let model = load("t5-tiny");
    let bare = {
        let mut m = load("t5-tiny");
        m.tokenizer_mut().set_text_prefix("");
        m.tokenizer().encode("summarize: The storm hit the coast.")
    };
    assert_eq!(model.tokenizer().encode("The storm hit the coast."), bare);
}

/// A checkpoint split into shards with a `model.safetensors.index.json`, as large models are
/// published, gives the same outputs as the single file.
#[test]
fn sharded_checkpoint_loads_like_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bart-sharded");
    std::fs::create_dir(&dir).unwrap();
    let source = common::fixtures().join("bart-tiny");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let tensors =
        candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let subset: HashMap<String, candle_core::Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), tensors[*n].clone()))
            .collect();
        candle_core::safetensors::save(&subset, dir.join(shard)).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), shard.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();

    let files = hub::resolve(dir.to_str().unwrap(), &HubOptions::default()).unwrap();
    assert!(files.weights.ends_with("model.safetensors.index.json"));
    let sharded = Seq2Seq::load(&files, &Device::Cpu, DType::F32).unwrap();
    let single = load("bart-tiny");
    let texts = [
        "The storm hit the coast on Monday.",
        "Officials said the vote would be delayed.",
    ];
    assert_eq!(
        sharded.generate_ids(&texts).unwrap(),
        single.generate_ids(&texts).unwrap()
    );

    // A missing shard is one clear error, not a panic.
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    let err = Seq2Seq::load(&files, &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("model-00002-of-00002.safetensors"),
        "{err}"
    );
}

/// Checkpoints as transformers 5 writes them (`save_pretrained`, config.json not rewritten into
/// the Hub's form), made by scripts/make-saved-fixtures.py into tests/fixtures/saved/: greedy and
/// beam-search generations identical to transformers loading the same directory.
mod saved_pretrained;

/// Generation settings transformers would follow and tarjama's search cannot are refused at
/// load with one line naming the key; their neutral values load.
#[test]
fn unsupported_generation_settings_are_refused() {
    let load_with = |generation: serde_json::Value| {
        let tmp = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(common::fixtures().join("bart-tiny")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
        }
        let path = tmp.path().join("generation_config.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (key, value) in generation.as_object().unwrap() {
            json[key] = value.clone();
        }
        std::fs::write(&path, json.to_string()).unwrap();
        let files = hub::resolve(tmp.path().to_str().unwrap(), &HubOptions::default()).unwrap();
        Seq2Seq::load(&files, &Device::Cpu, DType::F32).map(|m| m.generation.clone())
    };
    for (settings, named) in [
        (
            serde_json::json!({"eos_token_id": [2, 5]}),
            "several end tokens",
        ),
        (
            serde_json::json!({"suppress_tokens": [5]}),
            "suppress_tokens",
        ),
        (serde_json::json!({"num_beam_groups": 2}), "num_beam_groups"),
        (
            serde_json::json!({"encoder_no_repeat_ngram_size": 3}),
            "encoder_no_repeat_ngram_size",
        ),
    ] {
        let err = load_with(settings).unwrap_err().to_string();
        assert!(err.contains(named) && !err.contains('\n'), "{err}");
    }
    let neutral = load_with(serde_json::json!({
        "eos_token_id": [2, 2], "num_beam_groups": 1, "diversity_penalty": 0.0,
        "suppress_tokens": null, "max_new_tokens": 7
    }))
    .unwrap();
    assert_eq!((neutral.eos_token_id, neutral.max_length), (2, 8));
}
