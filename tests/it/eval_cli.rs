//! `tarjama eval` end to end: the scores it prints for hypothesis and reference files equal the
//! values sacrebleu and rouge-score computed for the same lines (`tests/fixtures/metrics/`,
//! written by `scripts/make-metric-fixtures.py`), and translating with `--src` scores what
//! `--save-hyp` keeps.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{metrics, succeeded};

fn fixture(name: &str) -> Value {
    metrics::load(name)
}

/// A case's hypotheses or references: a named text of the fixture, or inline lines.
fn lines(fixture: &Value, texts: &Value) -> Vec<String> {
    let texts = match texts {
        Value::String(name) => &fixture["texts"][name.as_str()],
        inline => inline,
    };
    texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// The cases whose lines survive being written one per line to a file and read back: no line
/// breaks inside a segment, no byte-order mark, and some visible text (an empty file is refused).
fn file_cases(fixture: &Value) -> Vec<(String, Vec<String>, Vec<String>, Value)> {
    fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| {
            let hyps = lines(fixture, &case["hyps"]);
            let refs = lines(fixture, &case["refs"]);
            let clean = |v: &[String]| {
                v.iter().all(|l| {
                    !l.contains([
                        '\n', '\r', '\u{feff}', '\u{85}', '\u{2028}', '\u{2029}', '\u{b}', '\u{c}',
                        '\u{1c}', '\u{1d}', '\u{1e}',
                    ])
                }) && v.iter().any(|l| !l.trim().is_empty())
            };
            (clean(&hyps) && clean(&refs)).then(|| {
                (
                    case["name"].as_str().unwrap().to_string(),
                    hyps,
                    refs,
                    case["corpus"].clone(),
                )
            })
        })
        .collect()
}

fn eval(dir: &Path, args: &[&str], hyps: &[String], refs: &[String]) -> Value {
    let (hyp, reference) = (dir.join("hyp.txt"), dir.join("ref.txt"));
    fs::write(&hyp, hyps.join("\n") + "\n").unwrap();
    fs::write(&reference, refs.join("\n") + "\n").unwrap();
    let out = Command::cargo_bin("tarjama")
        .unwrap()
        .args(["eval", "--format", "json", "--hyp"])
        .arg(&hyp)
        .arg("--ref")
        .arg(&reference)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn bits(hex: &Value) -> f64 {
    metrics::from_bits(hex.as_str().unwrap())
}

#[test]
fn bleu_from_files_equals_sacrebleu() {
    let fixture = fixture("bleu.json");
    let tmp = tempfile::tempdir().unwrap();
    let cases = file_cases(&fixture);
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for (name, hyps, refs, corpus) in cases {
        let got = eval(tmp.path(), &[], &hyps, &refs);
        let want = bits(&corpus["bits"]);
        let score = got["bleu"]["score"].as_f64().unwrap();
        assert!(
            (score - want).abs() < 1e-9,
            "{name}: BLEU {score} against sacrebleu's {want}"
        );
        assert_eq!(got["sentences"], hyps.len());
    }
}

#[test]
fn rouge_from_files_equals_rouge_score() {
    let fixture = fixture("rouge.json");
    let tmp = tempfile::tempdir().unwrap();
    let cases = file_cases(&fixture);
    assert!(cases.len() >= 10, "{} cases", cases.len());
    for (name, hyps, refs, corpus) in cases {
        let got = eval(tmp.path(), &["--task", "summarize"], &hyps, &refs);
        for key in ["rouge1", "rouge2", "rougeL"] {
            let want = bits(&corpus[key]["bits"][2]);
            let f = got[key]["fmeasure"].as_f64().unwrap();
            assert!(
                (f - want).abs() < 1e-9,
                "{name} {key}: F {f} against rouge-score's {want}"
            );
        }
    }
}

#[test]
fn translate_then_score_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex");
    let take = |file: &str| -> Vec<String> {
        fs::read_to_string(shared.join(file))
            .unwrap()
            .lines()
            .take(8)
            .map(str::to_string)
            .collect()
    };
    let (ar, en) = (take("ar.txt"), take("en.txt"));
    let (src, reference, saved) = (
        tmp.path().join("src"),
        tmp.path().join("ref"),
        tmp.path().join("hyp"),
    );
    fs::write(&src, ar.join("\n") + "\n").unwrap();
    fs::write(&reference, en.join("\n") + "\n").unwrap();
    let out = succeeded(
        Command::cargo_bin("tarjama")
            .unwrap()
            .env("HF_HOME", tmp.path())
            .args([
                "eval", "--format", "json", "--quiet", "--beams", "1", "--model",
            ])
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny"))
            .arg("--src")
            .arg(&src)
            .arg("--ref")
            .arg(&reference)
            .arg("--save-hyp")
            .arg(&saved),
    );
    let translated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hyps: Vec<String> = fs::read_to_string(&saved)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(hyps.len(), 8);
    let expected = tarjama::eval::score_translation(&hyps, &en).unwrap();
    assert_eq!(
        translated["bleu"]["score"].as_f64().unwrap(),
        expected.bleu.score
    );
    assert_eq!(translated["chrf"].as_f64().unwrap(), expected.chrf);

    // Different line counts: one line naming both counts, exit code 1.
    fs::write(&saved, "one line\n").unwrap();
    let out = Command::cargo_bin("tarjama")
        .unwrap()
        .args(["eval", "--hyp"])
        .arg(&saved)
        .arg("--ref")
        .arg(&reference)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 hypotheses but 8 references"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1);

    // Neither --hyp nor --src: a usage error.
    let out = Command::cargo_bin("tarjama")
        .unwrap()
        .args(["eval", "--ref"])
        .arg(&reference)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `--save-hyp` is written like every other output: never over one of the inputs, never by two
/// runs at once, and not at all when the translation fails.
#[test]
fn save_hyp_never_replaces_an_input_or_a_file_another_run_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, reference, saved) = (
        tmp.path().join("src"),
        tmp.path().join("ref"),
        tmp.path().join("hyp"),
    );
    fs::write(&src, "قال المتحدث إن الاجتماع سيعقد غدا.\n").unwrap();
    fs::write(&reference, "The meeting is tomorrow.\n").unwrap();
    let run = |save: &Path, model: &str| {
        Command::cargo_bin("tarjama")
            .unwrap()
            .env("HF_HOME", tmp.path())
            .env("HF_HUB_OFFLINE", "1")
            .args(["eval", "--quiet", "--beams", "1", "--model", model])
            .arg("--src")
            .arg(&src)
            .arg("--ref")
            .arg(&reference)
            .arg("--save-hyp")
            .arg(save)
            .output()
            .unwrap()
    };
    let marian = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny");
    let marian = marian.to_str().unwrap();
    for input in [&src, &reference] {
        let before = fs::read_to_string(input).unwrap();
        let out = run(input, marian);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--save-hyp") && stderr.contains("is the input"),
            "{stderr}"
        );
        assert_eq!(fs::read_to_string(input).unwrap(), before);
    }
    // A model that fails to load leaves the existing file as it was.
    fs::write(&saved, "OLD\n").unwrap();
    let out = run(&saved, tmp.path().join("no-model").to_str().unwrap());
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(fs::read_to_string(&saved).unwrap(), "OLD\n");
    // Another run holding the file's lock: refused at once.
    let lock = tarjama::output::OutputLock::acquire(&saved).unwrap();
    let out = run(&saved, marian);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(lock);
    assert_eq!(fs::read_to_string(&saved).unwrap(), "OLD\n");
    let out = run(&saved, marian);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&saved).unwrap().lines().count(), 1);
}

/// Several `--ref` files and `--chrf-word-order 2` print exactly what `sacrebleu REF1 REF2 -i HYP
/// -m bleu chrf --chrf-word-order 2 -f text -w 2` prints (the fixture's `text` lines), and the
/// JSON carries the same signatures.
#[test]
fn several_references_and_chrf_plus_plus_print_sacrebleus_lines() {
    let fixture = fixture("multiref.json");
    let case = |name: &str| {
        fixture["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}"))
            .clone()
    };
    let bleu = case("bleu/3refs/en/typos");
    let chrf = case("chrf++/3refs/en/typos");
    assert_eq!(bleu["refs"], chrf["refs"]);
    let tmp = tempfile::tempdir().unwrap();
    let hyp = tmp.path().join("hyp.txt");
    fs::write(&hyp, lines(&fixture, &bleu["hyps"]).join("\n") + "\n").unwrap();
    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.args(["eval", "--chrf-word-order", "2", "--hyp"])
        .arg(&hyp);
    for (k, refs) in bleu["refs"].as_array().unwrap().iter().enumerate() {
        let path = tmp.path().join(format!("ref{k}.txt"));
        fs::write(&path, lines(&fixture, refs).join("\n") + "\n").unwrap();
        cmd.arg("--ref").arg(path);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!(
        "{}\n{}\n",
        bleu["text"].as_str().unwrap(),
        chrf["text"].as_str().unwrap()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    let json: Value =
        serde_json::from_slice(&cmd.args(["--format", "json"]).output().unwrap().stdout).unwrap();
    assert_eq!(json["references"], 3);
    assert_eq!(json["bleu_signature"], bleu["signature"]);
    assert_eq!(json["chrf_signature"], chrf["signature"]);
    assert_eq!(json["chrf_name"], "chrF2++");
    assert_eq!(
        json["chrf"].as_f64().unwrap(),
        bits(&chrf["corpus"]["bits"])
    );
    assert_eq!(
        json["bleu"]["score"].as_f64().unwrap(),
        bits(&bleu["corpus"]["bits"])
    );

    // A reference file of another length is named like a single one; ROUGE takes one --ref.
    let short = tmp.path().join("short.txt");
    fs::write(&short, "one line\n").unwrap();
    let out = cmd.arg("--ref").arg(&short).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::cargo_bin("tarjama")
        .unwrap()
        .args(["eval", "--task", "summarize", "--hyp"])
        .arg(&hyp)
        .args(["--ref", "a.txt", "--ref"])
        .arg(&hyp)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a.txt is missing: an input error first"
    );
    let out = Command::cargo_bin("tarjama")
        .unwrap()
        .args(["eval", "--task", "summarize", "--hyp"])
        .arg(&hyp)
        .arg("--ref")
        .arg(&hyp)
        .arg("--ref")
        .arg(&hyp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one --ref"));
}
