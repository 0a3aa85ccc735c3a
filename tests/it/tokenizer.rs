//! The tokenizer against references recorded with transformers' `MarianTokenizer`, sentencepiece
//! and sacremoses (tests/fixtures/marian-tiny-ref, made by scripts/make-seq2seq-fixtures.py).
//!
//! `TARJAMA_TOKENIZER_MODEL` and `TARJAMA_TOKENIZER_REF` point the same checks at another model
//! directory and its reference files, e.g. a downloaded OPUS-MT model.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tarjama::tokenizer::{MarianTokenizer, MosesPunctNormalizer, SentencePiece};
use tarjama::Error;

fn fixture_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(default))
}

fn model_dir() -> PathBuf {
    fixture_path("TARJAMA_TOKENIZER_MODEL", "tests/fixtures/marian-tiny")
}

fn ref_dir() -> PathBuf {
    fixture_path("TARJAMA_TOKENIZER_REF", "tests/fixtures/marian-tiny-ref")
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tokenizer() -> MarianTokenizer {
    MarianTokenizer::from_dir(&model_dir()).expect("the fixture model loads")
}

#[derive(Deserialize)]
struct TokenizerRef {
    encode: Vec<EncodeCase>,
    /// Texts with literal special tokens or `>>xx<<` codes, with transformers' tokens.
    #[serde(default)]
    encode_special: Vec<SpecialCase>,
    decode: Vec<DecodeCase>,
    pieces: Vec<PiecesCase>,
}

#[derive(Deserialize)]
struct SpecialCase {
    text: String,
    ids: Vec<u32>,
    tokens: Vec<String>,
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
    /// `decode(ids, skip_special_tokens=False)`.
    text_keep_special: Option<String>,
}

#[derive(Deserialize)]
struct PiecesCase {
    text: String,
    pieces: Vec<String>,
}

#[derive(Deserialize)]
struct MosesRef {
    lang: String,
    cases: Vec<MosesCase>,
    /// The same normalizer for English, which has a rule of its own.
    #[serde(default)]
    cases_en: Vec<MosesCase>,
}

#[derive(Deserialize)]
struct MosesCase {
    text: String,
    normalized: String,
}

fn tokenizer_ref() -> TokenizerRef {
    read_json(&ref_dir().join("tokenizer.json"))
}

/// Fails with every mismatch listed (the first 10 in full), after checking all cases.
fn assert_all<T: std::fmt::Debug + PartialEq>(what: &str, cases: Vec<(String, T, T)>) {
    assert!(!cases.is_empty(), "no {what} cases in the reference");
    let total = cases.len();
    let failures: Vec<String> = cases
        .into_iter()
        .filter(|(_, got, want)| got != want)
        .map(|(input, got, want)| format!("{input:?}\n   got  {got:?}\n   want {want:?}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {total} {what} cases differ:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}

#[test]
fn encode_matches_transformers() {
    let tok = tokenizer();
    let cases = tokenizer_ref().encode;
    let results = cases
        .into_iter()
        .map(|c| (c.text.clone(), tok.encode(&c.text), c.ids))
        .collect();
    assert_all("encode", results);
}

#[test]
fn count_tokens_matches_encode() {
    let tok = tokenizer();
    for case in tokenizer_ref().encode {
        assert_eq!(
            tok.count_tokens(&case.text),
            case.ids.len(),
            "{:?}",
            case.text
        );
    }
}

#[test]
fn pieces_match_sentencepiece() {
    let tok = tokenizer();
    let spm = SentencePiece::from_file(&model_dir().join("source.spm")).unwrap();
    let mut results = Vec::new();
    for case in tokenizer_ref().pieces {
        results.push((
            case.text.clone(),
            spm.encode_pieces(&case.text),
            case.pieces.clone(),
        ));
        results.push((case.text.clone(), tok.tokenize(&case.text), case.pieces));
    }
    assert_all("pieces", results);
}

#[test]
fn special_tokens_in_text_match_transformers() {
    let tok = tokenizer();
    let cases = tokenizer_ref().encode_special;
    let mut results = Vec::new();
    for case in cases {
        let got = (tok.tokenize(&case.text), tok.encode(&case.text));
        results.push((case.text, got, (case.tokens, case.ids)));
    }
    if !results.is_empty() {
        assert_all("encode_special", results);
    }
}

#[test]
fn decode_matches_transformers() {
    let tok = tokenizer();
    let results = tokenizer_ref()
        .decode
        .into_iter()
        .map(|c| (format!("{:?}", c.ids), tok.decode(&c.ids), c.text))
        .collect();
    assert_all("decode", results);
}

#[test]
fn decode_keeping_special_tokens_matches_transformers() {
    let tok = tokenizer();
    let results: Vec<_> = tokenizer_ref()
        .decode
        .into_iter()
        .filter_map(|c| {
            let want = c.text_keep_special?;
            Some((
                format!("{:?}", c.ids),
                tok.decode_keeping_special(&c.ids),
                want,
            ))
        })
        .collect();
    if !results.is_empty() {
        assert_all("decode (special tokens kept)", results);
    }
}

#[test]
fn moses_matches_sacremoses() {
    let reference: MosesRef = read_json(&ref_dir().join("moses.json"));
    let moses = MosesPunctNormalizer::new(&reference.lang);
    let results = reference
        .cases
        .into_iter()
        .map(|c| (c.text.clone(), moses.normalize(&c.text), c.normalized))
        .collect();
    assert_all("moses", results);

    if !reference.cases_en.is_empty() {
        let moses = MosesPunctNormalizer::new("en");
        let results = reference
            .cases_en
            .into_iter()
            .map(|c| (c.text.clone(), moses.normalize(&c.text), c.normalized))
            .collect();
        assert_all("moses (en)", results);
    }
}

#[test]
fn marian_normalize_is_moses_for_the_source_language() {
    let tok = tokenizer();
    let reference: MosesRef = read_json(&ref_dir().join("moses.json"));
    assert_eq!(tok.source_lang(), reference.lang);
    assert_eq!(tok.normalize(""), "");
    for case in reference.cases.iter().take(50) {
        assert_eq!(
            tok.normalize(&case.text),
            case.normalized,
            "{:?}",
            case.text
        );
    }
}

#[test]
fn special_ids_come_from_vocab_json() {
    let tok = tokenizer();
    let vocab: std::collections::HashMap<String, u32> = read_json(&model_dir().join("vocab.json"));
    assert_eq!(tok.eos_id(), vocab["</s>"]);
    assert_eq!(tok.pad_id(), vocab["<pad>"]);
    assert_eq!(tok.unk_id(), vocab["<unk>"]);
    assert_eq!(tok.vocab_size(), vocab.len());
    assert_eq!(tok.encode(""), vec![tok.eos_id()]);
    assert_eq!(tok.decode(&[tok.eos_id(), tok.pad_id(), tok.unk_id()]), "");
}

#[test]
fn sentencepiece_round_trips_its_own_pieces() {
    let spm = SentencePiece::from_file(&model_dir().join("source.spm")).unwrap();
    let text = "مرحبا بالعالم";
    let pieces = spm.encode_pieces(text);
    assert!(pieces.iter().all(|p| spm.contains(p)), "{pieces:?}");
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    assert_eq!(spm.decode_pieces(&refs), text);
    assert_eq!(spm.piece_to_id("no such piece ☃"), spm.unk_id());
}

/// Copies the fixture model's tokenizer files into `dir`, except `skip`.
fn copy_tokenizer_files(dir: &Path, skip: &str) {
    for name in TOKENIZER_FILES {
        if name != skip {
            std::fs::copy(model_dir().join(name), dir.join(name)).unwrap();
        }
    }
}

const TOKENIZER_FILES: [&str; 4] = [
    "source.spm",
    "target.spm",
    "vocab.json",
    "tokenizer_config.json",
];

fn model_error(result: Result<MarianTokenizer, Error>) -> String {
    match result {
        Err(e @ Error::Model(_)) => e.to_string(),
        Err(e) => panic!("expected a model error, got {e:?}"),
        Ok(_) => panic!("expected a model error, got a tokenizer"),
    }
}

#[test]
fn missing_file_is_a_model_error_naming_it() {
    for name in &TOKENIZER_FILES[..3] {
        let dir = tempfile::tempdir().unwrap();
        copy_tokenizer_files(dir.path(), name);
        let message = model_error(MarianTokenizer::from_dir(dir.path()));
        assert!(message.contains(&format!("missing {name}")), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
    }
}

#[test]
fn missing_directory_is_a_model_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let message = model_error(MarianTokenizer::from_dir(&missing));
    assert!(message.contains("no-such-model"), "{message}");
    let err = SentencePiece::from_file(&missing.join("source.spm")).unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err:?}");
}

#[test]
fn corrupt_sentencepiece_model_is_a_model_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.spm");
    for garbage in [
        &b"this is not a protobuf \xff\xff\xff\xff"[..],
        b"",
        b"\x0a\x05hello",
    ] {
        std::fs::write(&path, garbage).unwrap();
        let err = SentencePiece::from_file(&path).unwrap_err();
        assert!(matches!(err, Error::Model(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("broken.spm"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    // The same through the tokenizer: a directory whose source.spm is damaged.
    let dir = tempfile::tempdir().unwrap();
    copy_tokenizer_files(dir.path(), "");
    let spm = std::fs::read(dir.path().join("source.spm")).unwrap();
    std::fs::write(dir.path().join("source.spm"), &spm[..spm.len() / 3]).unwrap();
    let message = model_error(MarianTokenizer::from_dir(dir.path()));
    assert!(message.contains("source.spm"), "{message}");
}

#[test]
fn unreadable_vocab_json_is_a_model_error() {
    let dir = tempfile::tempdir().unwrap();
    copy_tokenizer_files(dir.path(), "");
    std::fs::write(dir.path().join("vocab.json"), "{\"a\": 1,").unwrap();
    let message = model_error(MarianTokenizer::from_dir(dir.path()));
    assert!(message.contains("vocab.json"), "{message}");

    std::fs::write(dir.path().join("vocab.json"), "{\"a\": 0}").unwrap();
    let message = model_error(MarianTokenizer::from_dir(dir.path()));
    assert!(message.contains("<unk>"), "{message}");
}

#[derive(Deserialize)]
struct SpmDump {
    models: Vec<SpmModelDump>,
}

#[derive(Deserialize)]
struct SpmModelDump {
    name: String,
    path: PathBuf,
    encode: Vec<SpmEncodeCase>,
    decode: Vec<SpmDecodeCase>,
}

#[derive(Deserialize)]
struct SpmEncodeCase {
    text: String,
    pieces: Vec<String>,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct SpmDecodeCase {
    pieces: Vec<String>,
    text: String,
}

/// SentencePiece models of other kinds (BPE, byte fallback, identity normalization,
/// user-defined symbols) against the sentencepiece library: `TARJAMA_SPM_DUMP` names a JSON
/// file `{"models": [{"name", "path", "encode": [{"text", "pieces", "ids"}],
/// "decode": [{"pieces", "text"}]}]}` recorded with sentencepiece's Python package.
#[test]
#[ignore = "needs TARJAMA_SPM_DUMP, a dump recorded with sentencepiece"]
fn sentencepiece_matches_dump() {
    let path = std::env::var_os("TARJAMA_SPM_DUMP").expect("TARJAMA_SPM_DUMP is set");
    let dump: SpmDump = read_json(Path::new(&path));
    for model in dump.models {
        let spm = SentencePiece::from_file(&model.path).unwrap();
        let mut results = Vec::new();
        for case in &model.encode {
            let input = format!("{} {:?}", model.name, case.text);
            let got = (spm.encode_pieces(&case.text), spm.encode_ids(&case.text));
            results.push((input, got, (case.pieces.clone(), case.ids.clone())));
        }
        assert_all("sentencepiece encode", results);
        let results = model
            .decode
            .iter()
            .map(|case| {
                let pieces: Vec<&str> = case.pieces.iter().map(String::as_str).collect();
                let input = format!("{} {:?}", model.name, case.pieces);
                (input, spm.decode_pieces(&pieces), case.text.clone())
            })
            .collect();
        assert_all("sentencepiece decode", results);
    }
}
