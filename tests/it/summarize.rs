//! `summarize` and chat-model translation: bad input without a model, and the real-model tier on
//! Qwen2.5-Coder-0.5B-Instruct Q4_K_M (fetched by scripts/fetch-test-model; skipped when absent).

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::common::{real_test_model as test_model, shared, succeeded};

const TEST_MODEL: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

fn tarjama() -> Command {
    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.env("HF_HUB_OFFLINE", "1");
    cmd
}

/// `tarjama summarize --model MODEL` followed by `args`.
fn summarize_with(model: &Path, args: &[&str]) -> Command {
    let mut cmd = tarjama();
    cmd.args(["summarize", "--model"]).arg(model).args(args);
    cmd
}

fn failure(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected failure: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    stderr
}

fn write_gguf(path: &Path, arch: &str, with_tensor: bool) {
    let mut file = fs::File::create(path).unwrap();
    let arch = gguf_file::Value::String(arch.to_string());
    let tensor = QTensor::quantize(
        &Tensor::ones((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
    .unwrap();
    let tensors: Vec<(&str, &QTensor)> = if with_tensor {
        vec![("token_embd.weight", &tensor)]
    } else {
        vec![]
    };
    gguf_file::write(&mut file, &[("general.architecture", &arch)], &tensors).unwrap();
}

#[test]
fn zero_sentences_is_a_usage_error() {
    let err = failure(
        tarjama()
            .args(["summarize", "--sentences", "0"])
            .write_stdin("نص"),
    );
    assert!(err.contains("--sentences must be at least 1"), "{err}");
}

#[test]
fn empty_article_is_an_input_error() {
    let err = failure(tarjama().args(["summarize"]).write_stdin("\n \n"));
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn unsupported_architecture_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bert.gguf");
    write_gguf(&path, "bert", false);
    let err = failure(summarize_with(&path, &[]).write_stdin("خبر عاجل."));
    assert!(
        err.contains("\"bert\" is not supported") && err.contains("qwen2"),
        "{err}"
    );
}

#[test]
fn truncated_gguf_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    write_gguf(&path, "qwen2", true);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = failure(summarize_with(&path, &[]).write_stdin("خبر عاجل."));
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn summary_of_the_example_article_has_three_clean_sentences() {
    let Some(model) = test_model() else { return };
    let article = shared("article-ar.txt");
    let out = succeeded(&mut summarize_with(
        &model,
        &["--quiet", "--format", "json", article.to_str().unwrap()],
    ));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = json["summary"].as_str().unwrap();
    eprintln!("summary: {summary}");
    let sentences = tarjama::document::split_sentences(summary);
    assert_eq!(sentences.len(), 3, "{sentences:?}");
    for s in &sentences {
        assert!(s.ends_with(['.', '!', '?']), "incomplete sentence {s:?}");
    }
    let mut unique = sentences.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "repeated sentence in {sentences:?}");
    assert!(
        !tarjama::document::contains_arabic(summary),
        "not in Latin script: {summary}"
    );
    assert!(
        ["Syria", "Iraq", "Africa", "Morocco"]
            .iter()
            .any(|p| summary.contains(p)),
        "names none of the article's places: {summary}"
    );
    assert!(json["prompt_tokens"].as_u64().unwrap() > 100);
}

#[test]
fn non_arabic_input_is_refused_or_with_assume_arabic_gets_a_note_and_a_summary() {
    let Some(model) = test_model() else { return };
    let english = "The city council approved a new budget on Monday. It raises spending on schools by ten percent.\n";
    let refused =
        failure(summarize_with(&model, &["--no-stream", "--sentences", "1"]).write_stdin(english));
    assert!(refused.contains("detected English (en"), "{refused}");
    let out = summarize_with(
        &model,
        &["--no-stream", "--sentences", "1", "--assume-arabic"],
    )
    .write_stdin(english)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Arabic"));
    let summary = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        tarjama::document::split_sentences(summary.trim()).len(),
        1,
        "{summary}"
    );
}

#[test]
fn translating_thirty_ntrex_lines_reaches_chrf_25() {
    let Some(model) = test_model() else { return };
    let mut chat = tarjama::pipeline::ChatPipeline::load(&model, &Device::Cpu).unwrap();
    let ar = fs::read_to_string(shared("ntrex/ar.txt")).unwrap();
    let en = fs::read_to_string(shared("ntrex/en.txt")).unwrap();
    let refs: Vec<&str> = en.lines().take(30).collect();
    let hyps: Vec<String> = ar
        .lines()
        .take(30)
        .map(|line| chat.translate_paragraph(line, &mut |_| {}).unwrap().text)
        .collect();
    for (h, r) in hyps.iter().zip(&refs).take(5) {
        eprintln!("hyp: {h}\nref: {r}");
    }
    let hyp_refs: Vec<&str> = hyps.iter().map(String::as_str).collect();
    let score = tarjama::eval::corpus_chrf(&hyp_refs, &refs);
    eprintln!("chrF on ntrex 1-30 with {TEST_MODEL}: {score:.2}");
    assert!(score >= 25.0, "chrF {score:.2} < 25");
}

/// `TARJAMA_NO_MMAP=1` reads the GGUF file into memory instead of mapping it: the same
/// translation, and `--verbose` says which way the weights came.
#[test]
fn a_mapped_and_a_read_chat_model_translate_alike() {
    let Some(model) = test_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: Vec<String> = fs::read_to_string(shared("ntrex/ar.txt"))
        .unwrap()
        .lines()
        .take(2)
        .map(String::from)
        .collect();
    fs::write(&input, lines.join("\n")).unwrap();
    let run = |no_map: &str| {
        let out = succeeded(
            tarjama()
                .env("TARJAMA_NO_MMAP", no_map)
                .args(["translate", "--verbose", "--model"])
                .arg(&model)
                .arg(&input),
        );
        (out.stdout, String::from_utf8(out.stderr).unwrap())
    };
    let (mapped, mapped_log) = run("0");
    let (read, read_log) = run("1");
    assert!(!mapped.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&mapped),
        String::from_utf8_lossy(&read)
    );
    assert!(
        mapped_log.contains("MB of weights read where the file is mapped"),
        "{mapped_log}"
    );
    assert!(!read_log.contains("where the file is mapped"), "{read_log}");
}
