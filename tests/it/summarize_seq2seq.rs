//! `summarize` with encoder-decoder summarizers on the tiny fixture models: the English
//! strategy (translate with Marian, summarize with BART), the Arabic one (summarize, then
//! translate), the long-document path over a whole ntrex article, and the errors of mixing up
//! translators and summarizers.

use std::path::PathBuf;

use assert_cmd::Command;
use candle_core::{DType, Device};
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::{Seq2Seq, Summarizer, SummaryLength};

use crate::common::{fixtures, shared, stdout_of};

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The ntrex article with the most sentences, one paragraph per sentence.
fn longest_ntrex_article() -> (Vec<String>, Vec<String>) {
    let ids = std::fs::read_to_string(shared("ntrex/doc_ids.txt")).unwrap();
    let ar = std::fs::read_to_string(shared("ntrex/ar.txt")).unwrap();
    let en = std::fs::read_to_string(shared("ntrex/en.txt")).unwrap();
    let rows: Vec<(&str, (&str, &str))> = ids.lines().zip(ar.lines().zip(en.lines())).collect();
    let mut best: Vec<(&str, &str)> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let j = (i..rows.len())
            .find(|&j| rows[j].0 != rows[i].0)
            .unwrap_or(rows.len());
        if j - i > best.len() {
            best = rows[i..j].iter().map(|r| r.1).collect();
        }
        i = j;
    }
    best.iter()
        .map(|(a, e)| (a.to_string(), e.to_string()))
        .unzip()
}

fn tarjama() -> Command {
    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.env("HF_HUB_OFFLINE", "1")
        .arg("summarize")
        .arg("--quiet");
    cmd
}

#[test]
fn english_summarizer_reads_the_translation() {
    let (arabic, _) = longest_ntrex_article();
    let mut cmd = tarjama();
    cmd.arg("--model").arg(fixture("bart-tiny"));
    cmd.arg("--translator").arg(fixture("marian-tiny"));
    cmd.args(["--sentences", "2", "--format", "json", "--show-translation"]);
    cmd.write_stdin(arabic[..4].join("\n\n"));
    let record: serde_json::Value = serde_json::from_str(&stdout_of(&mut cmd)).unwrap();
    let summary = record["summary"].as_str().unwrap();
    assert!(!summary.trim().is_empty());
    assert!(
        tarjama::document::split_sentences(summary).len() <= 2,
        "{summary}"
    );
    assert!(!tarjama::document::contains_arabic(summary));
    let translation = record["english"].as_array().unwrap();
    assert_eq!(
        translation.len(),
        4,
        "one translated paragraph per input paragraph"
    );
    assert_eq!(
        (&record["schema"], &record["task"]),
        (&1.into(), &"summarize".into())
    );
    assert!(record["translator_revision"].is_string());
    assert!(record["translator"]
        .as_str()
        .unwrap()
        .ends_with("marian-tiny"));
}

#[test]
fn arabic_summarizer_summary_is_translated() {
    let (arabic, _) = longest_ntrex_article();
    let mut cmd = tarjama();
    // Any summarizer can be told it reads Arabic; the fixture's output is then translated.
    cmd.arg("--model").arg(fixture("bart-tiny"));
    cmd.arg("--translator").arg(fixture("marian-tiny"));
    // The fixture writes random words, which the support check (tests/it/summary_check.rs)
    // may drop whole: this test is about the translation of an Arabic summary.
    cmd.args(["--summarizer-reads", "ar", "--sentences", "1", "--no-check"]);
    cmd.write_stdin(arabic[..3].join("\n\n"));
    let text = stdout_of(&mut cmd);
    assert!(!text.trim().is_empty());
    assert!(
        tarjama::document::split_sentences(text.trim()).len() <= 1,
        "{text}"
    );
}

#[test]
fn long_article_is_summarized_in_windows_without_dropping_text() {
    let (_, english) = longest_ntrex_article();
    let files = hub::resolve(
        fixture("bart-tiny").to_str().unwrap(),
        &HubOptions::default(),
    )
    .unwrap();
    let core = Seq2Seq::load(&files, &Device::Cpu, DType::F32).unwrap();
    let summarizer = Summarizer::new(core, usize::MAX).unwrap();
    let windows = summarizer.windows(&english);
    assert!(windows.len() > 1, "the article should need several windows");
    let count = |s: &str| summarizer.count(s);
    for w in &windows {
        assert!(
            count(w) <= summarizer.window,
            "window of {} tokens",
            count(w)
        );
    }
    // Every sentence of the article is in some window, in order.
    let joined: String = windows.join("\n");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(squash(&joined), squash(&english.join("\n")));
    let mut parts = Vec::new();
    let summary = summarizer
        .summarize(&english, SummaryLength::Sentences(3), &mut |done, total| {
            parts.push((done, total))
        })
        .unwrap();
    assert!(!summary.is_empty());
    assert!(
        parts.iter().any(|&(_, total)| total == windows.len()),
        "{parts:?}"
    );
}

#[test]
fn a_translator_is_not_a_summarizer() {
    let mut cmd = tarjama();
    cmd.arg("--model")
        .arg(fixture("marian-tiny"))
        .write_stdin("مرحبا");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("is a translation model, not a summarizer"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_summarizer_is_not_a_translator() {
    let mut cmd = tarjama();
    cmd.arg("--model").arg(fixture("bart-tiny"));
    cmd.arg("--translator")
        .arg(fixture("bart-tiny"))
        .write_stdin("مرحبا");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--translator") && err.contains("not a translator"),
        "{err}"
    );

    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.args(["translate", "--quiet", "--model"])
        .arg(fixture("bart-tiny"))
        .write_stdin("مرحبا");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("tarjama summarize --model"));
}

#[test]
fn nllb_without_an_arabic_code_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nllb-no-arabic");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("nllb-tiny")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let tokenizer = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        tokenizer.replace("arb_Arab", "xxx_Xxxx"),
    )
    .unwrap();
    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.args(["translate", "--quiet", "--model"])
        .arg(&dir)
        .write_stdin("مرحبا");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("without an Arabic source code"), "{err}");
}

#[test]
fn nllb_translates_an_article() {
    let (arabic, _) = longest_ntrex_article();
    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.args(["translate", "--quiet", "--model"])
        .arg(fixture("nllb-tiny"));
    cmd.write_stdin(arabic[..3].join("\n\n") + "\n");
    let text = stdout_of(&mut cmd);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(!tarjama::document::contains_arabic(&text), "{text}");
}

#[test]
fn t5_summarizer_reads_the_translation() {
    let (arabic, _) = longest_ntrex_article();
    let mut cmd = tarjama();
    cmd.arg("--model").arg(fixture("t5-tiny"));
    cmd.arg("--translator").arg(fixture("marian-tiny"));
    cmd.args(["--sentences", "2"])
        .write_stdin(arabic[..3].join("\n\n"));
    let text = stdout_of(&mut cmd);
    assert!(!text.trim().is_empty());
    assert!(
        tarjama::document::split_sentences(text.trim()).len() <= 2,
        "{text}"
    );
}

#[test]
fn a_directory_is_summarized_file_by_file_with_bad_files_reported() {
    let (arabic, _) = longest_ntrex_article();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("a.ar.txt"), arabic[..3].join("\n\n")).unwrap();
    std::fs::write(input.join("b.ar.txt"), b"\xff\xfe\x00").unwrap();
    std::fs::write(input.join("c.ar.txt"), arabic[3..6].join("\n\n")).unwrap();
    let summarize = |extra: &[&str]| {
        let mut cmd = tarjama();
        cmd.arg("--model").arg(fixture("bart-tiny"));
        cmd.arg("--translator").arg(fixture("marian-tiny"));
        // The fixture's random words may fail the support check whole; this test is about files.
        cmd.args(["--sentences", "1", "--no-check"])
            .args(extra)
            .arg(&input);
        cmd.output().unwrap()
    };

    let out = summarize(&["--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(1), "b.ar.txt is UTF-16");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("b.ar.txt") && stderr.contains("UTF-16"),
        "{stderr}"
    );
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(!record["summary"].as_str().unwrap().is_empty());
            record["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids, ["a.ar.txt", "c.ar.txt"]);

    let output = tmp.path().join("out");
    let out = summarize(&["-o", output.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let mut written: Vec<String> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    written.sort();
    assert_eq!(written, ["a.summary.txt", "c.summary.txt"]);
}
