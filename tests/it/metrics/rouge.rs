//! ROUGE against rouge-score 0.1.2: `tests/fixtures/metrics/rouge.json`, written by
//! `scripts/make-metric-fixtures.py`, holds `RougeScorer(['rouge1', 'rouge2', 'rougeL'])`'s
//! per-pair precision, recall and F-measure as bit patterns with the counts behind them, the
//! left-to-right mean of each over every corpus, and the default tokenizer's output, for
//! NTREX-128 lines, perturbed copies of them, and edge cases. Only integer counts and
//! divisions/multiplications are involved, so every value must be bit-identical.

use std::collections::HashMap;

use serde::Deserialize;
use tarjama::eval::rouge::{sentence_counts, tokenize, RougeCounts};
use tarjama::eval::{corpus_rouge, sentence_rouge, RougeScore, RougeScores};

use crate::common::metrics;
use metrics::{from_bits, Texts};

#[derive(Deserialize)]
struct Fixture {
    versions: HashMap<String, String>,
    texts: HashMap<String, Vec<String>>,
    tokenize: Vec<(String, Vec<String>)>,
    tokenized_texts: HashMap<String, Vec<Vec<String>>>,
    single_char_tokens: Vec<(u32, Vec<String>)>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    hyps: Texts,
    refs: Texts,
    corpus: HashMap<String, MeanExpected>,
    sentences: Vec<PairExpected>,
}

/// A corpus mean: `[precision, recall, fmeasure]` bits.
#[derive(Deserialize)]
struct MeanExpected {
    /// For people reading the file.
    f: f64,
    bits: [String; 3],
}

/// One pair: `[p, r, f]` bits then `[matched, hyp, ref]` counts of rouge1, rouge2 and rougeL.
#[derive(Deserialize)]
struct PairExpected {
    bits: [String; 9],
    counts: [u64; 9],
}

const TYPES: [&str; 3] = ["rouge1", "rouge2", "rougeL"];

fn fixture() -> Fixture {
    metrics::load("rouge.json")
}

fn by_type(s: &RougeScores) -> [&RougeScore; 3] {
    [&s.rouge1, &s.rouge2, &s.rouge_l]
}

/// Compares `[p, r, f]` bit for bit; returns a description of each mismatch.
fn compare(what: &str, got: &RougeScore, want: &[String]) -> Vec<String> {
    let got = [got.precision, got.recall, got.fmeasure];
    ["precision", "recall", "fmeasure"]
        .iter()
        .zip(got.iter().zip(want))
        .filter(|(_, (g, w))| g.to_bits() != from_bits(w).to_bits())
        .map(|(name, (g, w))| {
            let w = from_bits(w);
            format!(
                "{what} {name}: rust {g:?} rouge-score {w:?} (diff {:e})",
                g - w
            )
        })
        .collect()
}

#[test]
fn fixture_is_rouge_score_0_1_2() {
    let f = fixture();
    assert_eq!(f.versions["rouge-score"], "0.1.2");
    assert!(f.cases.len() >= 60, "the fixture lost cases");
    for c in &f.cases {
        for t in TYPES {
            let m = &c.corpus[t];
            assert!(
                (from_bits(&m.bits[2]) - m.f).abs() <= 1e-12,
                "{} {t}",
                c.name
            );
        }
    }
}

#[test]
fn tokenizer_matches_rouge_score() {
    let f = fixture();
    let mut pairs: Vec<(&str, &[String])> = f
        .tokenize
        .iter()
        .map(|(s, t)| (s.as_str(), t.as_slice()))
        .collect();
    for (name, tokenized) in &f.tokenized_texts {
        pairs.extend(
            f.texts[name]
                .iter()
                .map(String::as_str)
                .zip(tokenized.iter().map(Vec::as_slice)),
        );
    }
    let failures: Vec<String> = pairs
        .iter()
        .filter(|(text, want)| tokenize(text) != *want)
        .map(|(text, want)| format!("{text:?}: rust {:?} rouge-score {want:?}", tokenize(text)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} tokenizations differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_single_character_tokenizes_like_rouge_score() {
    // Which characters survive lowercasing as ASCII letters or digits depends on Unicode's case
    // mappings, so every code point is checked, not only the ones in the texts.
    let f = fixture();
    let want: HashMap<u32, &Vec<String>> =
        f.single_char_tokens.iter().map(|(c, t)| (*c, t)).collect();
    assert!(want.contains_key(&0x130) && want.contains_key(&0x212a));
    let mut failures = Vec::new();
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        let got = tokenize(&c.to_string());
        let expected = want.get(&u32::from(c)).map_or(&[][..], |t| t.as_slice());
        if got != expected {
            failures.push(format!(
                "U+{:04X}: rust {got:?} rouge-score {expected:?}",
                u32::from(c)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_pair_and_corpus_mean_is_bit_identical() {
    let f = fixture();
    let mut failures = Vec::new();
    let (mut corpora, mut pairs) = (0, 0);
    for case in &f.cases {
        let hyps = case.hyps.resolve(&f.texts);
        let refs = case.refs.resolve(&f.texts);
        assert_eq!(hyps.len(), refs.len(), "{}", case.name);
        assert_eq!(hyps.len(), case.sentences.len(), "{}", case.name);
        for (i, ((h, r), want)) in hyps.iter().zip(&refs).zip(&case.sentences).enumerate() {
            let got = sentence_rouge(h, r);
            let counts = sentence_counts(h, r);
            for (k, t) in TYPES.iter().enumerate() {
                let what = format!("{} line {i} {t}", case.name);
                failures.extend(compare(
                    &what,
                    by_type(&got)[k],
                    &want.bits[3 * k..3 * k + 3],
                ));
                let RougeCounts {
                    matched,
                    hyp,
                    reference,
                } = counts[k];
                if [matched, hyp, reference] != want.counts[3 * k..3 * k + 3] {
                    failures.push(format!(
                        "{what}: counts rust {:?} rouge-score {:?}",
                        [matched, hyp, reference],
                        &want.counts[3 * k..3 * k + 3]
                    ));
                }
            }
            pairs += 1;
        }
        let got = corpus_rouge(&hyps, &refs);
        for (k, t) in TYPES.iter().enumerate() {
            let what = format!("{} corpus {t}", case.name);
            failures.extend(compare(&what, by_type(&got)[k], &case.corpus[*t].bits));
        }
        corpora += 1;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches over {corpora} corpora and {pairs} pairs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn arabic_has_no_tokens_and_scores_zero() {
    // The reference behaviour, kept on purpose: see the rouge module's documentation.
    let f = fixture();
    let arabic = "قال الرئيس";
    let (_, want) = f
        .tokenize
        .iter()
        .find(|(s, _)| s == arabic)
        .expect("in the fixture");
    assert!(want.is_empty());
    assert!(tokenize(arabic).is_empty());
    assert_eq!(sentence_rouge(arabic, arabic), RougeScores::default());
}

#[test]
fn corpus_is_the_mean_of_pairs() {
    let hyps = ["the cat sat on the mat", "x"];
    let refs = ["the cat sat on a mat", "a much longer reference sentence"];
    let a = sentence_rouge(hyps[0], refs[0]);
    let b = sentence_rouge(hyps[1], refs[1]);
    let mean = corpus_rouge(&hyps, &refs);
    assert_eq!(
        mean.rouge1.fmeasure,
        (a.rouge1.fmeasure + b.rouge1.fmeasure) / 2.0
    );
    assert_eq!(
        mean.rouge_l.recall,
        (a.rouge_l.recall + b.rouge_l.recall) / 2.0
    );
    assert_eq!(corpus_rouge::<&str, &str>(&[], &[]), RougeScores::default());
}

#[test]
#[should_panic(expected = "one reference per hypothesis")]
fn mismatched_lengths_panic() {
    corpus_rouge(&["a", "b"], &["a"]);
}
