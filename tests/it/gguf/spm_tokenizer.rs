//! `GgufTokenizer` on SentencePiece vocabularies (`tokenizer.ggml.model = "llama"`) against
//! transformers' tokenizer of the same GGUF files: tests/fixtures/llama-gguf, made by
//! scripts/make-gguf-spm-fixtures.py from a small vocabulary trained on NTREX. The three files
//! differ only in `general.architecture`, which picks transformers' llama, Gemma or Phi-3 builder.

use super::reference::{model_error, Added, Partial};
use crate::common;

use std::fmt::Debug;
use std::path::PathBuf;

use candle_core::quantized::gguf_file::{self, Value};
use serde::Deserialize;
use tarjama::tokenizer::GgufTokenizer;
use tarjama::Error;

#[derive(Deserialize)]
struct Reference {
    model: Model,
    chat_template: String,
    special: Special,
    merges: Vec<String>,
    encode: Vec<Case>,
    partial_decode: Vec<Partial>,
}

#[derive(Deserialize)]
struct Model {
    file: String,
}

#[derive(Deserialize)]
struct Special {
    bos_token_id: u32,
    eos_token_id: u32,
    adds_bos: bool,
    vocab_size: usize,
    added_tokens: Vec<Added>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    ids: Vec<u32>,
    ids_special: Vec<u32>,
    tokens: Vec<String>,
    decoded: String,
    decoded_special: String,
    decoded_skip_special: String,
    /// sentencepiece's ids with add_dummy_prefix off (llama.json, text without added tokens).
    no_prefix_ids: Option<Vec<u32>>,
}

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join("llama-gguf").join(name)
}

fn reference(arch: &str) -> Reference {
    let text = std::fs::read_to_string(fixture(&format!("{arch}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn content(arch: &str) -> gguf_file::Content {
    let mut file = std::fs::File::open(fixture(&format!("{arch}.gguf"))).unwrap();
    gguf_file::Content::read(&mut file).unwrap()
}

/// Every difference from the reference, named, so one run shows the whole extent of a divergence.
fn differences(tok: &GgufTokenizer, reference: &Reference) -> Vec<String> {
    let mut out = Vec::new();
    for case in &reference.encode {
        let mut same = |what: &str, got: &dyn Debug, equal: bool, want: &dyn Debug| {
            if !equal {
                out.push(format!("{}: {what}: got {got:?}, want {want:?}", case.name));
            }
        };
        let ids = tok.encode(&case.text, false).unwrap();
        same("ids", &ids, ids == case.ids, &case.ids);
        let ids = tok.encode(&case.text, true).unwrap();
        same(
            "ids with BOS",
            &ids,
            ids == case.ids_special,
            &case.ids_special,
        );
        let tokens: Vec<String> = case
            .ids
            .iter()
            .map(|&i| tok.token_str(i).unwrap())
            .collect();
        same("tokens", &tokens, tokens == case.tokens, &case.tokens);
        let text = tok.decode(&case.ids).unwrap();
        same("decode", &text, text == case.decoded, &case.decoded);
        let text = tok.decode(&case.ids_special).unwrap();
        let want = &case.decoded_special;
        same("decode with BOS", &text, &text == want, want);
        let text = tok.decode_skip_special(&case.ids_special).unwrap();
        let want = &case.decoded_skip_special;
        same("decode skipping special", &text, &text == want, want);
    }
    for partial in &reference.partial_decode {
        let text = tok.decode(&partial.ids).unwrap();
        if text != partial.decoded {
            out.push(format!(
                "decode {:?}: got {text:?}, want {:?}",
                partial.ids, partial.decoded
            ));
        }
    }
    out
}

/// The merges the tokenizer ranks by, as `left right` in rank order.
fn merges(tok: &GgufTokenizer) -> Vec<String> {
    let json: serde_json::Value =
        serde_json::from_str(&tok.inner().to_string(false).unwrap()).unwrap();
    let merges: Vec<(String, String)> =
        serde_json::from_value(json["model"]["merges"].clone()).unwrap();
    merges
        .into_iter()
        .map(|(l, r)| format!("{l} {r}"))
        .collect()
}

fn matches_transformers(arch: &str) {
    let reference = reference(arch);
    assert_eq!(reference.model.file, format!("{arch}.gguf"));
    assert!(reference.encode.len() >= 50);
    let tok = GgufTokenizer::from_gguf_file(&fixture(&format!("{arch}.gguf"))).unwrap();
    assert!(
        merges(&tok) == reference.merges,
        "{arch}: merges differ from transformers'"
    );
    let failures = differences(&tok, &reference);
    assert!(
        failures.is_empty(),
        "{arch}: {} differences over {} cases:\n{}",
        failures.len(),
        reference.encode.len(),
        failures.join("\n")
    );

    let special = &reference.special;
    assert_eq!(tok.chat_template(), Some(reference.chat_template.as_str()));
    assert_eq!(tok.bos_id(), Some(special.bos_token_id));
    assert_eq!(tok.eos_id(), Some(special.eos_token_id));
    assert_eq!(tok.eos_ids(), [special.eos_token_id]);
    assert_eq!(tok.vocab_size(), special.vocab_size);
    assert_eq!(
        tok.encode("", true).unwrap().len(),
        usize::from(special.adds_bos)
    );
    let added: Vec<(&str, u32, bool)> = special
        .added_tokens
        .iter()
        .map(|a| (a.content.as_str(), a.id, a.special))
        .collect();
    common::assert_added_tokens(&tok, &added);
}

#[test]
fn llama_vocabulary_matches_transformers() {
    matches_transformers("llama");
}

#[test]
fn gemma_vocabulary_matches_transformers() {
    matches_transformers("gemma3");
}

#[test]
fn phi3_vocabulary_matches_transformers() {
    matches_transformers("phi3");
}

/// What the fixtures show, spelled out: where the prefix space goes, byte fallback, and that
/// special tokens written in text become their ids but user-defined ones are kept when decoding.
#[test]
fn llama_prefix_space_byte_fallback_and_special_tokens() {
    let tok = GgufTokenizer::from_gguf_file(&fixture("llama.gguf")).unwrap();
    let tokens = |text: &str| -> Vec<String> {
        let ids = tok.encode(text, false).unwrap();
        ids.iter().map(|&i| tok.token_str(i).unwrap()).collect()
    };
    assert_eq!(tokens("the"), ["▁the"]);
    // As transformers: no second `▁` for text that starts with a space (SentencePiece adds one).
    assert_eq!(tokens(" the"), ["▁the"]);
    assert_eq!(tokens("漢"), ["▁", "<0xE6>", "<0xBC>", "<0xA2>"]);
    assert_eq!(tok.decode(&tok.encode("漢", false).unwrap()).unwrap(), "漢");
    // No prefix space after a special token, as transformers (llama.cpp would add one).
    assert_eq!(tokens("<s>the"), ["<s>", "t", "he"]);

    let ids = tok.encode("[INST]hi<tool_call>x</s>", true).unwrap();
    let bos = tok.bos_id().unwrap();
    assert_eq!(ids[..2], [bos, tok.token_id("[INST]").unwrap()]);
    assert!(ids.contains(&tok.token_id("<tool_call>").unwrap()));
    assert_eq!(tok.decode_skip_special(&ids).unwrap(), "hi<tool_call>x");
    // UNUSED tokens are text.
    assert!(tok.encode("[PAD3001]", false).unwrap().len() > 1);
}

/// llama.cpp drops the prefix space for a file that says `add_space_prefix = false`
/// (transformers ignores the key); SentencePiece with add_dummy_prefix off is the reference.
#[test]
fn add_space_prefix_false_matches_sentencepiece_without_dummy_prefix() {
    let mut ct = content("llama");
    ct.metadata
        .insert("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false));
    let tok = GgufTokenizer::from_content(&ct).unwrap();
    let mut checked = 0;
    for case in reference("llama").encode {
        let Some(want) = case.no_prefix_ids else {
            continue;
        };
        let ids = tok.encode(&case.text, false).unwrap();
        assert_eq!(ids, want, "{}", case.name);
        // Nothing added, nothing stripped: decoding gives the text back, but for a `▁` written
        // in the text, which is a space to SentencePiece.
        if !case.text.contains('\u{2581}') {
            assert_eq!(tok.decode(&ids).unwrap(), case.text, "{}", case.name);
        }
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
}

#[test]
fn add_bos_token_defaults_to_true_for_sentencepiece() {
    let mut ct = content("phi3");
    assert!(!GgufTokenizer::from_content(&ct)
        .unwrap()
        .encode("hi", true)
        .unwrap()
        .contains(&1));
    ct.metadata.remove("tokenizer.ggml.add_bos_token");
    let tok = GgufTokenizer::from_content(&ct).unwrap();
    assert_eq!(tok.encode("hi", true).unwrap()[0], tok.bos_id().unwrap());
}

/// Merges written in the file are used as they are, as transformers does.
#[test]
fn merges_from_the_file_are_used() {
    let mut ct = content("llama");
    let tok = GgufTokenizer::from_content(&ct).unwrap();
    let mut listed: Vec<Value> = merges(&tok).into_iter().map(Value::String).collect();
    ct.metadata.remove("tokenizer.ggml.scores");
    ct.metadata
        .insert("tokenizer.ggml.merges".into(), Value::Array(listed.clone()));
    let from_file = GgufTokenizer::from_content(&ct).unwrap();
    let text = "قال الرئيس Joe Biden إن";
    assert_eq!(
        from_file.encode(text, true).unwrap(),
        tok.encode(text, true).unwrap()
    );

    listed.push(Value::String("a b c".into()));
    ct.metadata
        .insert("tokenizer.ggml.merges".into(), Value::Array(listed));
    let msg = model_error(GgufTokenizer::from_content(&ct));
    assert!(
        msg.contains("tokenizer.ggml.merges") && msg.contains("`a b c`"),
        "{msg}"
    );
}

fn with(arch: &str, key: &str, value: Option<Value>) -> Result<GgufTokenizer, Error> {
    let mut ct = content(arch);
    match value {
        Some(v) => ct.metadata.insert(key.to_string(), v),
        None => ct.metadata.remove(key),
    };
    // Through the file format, as a damaged download would arrive.
    let metadata: Vec<(&str, &Value)> = ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut bytes, &metadata, &[]).unwrap();
    bytes.set_position(0);
    GgufTokenizer::from_content(&gguf_file::Content::read(&mut bytes).unwrap())
}

fn truncated(arch: &str, key: &str) -> Value {
    let ct = content(arch);
    let mut list = ct.metadata[key].to_vec().unwrap().clone();
    list.pop();
    Value::Array(list)
}

#[test]
fn bad_scores_and_types_are_named_in_the_error() {
    let key = "tokenizer.ggml.scores";
    let msg = model_error(with("llama", key, Some(truncated("llama", key))));
    assert!(
        msg.contains(key) && msg.contains("3002 scores for 3003 tokens"),
        "{msg}"
    );
    assert!(msg.contains("download it again"), "{msg}");

    let msg = model_error(with("llama", key, None));
    assert!(msg.contains(key) && msg.contains("missing"), "{msg}");

    let mut scores = content("llama").metadata[key].to_vec().unwrap().clone();
    scores[300] = Value::F32(f32::NAN);
    let msg = model_error(with("llama", key, Some(Value::Array(scores.clone()))));
    assert!(msg.contains(key) && msg.contains("NaN"), "{msg}");
    let strings = scores.iter().map(|_| Value::String("x".into())).collect();
    let msg = model_error(with("llama", key, Some(Value::Array(strings))));
    assert!(msg.contains(key) && msg.contains("String"), "{msg}");

    // Gemma ranks merges by position: it needs no scores.
    assert!(with("gemma3", key, None).is_ok());

    let key = "tokenizer.ggml.token_type";
    let msg = model_error(with("llama", key, Some(truncated("llama", key))));
    assert!(
        msg.contains(key) && msg.contains("3002 types for 3003 tokens"),
        "{msg}"
    );
}

#[test]
fn unknown_tokenizer_models_are_named_in_the_error() {
    for model in ["t5", "rwkv", "gemma4", "LLAMA"] {
        let msg = model_error(with(
            "llama",
            "tokenizer.ggml.model",
            Some(Value::String(model.into())),
        ));
        assert!(
            msg.contains(&format!("`{model}`"))
                && msg.contains("`llama`")
                && msg.contains("tokenizer.json"),
            "{msg}"
        );
    }
    let msg = model_error(with(
        "llama",
        "tokenizer.ggml.unknown_token_id",
        Some(Value::U32(3003)),
    ));
    assert!(
        msg.contains("tokenizer.ggml.unknown_token_id") && msg.contains("3003"),
        "{msg}"
    );
}
