//! The support check of summaries (`tarjama summarize`, on unless `--no-check`): what the
//! JSON report says must agree with the summary printed, places must be in the Arabic, and the
//! first draft it reports must be the summary `--no-check` prints.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use tarjama::faithful::{Evidence, ItemKind};

use crate::common::{fixtures, real_test_model, shared};

fn summarize(model: &Path, args: &[&str], stdin: &str) -> (Value, String) {
    let out = Command::cargo_bin("tarjama")
        .unwrap()
        .env("HF_HUB_OFFLINE", "1")
        .args(["summarize", "--format", "json", "--model"])
        .arg(model)
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn texts(report: &Value, outcomes: &[&str]) -> Vec<String> {
    report["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| outcomes.contains(&s["outcome"].as_str().unwrap()))
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect()
}

/// The report's invariants: the summary is its kept, regenerated and trimmed sentences, those
/// have no unsupported item and the others do, a trimmed sentence follows the rejected one it
/// was cut from, and the shortfall is counted.
fn assert_report_agrees(record: &Value) -> Vec<String> {
    let report = &record["check"];
    let accepted = texts(report, &["kept", "regenerated", "trimmed"]);
    assert_eq!(record["summary"].as_str().unwrap(), accepted.join(" "));
    for s in report["sentences"].as_array().unwrap() {
        let unsupported = s["unsupported"].as_array().unwrap();
        match s["outcome"].as_str().unwrap() {
            "kept" | "regenerated" | "trimmed" => assert!(unsupported.is_empty(), "{s}"),
            "rejected" | "dropped" => assert!(!unsupported.is_empty(), "{s}"),
            other => panic!("unknown outcome {other}"),
        }
    }
    let sentences = report["sentences"].as_array().unwrap();
    for pair in sentences.windows(2) {
        if pair[1]["outcome"] == "trimmed" {
            assert_eq!(pair[0]["outcome"], "rejected", "{pair:?}");
            // Cut from it: every word left was in the rejected sentence.
            let before = pair[0]["text"].as_str().unwrap();
            for word in pair[1]["text"].as_str().unwrap().split_whitespace() {
                let word = word
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase();
                assert!(before.to_lowercase().contains(&word), "{pair:?}");
            }
        }
    }
    let requested = report["requested"].as_u64().unwrap() as usize;
    assert_eq!(
        report["short_by"].as_u64().unwrap() as usize,
        requested.saturating_sub(accepted.len())
    );
    accepted
}

#[test]
fn a_chat_summary_keeps_only_supported_sentences_and_reports_its_draft() {
    let Some(model) = real_test_model() else {
        return;
    };
    // The first sentences of an NTREX article on North Macedonia's name, of which the test
    // model's draft summaries name places the article does not.
    let ar = std::fs::read_to_string(shared("ntrex/ar.txt")).unwrap();
    let ids = std::fs::read_to_string(shared("ntrex/doc_ids.txt")).unwrap();
    let article: Vec<&str> = ar
        .lines()
        .zip(ids.lines())
        .filter(|(_, id)| *id == "rt.com.91337")
        .map(|(line, _)| line)
        .take(6)
        .collect();
    let article = article.join("\n\n");
    let (record, stderr) = summarize(&model, &["--verbose"], &article);
    let accepted = assert_report_agrees(&record);
    let report = &record["check"];
    assert!(
        stderr.contains("check: ") && stderr.contains("sentence(s) kept"),
        "{stderr}"
    );
    if report["short_by"].as_u64().unwrap() > 0 {
        assert!(stderr.contains("short of the 3 asked for"), "{stderr}");
    }
    // Places need the Arabic whatever the translation says: checked again from the Arabic
    // alone, no accepted sentence names a place the article does not.
    let evidence = Evidence::from_arabic(&article);
    for sentence in &accepted {
        let check = evidence.check(sentence);
        assert!(
            check.unsupported.iter().all(|i| i.kind != ItemKind::Place),
            "{sentence}: {check:?}"
        );
    }
    // The draft is what the check started from: the summary without it.
    let (unchecked, _) = summarize(&model, &["--no-check"], &article);
    assert!(unchecked.get("check").is_none(), "{unchecked}");
    let draft: Vec<&str> = report["draft"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(unchecked["summary"].as_str().unwrap(), draft.join(" "));
}

#[test]
fn an_encoder_decoder_summary_is_checked_against_the_translation_it_reads() {
    let ar = std::fs::read_to_string(shared("ntrex/ar.txt")).unwrap();
    let article: Vec<&str> = ar.lines().take(4).collect();
    let model = fixtures().join("bart-tiny");
    let translator = fixtures().join("marian-tiny");
    let translator = translator.to_str().unwrap();
    let args = ["--translator", translator, "--sentences", "2", "--quiet"];
    let (record, _) = summarize(&model, &args, &article.join("\n\n"));
    let accepted = assert_report_agrees(&record);
    assert!(accepted.len() <= 2);
    assert_eq!(record["check"]["used_translation"], true);
    let mut no_check = args.to_vec();
    no_check.push("--no-check");
    let (unchecked, _) = summarize(&model, &no_check, &article.join("\n\n"));
    assert!(unchecked.get("check").is_none(), "{unchecked}");
    assert_eq!(
        record["check"]["draft"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" "),
        unchecked["summary"].as_str().unwrap()
    );
}
