//! ROUGE-1, ROUGE-2 and ROUGE-L exactly as Google's `rouge-score` 0.1.2 computes them with
//! `rouge_scorer.RougeScorer(['rouge1', 'rouge2', 'rougeL'], use_stemmer=False)`.
//!
//! [`sentence_rouge`]`(hyp, reference)` is `scorer.score(reference, hyp)` (rouge-score takes the
//! target first). Scores are fractions from 0 to 1, as rouge-score reports them, not percent.
//! - Tokens ([`tokenize`], its `DefaultTokenizer`): the text lowercased (Python's `str.lower`),
//!   every run of characters other than ASCII `a-z0-9` replaced by a space, split. So
//!   punctuation splits words (`don't` → `don`, `t`), and any other script is dropped: **Arabic
//!   text has no tokens and scores 0 against anything**. That is the reference's behaviour and
//!   is kept; compare English with English.
//! - ROUGE-N: clipped n-gram overlap; precision = overlap / max(hypothesis n-grams, 1), recall =
//!   overlap / max(reference n-grams, 1).
//! - ROUGE-L: the sentence-level longest common subsequence of the two token lists (not the
//!   summary-level `rougeLsum`); 0 when either side has no tokens.
//! - F-measure: `2 * p * r / (p + r)`, or 0 when `p + r` is 0.
//!
//! The counts are integers and the float operations are rouge-score's, in its order, so the
//! per-pair scores are bit-identical to it.
//!
//! **Corpus scores** ([`corpus_rouge`]) are the mean over the pairs of each precision, recall
//! and F-measure, added left to right and divided by the number of pairs. rouge-score itself only
//! offers `scoring.BootstrapAggregator`, whose "mid" is a percentile of means of random
//! resamples: not reproducible without its random state, and an estimate of this mean. The
//! fixture script computes the same left-to-right mean from rouge-score's per-pair scores.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

/// One ROUGE score: precision, recall and F-measure, each 0 to 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RougeScore {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

/// The counts behind one pair's [`RougeScore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RougeCounts {
    /// Clipped n-gram overlap (ROUGE-N) or LCS length (ROUGE-L).
    pub matched: u64,
    /// Hypothesis n-grams (tokens for ROUGE-L).
    pub hyp: u64,
    /// Reference n-grams (tokens for ROUGE-L).
    pub reference: u64,
}

/// ROUGE-1, ROUGE-2 and ROUGE-L together; serialized with rouge-score's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RougeScores {
    pub rouge1: RougeScore,
    pub rouge2: RougeScore,
    #[serde(rename = "rougeL")]
    pub rouge_l: RougeScore,
}

impl fmt::Display for RougeScores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("ROUGE-1", &self.rouge1),
            ("ROUGE-2", &self.rouge2),
            ("ROUGE-L", &self.rouge_l),
        ];
        for (i, (name, s)) in rows.into_iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{name} = {:.4} (P = {:.4} R = {:.4})",
                s.fmeasure, s.precision, s.recall
            )?;
        }
        Ok(())
    }
}

impl RougeCounts {
    /// ROUGE-N's scores of these counts (rouge-score's `_score_ngrams`).
    pub fn ngram_score(&self) -> RougeScore {
        let matched = self.matched as f64;
        let precision = matched / self.hyp.max(1) as f64;
        let recall = matched / self.reference.max(1) as f64;
        RougeScore::new(precision, recall)
    }

    /// ROUGE-L's scores of these counts (rouge-score's `_score_lcs`).
    pub fn lcs_score(&self) -> RougeScore {
        if self.hyp == 0 || self.reference == 0 {
            return RougeScore::default();
        }
        let matched = self.matched as f64;
        RougeScore::new(matched / self.hyp as f64, matched / self.reference as f64)
    }
}

impl RougeScore {
    fn new(precision: f64, recall: f64) -> Self {
        Self {
            precision,
            recall,
            fmeasure: fmeasure(precision, recall),
        }
    }
}

/// rouge-score's `scoring.fmeasure`.
fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// rouge-score's default tokenizer without stemming (`tokenize.tokenize(text, None)`).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    // Lowercasing one character at a time gives Python's `str.lower` for every character that
    // can end up in a token: only A-Z, U+0130 (İ → i + U+0307) and U+212A (Kelvin sign → k)
    // lowercase into a-z0-9, and none of those depends on its neighbours.
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            current.push(c);
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// The clipped n-gram overlap of two token lists (rouge-score's `_create_ngrams` and
/// `_score_ngrams`).
pub fn ngram_counts<S: AsRef<str>>(hyp: &[S], reference: &[S], n: usize) -> RougeCounts {
    assert!(n > 0, "ROUGE-N needs n >= 1");
    let hyp: Vec<&str> = hyp.iter().map(AsRef::as_ref).collect();
    let reference: Vec<&str> = reference.iter().map(AsRef::as_ref).collect();
    let mut unmatched: HashMap<&[&str], u64> = HashMap::new();
    for gram in reference.windows(n) {
        *unmatched.entry(gram).or_insert(0) += 1;
    }
    let mut matched = 0;
    for gram in hyp.windows(n) {
        if let Some(left @ 1..) = unmatched.get_mut(gram) {
            *left -= 1;
            matched += 1;
        }
    }
    RougeCounts {
        matched,
        hyp: (hyp.len() + 1).saturating_sub(n) as u64,
        reference: (reference.len() + 1).saturating_sub(n) as u64,
    }
}

/// The longest common subsequence of two token lists, with their lengths (rouge-score's
/// `_lcs_table`).
pub fn lcs_counts<S: AsRef<str>>(hyp: &[S], reference: &[S]) -> RougeCounts {
    // One row of the dynamic-programming table at a time; only the final length is needed.
    let mut prev = vec![0u64; hyp.len() + 1];
    let mut row = vec![0u64; hyp.len() + 1];
    for r in reference {
        for (j, h) in hyp.iter().enumerate() {
            row[j + 1] = if r.as_ref() == h.as_ref() {
                prev[j] + 1
            } else {
                prev[j + 1].max(row[j])
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    RougeCounts {
        matched: prev[hyp.len()],
        hyp: hyp.len() as u64,
        reference: reference.len() as u64,
    }
}

/// The counts of ROUGE-1, ROUGE-2 and ROUGE-L for one pair, in that order.
pub fn sentence_counts(hyp: &str, reference: &str) -> [RougeCounts; 3] {
    let hyp = tokenize(hyp);
    let reference = tokenize(reference);
    [
        ngram_counts(&hyp, &reference, 1),
        ngram_counts(&hyp, &reference, 2),
        lcs_counts(&hyp, &reference),
    ]
}

/// rouge-score's scores of one hypothesis against its reference:
/// `RougeScorer(['rouge1', 'rouge2', 'rougeL']).score(reference, hyp)`.
pub fn sentence_rouge(hyp: &str, reference: &str) -> RougeScores {
    let [one, two, lcs] = sentence_counts(hyp, reference);
    RougeScores {
        rouge1: one.ngram_score(),
        rouge2: two.ngram_score(),
        rouge_l: lcs.lcs_score(),
    }
}

/// The mean of [`sentence_rouge`] over the pairs, each of precision, recall and F-measure
/// averaged separately (see the module documentation). An empty corpus scores 0.
///
/// # Panics
/// If `hyps` and `refs` differ in length.
pub fn corpus_rouge<H: AsRef<str>, R: AsRef<str>>(hyps: &[H], refs: &[R]) -> RougeScores {
    assert_eq!(
        hyps.len(),
        refs.len(),
        "ROUGE needs one reference per hypothesis"
    );
    let mut sum = RougeScores::default();
    for (h, r) in hyps.iter().zip(refs) {
        let s = sentence_rouge(h.as_ref(), r.as_ref());
        for (total, one) in [
            (&mut sum.rouge1, s.rouge1),
            (&mut sum.rouge2, s.rouge2),
            (&mut sum.rouge_l, s.rouge_l),
        ] {
            total.precision += one.precision;
            total.recall += one.recall;
            total.fmeasure += one.fmeasure;
        }
    }
    if hyps.is_empty() {
        return sum;
    }
    let n = hyps.len() as f64;
    for total in [&mut sum.rouge1, &mut sum.rouge2, &mut sum.rouge_l] {
        total.precision /= n;
        total.recall /= n;
        total.fmeasure /= n;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected tokens are rouge-score 0.1.2's `tokenize.tokenize(text, None)`.
    #[test]
    fn tokenizer() {
        let cases: [(&str, &[&str]); 6] = [
            (
                "Don't stop—it's 3.5km!",
                &["don", "t", "stop", "it", "s", "3", "5km"],
            ),
            ("İstanbul \u{212a}elvin", &["i", "stanbul", "kelvin"]),
            ("مرحبا بالعالم ٢٠٢٤", &[]),
            ("snake_case CamelCase", &["snake", "case", "camelcase"]),
            ("café naïve", &["caf", "na", "ve"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(tokenize(text), want, "{text:?}");
        }
    }

    #[test]
    fn lcs_is_a_subsequence_not_a_substring() {
        let c = lcs_counts(&["a", "x", "b", "y", "c"], &["a", "b", "c", "d"]);
        assert_eq!((c.matched, c.hyp, c.reference), (3, 5, 4));
    }

    #[test]
    fn ngram_overlap_is_clipped() {
        let c = ngram_counts(&["the", "the", "the"], &["the", "cat"], 1);
        assert_eq!((c.matched, c.hyp, c.reference), (1, 3, 2));
        let c = ngram_counts(&["a"], &["a"], 2);
        assert_eq!((c.matched, c.hyp, c.reference), (0, 0, 0));
    }
}
