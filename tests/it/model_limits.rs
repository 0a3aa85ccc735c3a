//! Model files whose numbers cannot be right, and `--model` specs that point outside the Hub
//! cache (issue 17, rows 7 and 9), through the real binary: each is refused with one line, exit
//! 3 for a model error or 2 for a usage error, no panic or abort, and no temporary file left in
//! the output directory.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::quantized::gguf_file::Value;
use tarjama::fuzzing::GgufParts;

use crate::common::{self, fixtures};

const ARABIC: &str = "قال الوزير إن الحكومة ستعمل على خفض الأسعار.\n";

/// `tarjama` offline, with an empty Hugging Face cache in `home`.
fn tarjama(home: &Path) -> Command {
    let mut cmd = common::tarjama(home);
    cmd.env("HF_HUB_OFFLINE", "1").env("RUST_BACKTRACE", "0");
    cmd
}

/// A copy of the fixture model `name` in `tmp` with `key` of its config.json set to `value`.
fn model_with(tmp: &Path, name: &str, key: &str, value: serde_json::Value) -> PathBuf {
    let dir = tmp.join(format!("{name}-{key}"));
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(fixtures().join(name)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let config_path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config_path).unwrap()).unwrap();
    config[key] = value;
    fs::write(&config_path, config.to_string()).unwrap();
    dir
}

/// A copy of `gguf-tiny/qwen2.gguf` in `tmp` with the metadata `key` set to `value`.
fn gguf_with(tmp: &Path, key: &str, value: Value) -> PathBuf {
    let bytes = fs::read(fixtures().join("gguf-tiny/qwen2.gguf")).unwrap();
    let mut parts = GgufParts::read(&bytes);
    parts.set(key, Some(value));
    let path = tmp.join(format!("{key}.gguf"));
    fs::write(&path, parts.to_bytes()).unwrap();
    path
}

/// Translates a file with `model` into another directory and checks that it fails with exit
/// `code` and one line naming `what`, leaving only the input there. Returns the line.
fn refused(home: &Path, model: &str, code: i32, what: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("article.ar.txt");
    fs::write(&input, ARABIC).unwrap();
    let mut cmd = tarjama(home);
    cmd.args(["translate", "--quiet", "--model", model]);
    if !model.contains(".gguf") {
        // Greedy, to be quick; a chat model refuses --beams.
        cmd.args(["--beams", "1"]);
    }
    let out = cmd
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("article.en.txt"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{model}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.contains(what), "{what:?} not in: {stderr}");
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["article.ar.txt"], "files left behind");
    stderr
}

/// `translate` loads the model before it checks the task, so the summarizers (BART, T5) serve too.
#[test]
fn bad_config_json_hyperparameters_are_model_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let n = serde_json::Value::from;
    for (fixture, key, value, what) in [
        // Divided by: a panic before.
        (
            "bart-tiny",
            "encoder_attention_heads",
            n(0u64),
            "encoder_attention_heads is 0",
        ),
        (
            "bart-tiny",
            "decoder_attention_heads",
            n(3u64),
            "d_model (32) is not a multiple of decoder_attention_heads (3)",
        ),
        (
            "bart-tiny",
            "decoder_layers",
            n(1u64 << 62),
            "decoder_layers",
        ),
        ("bart-tiny", "d_model", n(0u64), "d_model is 0"),
        // Sized a position table of terabytes: an abort before, with the .tmp file left.
        (
            "marian-tiny",
            "max_position_embeddings",
            n(1_000_000_000_000u64),
            "max_position_embeddings is 1000000000000",
        ),
        (
            "nllb-tiny",
            "max_position_embeddings",
            n(1u64 << 30),
            "max_position_embeddings",
        ),
        (
            "nllb-tiny",
            "pad_token_id",
            n(u64::from(u32::MAX)),
            "pad_token_id is 4294967295",
        ),
        (
            "mbart-tiny",
            "decoder_start_token_id",
            n(1u64 << 20),
            "decoder_start_token_id",
        ),
        // T5: a bucket table of 2^32 entries, an abort before.
        (
            "t5-tiny",
            "relative_attention_max_distance",
            n(u64::from(u32::MAX)),
            "relative_attention_max_distance",
        ),
        ("t5-tiny", "num_heads", n(0u64), "num_heads is 0"),
        (
            "t5-tiny",
            "relative_attention_num_buckets",
            n(1u64),
            "relative_attention_num_buckets",
        ),
        ("t5v11-tiny", "d_kv", n(1u64 << 20), "d_kv"),
        ("t5v11-tiny", "n_positions", n(0u64), "n_positions is 0"),
    ] {
        let model = model_with(tmp.path(), fixture, key, value);
        let line = refused(&home, model.to_str().unwrap(), 3, what);
        assert!(line.contains("config.json"), "{line}");
    }
}

#[test]
fn bad_gguf_hyperparameters_are_model_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    for (key, value, what) in [
        // Divided by eagerly, even with key_length present: a panic before.
        (
            "qwen2.attention.head_count",
            Value::U32(0),
            "qwen2.attention.head_count is 0",
        ),
        // Vec::with_capacity(2^62): a panic before.
        (
            "qwen2.block_count",
            Value::U64(1 << 62),
            "qwen2.block_count is 4611686018427387904",
        ),
        (
            "qwen2.attention.head_count_kv",
            Value::U32(3),
            "qwen2.attention.head_count (4) is not a multiple of qwen2.attention.head_count_kv (3)",
        ),
        (
            "qwen2.context_length",
            Value::U64(1 << 40),
            "qwen2.context_length",
        ),
        (
            "qwen2.rope.freq_base",
            Value::F32(0.0),
            "qwen2.rope.freq_base is 0",
        ),
        (
            "qwen2.embedding_length",
            Value::U32(66),
            "qwen2.embedding_length (66) is not a multiple of qwen2.attention.head_count (4)",
        ),
        (
            "qwen2.attention.key_length",
            Value::U32(32),
            "tensor blk.0.attn_q.weight is 64 × 64 where the metadata implies 128 × 64",
        ),
        (
            "qwen2.block_count",
            Value::U32(3),
            "it has no tensor blk.2.attn_q.weight",
        ),
        (
            "qwen2.attention.head_count",
            Value::String("four".into()),
            "qwen2.attention.head_count is a String, not an unsigned integer",
        ),
    ] {
        let model = gguf_with(tmp.path(), key, value);
        refused(&home, model.to_str().unwrap(), 3, what);
    }
}

/// A cache in `home` where `models--a--b` exists (with a `main` ref holding `main_ref`), and a
/// model outside the cache, in `home/elsewhere/model`, with a file that reads as a ref to it.
fn cache_with_model_outside(home: &Path, main_ref: &str) {
    let repo = home.join("hub/models--a--b");
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::create_dir_all(repo.join("snapshots")).unwrap();
    fs::write(repo.join("refs/main"), main_ref).unwrap();
    let elsewhere = home.join("elsewhere");
    fs::create_dir_all(elsewhere.join("model")).unwrap();
    // Read as a commit, it is joined to snapshots/: models--a--b/snapshots/../../../elsewhere/model.
    fs::write(elsewhere.join("ref"), "../../../elsewhere/model").unwrap();
    for entry in fs::read_dir(fixtures().join("marian-tiny")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(
            &path,
            elsewhere.join("model").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
}

#[test]
fn a_revision_or_file_name_that_leaves_the_cache_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    cache_with_model_outside(home, "0123456789abcdef0123456789abcdef01234567");
    // refs/../../../elsewhere/ref is home/elsewhere/ref: before, this translated with the model
    // outside the cache and recorded "../../../elsewhere/ref" as its revision.
    let line = refused(
        home,
        "a/b@../../../elsewhere/ref",
        2,
        "\"../../../elsewhere/ref\"",
    );
    assert!(
        line.contains("revision") && line.contains("not allowed"),
        "{line}"
    );
    for (spec, bad) in [
        ("a/b@/tmp/x", "revision \"/tmp/x\""),
        ("a/b@main/../../x", "revision \"main/../../x\""),
        ("a/b@x//y", "revision \"x//y\""),
        ("a/b@", "revision \"\""),
        ("a/b@./x", "revision \"./x\""),
        ("a/b@x\\y", "revision \"x\\\\y\""),
        ("a/b@x\ny", "revision \"x\\ny\""),
        ("a/b:../../x.gguf", "file name \"../../x.gguf\""),
        ("a/b:/etc/x.gguf", "file name \"/etc/x.gguf\""),
        ("a/b:dir//x.gguf", "file name \"dir//x.gguf\""),
        ("a/b:x.gguf@../../y", "revision \"../../y\""),
    ] {
        refused(home, spec, 2, bad);
    }
    // What is allowed still resolves, to "not in the cache" offline.
    refused(home, "a/b@refs/pr/1", 3, "not in the Hugging Face cache");
    refused(
        home,
        "a/b:sub/x.gguf@v1.0",
        3,
        "not in the Hugging Face cache",
    );
}

#[test]
fn a_cached_ref_that_leaves_the_cache_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // A `main` ref holding a path: before, the model outside the cache was loaded.
    cache_with_model_outside(home, "../../../elsewhere/model");
    refused(home, "a/b", 3, "not in the Hugging Face cache");
}
