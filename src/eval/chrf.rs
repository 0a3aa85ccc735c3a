//! chrF (Popović 2015) exactly as sacrebleu 2.6 computes it by default.
//!
//! `sacrebleu.corpus_chrf(hyps, [refs])` and `sacrebleu.sentence_chrf(hyp, [ref])` with no
//! options: character n-grams of orders 1 to 6, no word n-grams (so chrF, not chrF++), beta 2,
//! whitespace removed before the n-grams are taken, no lowercasing. Corpus scores come from
//! n-gram counts summed over all sentences, not from an average of sentence scores.
//!
//! The averaging is sacrebleu's default "effective order": only the orders for which both the
//! hypothesis and the reference have at least one n-gram are averaged, which is why a
//! one-character hypothesis against a one-character reference scores 100. Its `eps_smoothing`
//! option (chrF++.py, Moses and NLTK style) is not the default and is not implemented here.
//!
//! Scores match sacrebleu's to the last bit: the counts are integers, and the float operations
//! below are done in the same order as in sacrebleu's `CHRF._compute_f_score`.

use std::collections::HashMap;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

/// The largest character n-gram order (sacrebleu's `CHRF.CHAR_ORDER`).
pub const CHAR_ORDER: usize = 6;

/// Recall weighs `BETA` times as much as precision (sacrebleu's `CHRF.BETA`).
pub const BETA: u32 = 2;

/// The n-gram counts of one order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Hypothesis n-grams; sacrebleu counts none for a sentence whose reference has no n-gram
    /// of this order, which changes corpus-level precision when a reference is short or empty.
    pub hyp: u64,
    /// Reference n-grams.
    pub reference: u64,
    /// Hypothesis n-grams found in the reference, each reference n-gram used at most once.
    pub matched: u64,
}

/// chrF's sufficient statistics: add up the statistics of the sentences of a corpus, then
/// [`ChrfStats::score`] the sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChrfStats {
    /// Index `n - 1` holds the counts of n-grams of order `n`.
    pub orders: [OrderCounts; CHAR_ORDER],
}

impl ChrfStats {
    /// The statistics of one hypothesis against its reference.
    pub fn sentence(hyp: &str, reference: &str) -> Self {
        let hyp = without_whitespace(hyp);
        let reference = without_whitespace(reference);
        let mut stats = Self::default();
        // Reference n-gram → how many of its occurrences are still unmatched.
        let mut unmatched: HashMap<&[char], u64> = HashMap::new();
        for (i, counts) in stats.orders.iter_mut().enumerate() {
            let n = i + 1;
            if reference.len() < n {
                // Nothing longer can match either, and the counts stay at zero like sacrebleu's.
                break;
            }
            unmatched.clear();
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
            *counts = OrderCounts {
                hyp: ngram_count(hyp.len(), n),
                reference: ngram_count(reference.len(), n),
                matched,
            };
        }
        stats
    }

    /// The summed statistics of a corpus, sentence `i` of `hyps` against sentence `i` of `refs`.
    ///
    /// # Panics
    /// If `hyps` and `refs` differ in length (sacrebleu silently drops the extra sentences).
    pub fn corpus(hyps: &[&str], refs: &[&str]) -> Self {
        assert_eq!(
            hyps.len(),
            refs.len(),
            "chrF needs one reference per hypothesis"
        );
        hyps.iter()
            .zip(refs)
            .map(|(h, r)| Self::sentence(h, r))
            .sum()
    }

    /// The counts in sacrebleu's layout: `[hyp, ref, match]` for each order from 1 to 6.
    pub fn to_sacrebleu(&self) -> [u64; 3 * CHAR_ORDER] {
        let mut flat = [0; 3 * CHAR_ORDER];
        for (chunk, c) in flat.chunks_exact_mut(3).zip(&self.orders) {
            chunk.copy_from_slice(&[c.hyp, c.reference, c.matched]);
        }
        flat
    }

    /// The chrF score, 0 to 100, of these statistics.
    pub fn score(&self) -> f64 {
        // Every step mirrors sacrebleu's arithmetic so that the result is bit-identical to it;
        // u64 → f64 is exact for any count a real corpus can reach (below 2^53).
        let factor = f64::from(BETA * BETA);
        let (mut avg_prec, mut avg_rec) = (0.0, 0.0);
        let mut effective_order = 0u32;
        for c in &self.orders {
            if c.hyp > 0 && c.reference > 0 {
                avg_prec += c.matched as f64 / c.hyp as f64;
                avg_rec += c.matched as f64 / c.reference as f64;
                effective_order += 1;
            }
        }
        if effective_order == 0 {
            return 0.0;
        }
        avg_prec /= f64::from(effective_order);
        avg_rec /= f64::from(effective_order);
        if avg_prec + avg_rec == 0.0 {
            return 0.0;
        }
        let mut score = (1.0 + factor) * avg_prec * avg_rec;
        score /= factor * avg_prec + avg_rec;
        100.0 * score
    }
}

impl AddAssign for ChrfStats {
    fn add_assign(&mut self, other: Self) {
        for (a, b) in self.orders.iter_mut().zip(other.orders) {
            a.hyp += b.hyp;
            a.reference += b.reference;
            a.matched += b.matched;
        }
    }
}

impl Add for ChrfStats {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

impl Sum for ChrfStats {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

/// sacrebleu's corpus-level chrF (0 to 100) of `hyps` against one reference stream `refs`:
/// `sacrebleu.corpus_chrf(hyps, [refs]).score`. An empty corpus scores 0 (sacrebleu raises).
///
/// # Panics
/// If `hyps` and `refs` differ in length.
pub fn corpus_chrf(hyps: &[&str], refs: &[&str]) -> f64 {
    ChrfStats::corpus(hyps, refs).score()
}

/// sacrebleu's sentence-level chrF (0 to 100): `sacrebleu.sentence_chrf(hyp, [reference]).score`.
pub fn sentence_chrf(hyp: &str, reference: &str) -> f64 {
    ChrfStats::sentence(hyp, reference).score()
}

/// Whether Python's `str.split()` splits at `c` (`str.isspace`): Unicode White_Space, as Rust's
/// [`char::is_whitespace`], plus the information separators U+001C to U+001F, which Python
/// counts as whitespace for their bidirectional class.
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// sacrebleu's `''.join(line.split())`, as Unicode scalar values (Python's str indexing).
fn without_whitespace(s: &str) -> Vec<char> {
    s.chars().filter(|&c| !is_python_whitespace(c)).collect()
}

fn ngram_count(len: usize, n: usize) -> u64 {
    (len + 1).saturating_sub(n) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_matches_and_short_reference() {
        // "aaaaa" against "aa": 2 of 5 unigrams match, 1 of 4 bigrams; orders 3..6 are absent
        // from the reference, so the hypothesis counts for them are dropped too.
        let s = ChrfStats::sentence("aa aaa", "a\ta");
        assert_eq!(
            s.to_sacrebleu(),
            [5, 2, 2, 4, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let (p, r) = ((2.0 / 5.0 + 1.0 / 4.0) / 2.0, 1.0);
        let want = 100.0 * (5.0 * p * r / (4.0 * p + r));
        assert_eq!(s.score(), want);
    }

    #[test]
    fn sums_are_per_order() {
        let a = ChrfStats::sentence("abc", "abd");
        let b = ChrfStats::sentence("xy", "xy");
        let sum = a + b;
        assert_eq!(sum.orders[0].hyp, 5);
        assert_eq!(sum.orders[0].matched, 4);
        assert_eq!(sum.orders[2].reference, 1);
        assert_eq!([a, b].into_iter().sum::<ChrfStats>(), sum);
    }
}
