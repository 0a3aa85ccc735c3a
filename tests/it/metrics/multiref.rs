//! chrF++, several references and sacrebleu's signatures, against sacrebleu 2.6:
//! `tests/fixtures/metrics/multiref.json`, written by `scripts/make-metric-fixtures.py`, holds
//! sacrebleu's BLEU, chrF and chrF++ of NTREX-128 lines, perturbed copies and edge cases against
//! one to three reference streams, per corpus and per sentence, with their statistics, their
//! signatures and the line `sacrebleu -f text -w 2` prints. Scores must be bit-identical.

use std::collections::HashMap;

use serde::Deserialize;
use tarjama::eval::{self, BleuStats, ChrfStats};

use crate::common::metrics::{self, from_bits, Texts};

#[derive(Deserialize)]
struct Fixture {
    versions: HashMap<String, String>,
    texts: HashMap<String, Vec<String>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    metric: String,
    word_order: usize,
    hyps: Texts,
    refs: Vec<Texts>,
    signature: String,
    text: String,
    corpus: Scored,
    sentences: Vec<Scored>,
}

#[derive(Deserialize)]
struct Scored {
    bits: String,
    stats: Vec<u64>,
}

/// The statistics and score tarjama gives, in sacrebleu's layout: over the corpus (sacrebleu's
/// corpus BLEU without effective order), or for one sentence (`hyps` of one, with it).
fn ours(case: &Case, hyps: &[&str], streams: &[Vec<&str>], sentence: bool) -> (Vec<u64>, f64) {
    if case.metric == "bleu" {
        let stats = BleuStats::corpus_multi(hyps, streams);
        (stats.to_sacrebleu().to_vec(), stats.score(sentence).score)
    } else {
        let stats = ChrfStats::corpus_multi(hyps, streams, case.word_order);
        (
            stats.to_sacrebleu_with_words(case.word_order),
            stats.score(),
        )
    }
}

#[test]
fn chrf_plus_plus_and_several_references_equal_sacrebleu_bit_for_bit() {
    let f: Fixture = metrics::load("multiref.json");
    assert_eq!(f.versions["sacrebleu"], eval::SACREBLEU_VERSION);
    assert!(f.cases.len() >= 100, "the fixture lost cases");
    let mut failures = Vec::new();
    let mut sentences = 0;
    for case in &f.cases {
        let hyps = case.hyps.resolve(&f.texts);
        let streams: Vec<Vec<&str>> = case.refs.iter().map(|r| r.resolve(&f.texts)).collect();
        let (stats, score) = ours(case, &hyps, &streams, false);
        let want = from_bits(&case.corpus.bits);
        if stats != case.corpus.stats || score.to_bits() != want.to_bits() {
            failures.push(format!(
                "{}: corpus {score:?} against {want:?}, stats {stats:?} against {:?}",
                case.name, case.corpus.stats
            ));
        }
        for (i, (hyp, want)) in hyps.iter().zip(&case.sentences).enumerate() {
            let refs: Vec<Vec<&str>> = streams.iter().map(|s| vec![s[i]]).collect();
            let (stats, score) = ours(case, &[hyp], &refs, true);
            sentences += 1;
            if stats != want.stats || score.to_bits() != from_bits(&want.bits).to_bits() {
                failures.push(format!(
                    "{} sentence {i}: {score:?}, stats {stats:?}",
                    case.name
                ));
            }
        }
    }
    eprintln!("{} corpora, {sentences} sentences", f.cases.len());
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn signatures_and_text_lines_are_sacrebleus() {
    let f: Fixture = metrics::load("multiref.json");
    for case in &f.cases {
        let hyps = case.hyps.resolve(&f.texts);
        let streams: Vec<Vec<&str>> = case.refs.iter().map(|r| r.resolve(&f.texts)).collect();
        let scores = eval::score_translation_multi(&hyps, &streams, case.word_order).unwrap();
        let (signature, line) = if case.metric == "bleu" {
            (&scores.bleu_signature, 0)
        } else {
            (&scores.chrf_signature, 1)
        };
        assert_eq!(signature, &case.signature, "{}", case.name);
        let text = scores.to_string();
        assert_eq!(
            text.lines().nth(line),
            Some(case.text.as_str()),
            "{}",
            case.name
        );
    }
}
