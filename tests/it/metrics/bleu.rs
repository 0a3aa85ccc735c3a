//! BLEU against sacrebleu 2.6: `tests/fixtures/metrics/bleu.json`, written by
//! `scripts/make-metric-fixtures.py`, holds sacrebleu's `corpus_bleu` (with its brevity penalty
//! and precisions) and `sentence_bleu` scores as bit patterns, the statistics behind them, and
//! `Tokenizer13a` outputs, for NTREX-128 lines, perturbed copies of them, and edge cases.
//!
//! The counts are integers and the float arithmetic follows sacrebleu's order, so every score is
//! expected to be bit-identical. The one dependency outside this crate is the C library's `exp`
//! and `log`, which Python's `math` calls too: on glibc (where the fixture was made) the check is
//! exact, elsewhere scores may differ in the last bits and must agree to 1e-9.

use std::collections::HashMap;

use serde::Deserialize;
use tarjama::eval::bleu::MAX_NGRAM_ORDER;
use tarjama::eval::{corpus_bleu, sentence_bleu, tokenize_13a, BleuScore, BleuStats};

use crate::common::metrics;
use metrics::{from_bits, Texts};

/// Where the libm is glibc, as when the fixture was made, scores must match to the bit.
const BIT_EXACT: bool = cfg!(all(target_os = "linux", target_env = "gnu"));
/// The tolerance elsewhere, on the 0-100 scale.
const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    versions: HashMap<String, String>,
    texts: HashMap<String, Vec<String>>,
    tokenize_13a: Vec<(String, String)>,
    tokenized_texts: HashMap<String, Vec<String>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    hyps: Texts,
    refs: Texts,
    corpus: CorpusExpected,
    sentences: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    /// The score's IEEE-754 bits in hex.
    bits: String,
    /// `[sys_len, ref_len, correct 1..4, total 1..4]`.
    stats: Vec<u64>,
}

#[derive(Deserialize)]
struct CorpusExpected {
    /// For people reading the file; `bits` is what is compared.
    score: f64,
    bits: String,
    stats: Vec<u64>,
    bp: String,
    precisions: Vec<String>,
}

fn fixture() -> Fixture {
    metrics::load("bleu.json")
}

/// Tallies comparisons of floats: how many were bit-identical, the largest difference.
#[derive(Default)]
struct Tally {
    compared: usize,
    exact: usize,
    max_diff: f64,
    failures: Vec<String>,
}

impl Tally {
    fn float(&mut self, what: &str, got: f64, want: f64) {
        self.compared += 1;
        if got.to_bits() == want.to_bits() {
            self.exact += 1;
            return;
        }
        let diff = (got - want).abs();
        self.max_diff = self.max_diff.max(diff);
        if BIT_EXACT || diff.is_nan() || diff > TOLERANCE {
            self.failures.push(format!(
                "{what}: rust {got:?} sacrebleu {want:?} (diff {diff:e})"
            ));
        }
    }

    fn stats(&mut self, what: &str, got: &BleuStats, want: &[u64]) {
        if got.to_sacrebleu()[..] != want[..] {
            self.failures.push(format!(
                "{what}: stats rust {:?} sacrebleu {want:?}",
                got.to_sacrebleu()
            ));
        }
    }

    fn finish(self, what: &str) {
        eprintln!(
            "{what}: {} of {} floats bit-identical to sacrebleu, largest difference {:e}",
            self.exact, self.compared, self.max_diff
        );
        assert!(
            self.failures.is_empty(),
            "{} mismatches with sacrebleu:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

#[test]
fn fixture_is_sacrebleu_2_6_default_bleu() {
    let f = fixture();
    assert_eq!(f.versions["sacrebleu"], "2.6.0");
    assert!(f.cases.len() >= 80, "the fixture lost cases");
    assert!(
        f.tokenize_13a.len() >= 100,
        "the fixture lost tokenizer cases"
    );
    for c in &f.cases {
        assert_eq!(c.corpus.stats.len(), 2 + 2 * MAX_NGRAM_ORDER, "{}", c.name);
        let decimal = (from_bits(&c.corpus.bits) - c.corpus.score).abs();
        assert!(
            decimal <= 1e-9,
            "{}: bits and decimal score disagree",
            c.name
        );
    }
}

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    let f = fixture();
    let mut failures = Vec::new();
    let mut pairs: Vec<(&str, &str)> = f
        .tokenize_13a
        .iter()
        .map(|(i, o)| (i.as_str(), o.as_str()))
        .collect();
    for (name, tokenized) in &f.tokenized_texts {
        assert_eq!(tokenized.len(), f.texts[name].len());
        pairs.extend(
            f.texts[name]
                .iter()
                .map(String::as_str)
                .zip(tokenized.iter().map(String::as_str)),
        );
    }
    for (input, want) in &pairs {
        let got = tokenize_13a(input);
        if got != *want {
            failures.push(format!(
                "{input:?}\n  rust      {got:?}\n  sacrebleu {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} tokenizations differ:\n{}",
        failures.len(),
        pairs.len(),
        failures.join("\n")
    );
}

fn check_corpus(
    tally: &mut Tally,
    what: &str,
    got: &BleuScore,
    stats: &BleuStats,
    want: &CorpusExpected,
) {
    tally.stats(what, stats, &want.stats);
    tally.float(what, got.score, from_bits(&want.bits));
    tally.float(&format!("{what} bp"), got.bp, from_bits(&want.bp));
    for (n, (g, w)) in got.precisions.iter().zip(&want.precisions).enumerate() {
        tally.float(&format!("{what} precision {}", n + 1), *g, from_bits(w));
    }
    assert_eq!(got.counts[..], want.stats[2..2 + MAX_NGRAM_ORDER], "{what}");
    assert_eq!(got.totals[..], want.stats[2 + MAX_NGRAM_ORDER..], "{what}");
    assert_eq!([got.sys_len, got.ref_len], want.stats[..2], "{what}");
}

#[test]
fn corpus_bleu_matches_sacrebleu() {
    let f = fixture();
    let mut tally = Tally::default();
    for case in &f.cases {
        let hyps = case.hyps.resolve(&f.texts);
        let refs = case.refs.resolve(&f.texts);
        let stats = BleuStats::corpus(&hyps, &refs);
        let got = corpus_bleu(&hyps, &refs);
        assert_eq!(got, stats.score(false));
        check_corpus(
            &mut tally,
            &format!("{} corpus", case.name),
            &got,
            &stats,
            &case.corpus,
        );
    }
    tally.finish("corpus BLEU");
}

#[test]
fn sentence_bleu_matches_sacrebleu() {
    let f = fixture();
    let mut tally = Tally::default();
    for case in &f.cases {
        let hyps = case.hyps.resolve(&f.texts);
        let refs = case.refs.resolve(&f.texts);
        assert_eq!(hyps.len(), refs.len(), "{}", case.name);
        assert_eq!(hyps.len(), case.sentences.len(), "{}", case.name);
        for (i, ((h, r), want)) in hyps.iter().zip(&refs).zip(&case.sentences).enumerate() {
            let what = format!("{} line {i}", case.name);
            let stats = BleuStats::sentence(h, r);
            tally.stats(&what, &stats, &want.stats);
            tally.float(&what, sentence_bleu(h, r).score, from_bits(&want.bits));
        }
    }
    tally.finish("sentence BLEU");
}

#[test]
fn corpus_statistics_are_sums_of_sentence_statistics() {
    let f = fixture();
    let case = f
        .cases
        .iter()
        .find(|c| c.name == "en/typos")
        .expect("en/typos");
    let hyps = case.hyps.resolve(&f.texts);
    let refs = case.refs.resolve(&f.texts);
    let summed: BleuStats = hyps
        .iter()
        .zip(&refs)
        .map(|(h, r)| BleuStats::sentence(h, r))
        .sum();
    assert_eq!(summed.to_sacrebleu()[..], case.corpus.stats[..]);
    let summed_fixture: Vec<u64> = (0..2 + 2 * MAX_NGRAM_ORDER)
        .map(|k| case.sentences.iter().map(|s| s.stats[k]).sum())
        .collect();
    assert_eq!(summed_fixture, case.corpus.stats);
}

#[test]
fn edge_case_scores() {
    // Behaviour callers may rely on; the fixture holds sacrebleu's values for each of these.
    assert_eq!(sentence_bleu("", "a reference").score, 0.0);
    assert_eq!(sentence_bleu("a hypothesis", "").score, 0.0);
    assert_eq!(sentence_bleu("", "").score, 0.0);
    assert_eq!(sentence_bleu("cat", "dog").score, 0.0);
    let empty = corpus_bleu::<&str, &str>(&[], &[]);
    assert_eq!((empty.score, empty.sys_len, empty.ref_len), (0.0, 0, 0));
    // Without 4-grams the corpus score is 0 but the sentence score, with effective order, is not.
    assert_eq!(corpus_bleu(&["the cat sat"], &["the cat sat"]).score, 0.0);
    assert!(sentence_bleu("the cat sat", "the cat sat").score > 99.0);
}

#[test]
#[should_panic(expected = "one reference per hypothesis")]
fn mismatched_lengths_panic() {
    corpus_bleu(&["a", "b"], &["a"]);
}
