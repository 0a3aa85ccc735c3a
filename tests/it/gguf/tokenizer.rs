//! `GgufTokenizer` against transformers' tokenizer of the real Qwen2.5-Coder-0.5B-Instruct GGUF
//! (tests/fixtures/qwen-gguf/tokenizer.json, made by scripts/make-gguf-fixtures.py), and on small
//! GGUF files written here, which need no model.
//!
//! The real model is not in the repo (491 MB): scripts/fetch-test-model puts it in
//! `${TARJAMA_TEST_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/tarjama/test-models}`. Without it the
//! model tests print why and pass, so a machine without the download still runs the rest.

use super::reference::{model_error, Added, Partial};
use crate::common::{self, test_model_path as model_path};

use std::io::Cursor;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file::{self, Value};
use serde::Deserialize;
use tarjama::tokenizer::GgufTokenizer;
use tarjama::Error;

/// Loaded once for all tests of this binary: reading the metadata takes about a second.
fn real() -> Option<&'static GgufTokenizer> {
    static TOKENIZER: OnceLock<Option<GgufTokenizer>> = OnceLock::new();
    let tokenizer = TOKENIZER.get_or_init(|| {
        let path = model_path();
        path.is_file()
            .then(|| GgufTokenizer::from_gguf_file(&path).expect("the real test model loads"))
    });
    if tokenizer.is_none() {
        println!(
            "skipped: real test model not found at {}; run scripts/fetch-test-model",
            model_path().display()
        );
    }
    tokenizer.as_ref()
}

#[derive(Deserialize)]
struct Reference {
    chat_template: String,
    special: Special,
    encode: Vec<Case>,
    partial_decode: Vec<Partial>,
}

#[derive(Deserialize)]
struct Special {
    bos_token_id: u32,
    eos_token_id: u32,
    vocab_size: usize,
    added_tokens: Vec<Added>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    ids: Vec<u32>,
    tokens: Vec<String>,
    decoded: String,
    decoded_skip_special: String,
}

fn reference() -> Reference {
    let path = common::fixtures().join("qwen-gguf/tokenizer.json");
    let text = std::fs::read_to_string(&path).expect("the qwen-gguf reference is readable");
    serde_json::from_str(&text).expect("the qwen-gguf reference parses")
}

/// Every case that differs, named, so one run shows the whole extent of a divergence.
fn check_encode(tok: &GgufTokenizer, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let ids = tok.encode(&case.text, false).unwrap();
        if ids != case.ids {
            let at = ids
                .iter()
                .zip(&case.ids)
                .take_while(|(a, b)| a == b)
                .count();
            failures.push(format!(
                "{}: ids differ from index {at}: got {:?}, want {:?}",
                case.name,
                &ids[at..ids.len().min(at + 5)],
                &case.ids[at..case.ids.len().min(at + 5)]
            ));
        }
    }
    failures
}

#[test]
fn real_model_encodes_like_transformers() {
    let Some(tok) = real() else { return };
    let reference = reference();
    assert!(reference.encode.len() >= 60);
    let failures = check_encode(tok, &reference.encode);
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        reference.encode.len(),
        failures.join("\n")
    );
    for case in &reference.encode {
        let tokens: Vec<String> = case
            .ids
            .iter()
            .map(|&id| tok.token_str(id).unwrap())
            .collect();
        assert_eq!(tokens, case.tokens, "{}: token strings", case.name);
        // Qwen's GGUF says add_bos_token = false: asking for special tokens adds none.
        assert_eq!(
            tok.encode(&case.text, true).unwrap(),
            case.ids,
            "{}: add_special",
            case.name
        );
    }
}

#[test]
fn real_model_decodes_like_transformers() {
    let Some(tok) = real() else { return };
    let reference = reference();
    for case in &reference.encode {
        assert_eq!(
            tok.decode(&case.ids).unwrap(),
            case.decoded,
            "{}: decode",
            case.name
        );
        assert_eq!(
            tok.decode_skip_special(&case.ids).unwrap(),
            case.decoded_skip_special,
            "{}: decode skipping special tokens",
            case.name
        );
    }
    for partial in &reference.partial_decode {
        assert_eq!(
            tok.decode(&partial.ids).unwrap(),
            partial.decoded,
            "prefix {:?}",
            partial.ids
        );
    }
}

#[test]
fn real_model_special_tokens_and_chat_template() {
    let Some(tok) = real() else { return };
    let reference = reference();
    let special = &reference.special;
    assert_eq!(tok.chat_template(), Some(reference.chat_template.as_str()));
    assert_eq!(tok.bos_id(), Some(special.bos_token_id));
    assert_eq!(tok.eos_id(), Some(special.eos_token_id));
    // <|im_end|> ends an assistant turn; <|endoftext|> ends a document (generation_config.json).
    assert_eq!(tok.eos_ids(), [151645, 151643]);
    assert_eq!(tok.vocab_size(), special.vocab_size);
    let added: Vec<(&str, u32, bool)> = special
        .added_tokens
        .iter()
        .map(|a| (a.content.as_str(), a.id, a.special))
        .collect();
    common::assert_added_tokens(tok, &added);
}

#[test]
fn real_model_tokenizer_json_round_trip() {
    let Some(tok) = real() else { return };
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    tok.inner()
        .save(dir.path().join("tokenizer.json"), false)
        .unwrap();
    let config = serde_json::json!({
        "bos_token": null,
        "eos_token": {"content": "<|im_end|>", "special": true},
        "chat_template": reference.chat_template,
    });
    std::fs::write(dir.path().join("tokenizer_config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"eos_token_id": [151645, 151643]}"#,
    )
    .unwrap();

    let loaded = GgufTokenizer::from_tokenizer_json(&dir.path().join("tokenizer.json")).unwrap();
    let failures = check_encode(&loaded, &reference.encode);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        loaded.chat_template(),
        Some(reference.chat_template.as_str())
    );
    assert_eq!((loaded.bos_id(), loaded.eos_id()), (None, Some(151645)));
    assert_eq!(loaded.eos_ids(), [151645, 151643]);
    assert_eq!(loaded.special_ids(), tok.special_ids());
}

#[test]
fn garbage_truncated_and_missing_files_are_model_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"<html>404 Not Found</html>\n").unwrap();
    let msg = model_error(GgufTokenizer::from_gguf_file(&garbage));
    assert!(
        msg.contains("garbage.gguf") && msg.contains("download it again"),
        "{msg}"
    );

    let truncated = dir.path().join("truncated.gguf");
    let bytes = write_gguf(&tiny_metadata("gpt2", "qwen2"));
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let msg = model_error(GgufTokenizer::from_gguf_file(&truncated));
    assert!(
        msg.contains("truncated.gguf") && msg.contains("not a GGUF model"),
        "{msg}"
    );

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    model_error(GgufTokenizer::from_gguf_file(&empty));

    let msg = model_error(GgufTokenizer::from_gguf_file(
        &dir.path().join("absent.gguf"),
    ));
    assert!(msg.contains("absent.gguf"), "{msg}");
}

#[test]
fn unsupported_tokenizers_are_named_in_the_error() {
    let msg = model_error(from_metadata(tiny_metadata("t5", "default")));
    assert!(
        msg.contains("`t5`") && msg.contains("tokenizer.json"),
        "{msg}"
    );

    let msg = model_error(from_metadata(tiny_metadata("gpt2", "some-new-pre")));
    assert!(msg.contains("`some-new-pre`"), "{msg}");

    let msg = model_error(from_metadata(vec![("general.architecture", s("qwen2"))]));
    assert!(msg.contains("tokenizer.ggml.model"), "{msg}");

    let mut metadata = tiny_metadata("gpt2", "qwen2");
    metadata.retain(|(k, _)| *k != "tokenizer.ggml.tokens");
    let msg = model_error(from_metadata(metadata));
    assert!(msg.contains("tokenizer.ggml.tokens"), "{msg}");
}

#[test]
fn tiny_gguf_special_user_defined_and_unused_tokens() {
    let tok = from_metadata(tiny_metadata("gpt2", "qwen2")).unwrap();
    let id = |t: &str| tok.token_id(t).unwrap();
    let (start, end, eot) = (id("<|im_start|>"), id("<|im_end|>"), id("<|endoftext|>"));

    let ids = tok.encode("<|im_start|>hello<|im_end|>", false).unwrap();
    assert_eq!(ids, [start, id("hello"), end]);
    assert_eq!(tok.decode(&ids).unwrap(), "<|im_start|>hello<|im_end|>");
    assert_eq!(tok.decode_skip_special(&ids).unwrap(), "hello");

    // USER_DEFINED: matched whole like llama.cpp, but not special, so decoding keeps it.
    let ids = tok.encode("<tool_call>hello", false).unwrap();
    assert_eq!(ids, [id("<tool_call>"), id("hello")]);
    assert_eq!(tok.decode_skip_special(&ids).unwrap(), "<tool_call>hello");
    // UNUSED: candle made this one special token; llama.cpp and transformers split it as text.
    assert!(tok.encode("[PAD9]", false).unwrap().len() > 1);
    // No NFC: the decomposed é stays two characters (candle composed it to one).
    let decomposed = "e\u{301}";
    assert_eq!(tok.encode(decomposed, false).unwrap().len(), 3);
    assert_eq!(
        tok.decode(&tok.encode(decomposed, false).unwrap()).unwrap(),
        decomposed
    );

    assert_eq!(tok.eos_ids(), [end, eot]);
    assert_eq!(tok.special_ids(), [eot, start, end]);
    assert_eq!(tok.chat_template(), Some("{{ messages }}"));
    assert_eq!(tok.encode("hello", true).unwrap(), [id("hello")]);
}

#[test]
fn tiny_gguf_add_bos_token() {
    let mut metadata = tiny_metadata("gpt2", "llama-bpe");
    metadata.push(("tokenizer.ggml.add_bos_token", Value::Bool(true)));
    let tok = from_metadata(metadata).unwrap();
    let bos = tok.bos_id().unwrap();
    assert_eq!(
        tok.encode("hello", true).unwrap(),
        [bos, tok.token_id("hello").unwrap()]
    );
    assert_eq!(
        tok.encode("hello", false).unwrap(),
        [tok.token_id("hello").unwrap()]
    );
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// A byte-level BPE vocabulary: the 256 byte symbols, `hello` by four merges, and one token of
/// each llama.cpp type that matters (3 CONTROL, 4 USER_DEFINED, 5 UNUSED).
fn tiny_metadata(model: &str, pre: &str) -> Vec<(&'static str, Value)> {
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    alphabet.sort_unstable();
    let mut tokens: Vec<String> = alphabet.iter().map(char::to_string).collect();
    let mut types = vec![1; tokens.len()];
    for (token, ty) in [
        ("he", 1),
        ("ll", 1),
        ("hell", 1),
        ("hello", 1),
        ("<|endoftext|>", 3),
        ("<|im_start|>", 3),
        ("<|im_end|>", 3),
        ("<tool_call>", 4),
        ("[PAD9]", 5),
    ] {
        tokens.push(token.to_string());
        types.push(ty);
    }
    let id = |t: &str| tokens.iter().position(|x| x == t).unwrap() as u32;
    let (eot, end) = (id("<|endoftext|>"), id("<|im_end|>"));
    let merges = ["h e", "l l", "he ll", "hell o"];
    vec![
        ("general.architecture", s("qwen2")),
        ("tokenizer.ggml.model", s(model)),
        ("tokenizer.ggml.pre", s(pre)),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            Value::Array(merges.iter().map(|m| s(m)).collect()),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(eot)),
        ("tokenizer.ggml.eos_token_id", Value::U32(end)),
        ("tokenizer.ggml.padding_token_id", Value::U32(eot)),
        ("tokenizer.chat_template", s("{{ messages }}")),
    ]
}

fn write_gguf(metadata: &[(&str, Value)]) -> Vec<u8> {
    let refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &refs, &[]).unwrap();
    out.into_inner()
}

fn from_metadata(metadata: Vec<(&str, Value)>) -> Result<GgufTokenizer, Error> {
    let content = gguf_file::Content::read(&mut Cursor::new(write_gguf(&metadata))).unwrap();
    GgufTokenizer::from_content(&content)
}
