//! The fuzzers' findings, kept: every file in tests/fixtures/fuzz/<target>/ goes through the same
//! code as the fuzz target of that name (`tarjama::fuzzing`), so a fixed crash stays fixed. The
//! `model_config` inputs name the fixture model and the value they set (their format:
//! `tarjama::fuzzing::model_config`). The hand-made malformed GGUF files (written by
//! fuzz/make_gguf_fixtures.py) must also be rejected with a one-line error that names the
//! problem, and the real fixture models must still pass.

use std::fs::File;
use std::path::PathBuf;

use tarjama::models::gguf::{read_header, validate_gguf};
use tarjama::tokenizer::GgufTokenizer;

use crate::common::fixtures;

/// Runs every input of `target` through `body`, with its file name; the name of the one that
/// fails is printed last.
fn replay(target: &str, mut body: impl FnMut(&str, &[u8])) {
    let dir = fixtures().join("fuzz").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    for path in paths {
        eprintln!("replaying {}", path.display());
        let name = path.file_name().unwrap().to_string_lossy();
        body(&name, &std::fs::read(&path).unwrap());
    }
}

#[test]
fn document_inputs_replay() {
    replay("document", |_, data| tarjama::fuzzing::document(data));
}

#[test]
fn sentencepiece_inputs_replay() {
    replay("sentencepiece", |_, data| {
        tarjama::fuzzing::sentencepiece(data)
    });
}

#[test]
fn gguf_metadata_inputs_replay() {
    replay("gguf_metadata", |_, data| {
        tarjama::fuzzing::gguf_metadata(data)
    });
}

/// The seeds (`seed-*`) are the fixtures as they are, or with zero weights of another shape:
/// they must load, or the fuzzer would explore nothing. Every other input is a finding, a value
/// that once panicked or aborted: the loader must now refuse it, in one line.
/// The seeds (`seed-*`) are the fixtures as they are, or with zero weights of another shape: they
/// must load, or the fuzzer would explore nothing. Every other input is a finding, a value that
/// once panicked or aborted: the loader must now refuse it, in one line.
#[test]
fn model_config_inputs_replay() {
    let (mut seeds, mut findings) = (0, 0);
    replay("model_config", |name, data| {
        let outcome = tarjama::fuzzing::model_config(data);
        if name.starts_with("seed-") {
            assert_eq!(outcome, Ok(()), "{name}");
            seeds += 1;
        } else {
            let err = outcome.expect_err(name);
            eprintln!("  refused: {err}");
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            findings += 1;
        }
    });
    assert!(
        seeds >= 10 && findings >= 9,
        "{seeds} seeds, {findings} findings"
    );
}

fn gguf_fixture(name: &str) -> PathBuf {
    fixtures().join("fuzz/gguf_metadata").join(name)
}

#[test]
fn malformed_gguf_files_are_rejected_with_what_is_wrong() {
    for (file, problem) in [
        (
            "wrong-magic.gguf",
            "does not start with `GGUF` but with \"GGML\"",
        ),
        (
            "truncated-header.gguf",
            "the file ends inside the tensor count",
        ),
        (
            "absurd-string-length.gguf",
            "a metadata key at byte 24 claims 9223372036854775808 bytes but only 12 are left",
        ),
        (
            "absurd-array-length.gguf",
            "claims 1099511627776 elements, which need at least 8796093022208 bytes",
        ),
        (
            "absurd-tensor-count.gguf",
            "claims 1125899906842624 tensors",
        ),
        ("absurd-tensor-dims.gguf", "has an absurd shape"),
        (
            "unknown-value-type.gguf",
            "a metadata value type at byte 44 is unknown (13)",
        ),
        ("nested-arrays.gguf", "is nested 3 deep (at most 2)"),
        ("zero-alignment.gguf", "general.alignment is 0"),
    ] {
        let path = gguf_fixture(file);
        let bytes = std::fs::read(&path).unwrap();
        let why = validate_gguf(&bytes[..], bytes.len() as u64).expect_err(file);
        assert!(why.contains(problem), "{file}: {why}");

        // Both readers of GGUF files validate first and say the same.
        let model = read_header(&path).expect_err(file);
        let tokenizer = GgufTokenizer::from_gguf_file(&path).err().expect(file);
        for err in [model, tokenizer] {
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 3, "{msg}");
            assert!(
                msg.contains(file) && msg.contains(problem) && msg.contains("download it again"),
                "{msg}"
            );
            assert_eq!(msg.lines().count(), 1, "{msg}");
        }
    }
}

#[test]
fn real_gguf_fixtures_pass_validation() {
    let mut checked = 0;
    for dir in ["gguf-tiny", "llama-gguf"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "gguf") {
                continue;
            }
            let len = path.metadata().unwrap().len();
            let checked_file = validate_gguf(File::open(&path).unwrap(), len);
            assert_eq!(checked_file, Ok(()), "{}", path.display());
            read_header(&path).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} fixture files found");
}

#[test]
fn hand_made_valid_ggufs_build_tokenizers() {
    for file in ["valid-gpt2.gguf", "valid-llama.gguf"] {
        let tok = GgufTokenizer::from_gguf_file(&gguf_fixture(file)).unwrap();
        let ids = tok.encode("hello", false).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "hello", "{file}");
    }
}
