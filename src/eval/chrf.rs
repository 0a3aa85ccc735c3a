//! chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacrebleu 2.6 computes them.
//!
//! `sacrebleu.corpus_chrf(hyps, [refs])` and `sacrebleu.sentence_chrf(hyp, [ref])` with no
//! options: character n-grams of orders 1 to 6, no word n-grams (so chrF, not chrF++), beta 2,
//! whitespace removed before the n-grams are taken, no lowercasing. Corpus scores come from
//! n-gram counts summed over all sentences, not from an average of sentence scores.
//!
//! [`ChrfStats::sentence_multi`] adds what sacrebleu's `CHRF(word_order=2)` (chrF++, NLLB's
//! published metric) and several reference streams do: word n-grams of orders 1 to
//! `word_order`, taken from the words of `str.split()` with one ASCII punctuation character
//! split off the end (else the start) of each word longer than one character; and with several
//! references, each sentence keeps the statistics of the reference that gives it the highest
//! sentence-level score (the first of equal ones).
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

/// The largest word n-gram order tarjama computes: 2 is chrF++ (sacrebleu's default word order
/// is 0, plain chrF).
pub const MAX_WORD_ORDER: usize = 2;

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
    /// Index `n - 1` holds the counts of character n-grams of order `n`.
    pub orders: [OrderCounts; CHAR_ORDER],
    /// Index `n - 1` holds the counts of word n-grams of order `n` (all zero for plain chrF).
    pub words: [OrderCounts; MAX_WORD_ORDER],
}

impl ChrfStats {
    /// The statistics of one hypothesis against its reference (plain chrF).
    pub fn sentence(hyp: &str, reference: &str) -> Self {
        Self::sentence_multi(hyp, &[reference], 0)
    }

    /// The statistics of one hypothesis against the reference among `references` that scores
    /// it highest, with word n-grams of orders 1 to `word_order` (0: chrF, 2: chrF++), as
    /// sacrebleu's `CHRF._compute_segment_statistics`.
    ///
    /// # Panics
    /// If `word_order` is above [`MAX_WORD_ORDER`].
    pub fn sentence_multi(hyp: &str, references: &[&str], word_order: usize) -> Self {
        assert!(word_order <= MAX_WORD_ORDER, "chrF word order {word_order}");
        let hyp_chars = without_whitespace(hyp);
        let hyp_words = words(hyp);
        let mut best = Self::default();
        let mut best_score = -1.0;
        for reference in references {
            let mut stats = Self::default();
            order_counts(
                &hyp_chars,
                &without_whitespace(reference),
                &mut stats.orders,
            );
            order_counts(
                &hyp_words,
                &words(reference),
                &mut stats.words[..word_order],
            );
            let score = stats.score();
            if score > best_score {
                best_score = score;
                best = stats;
            }
        }
        best
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

    /// The summed statistics of a corpus against one or more reference streams (`refs[k][i]`
    /// is reference `k` of sentence `i`, sacrebleu's layout), with word n-grams up to
    /// `word_order`.
    ///
    /// # Panics
    /// If a stream's length differs from `hyps`', or `word_order` is above [`MAX_WORD_ORDER`].
    pub fn corpus_multi(hyps: &[&str], refs: &[Vec<&str>], word_order: usize) -> Self {
        super::per_sentence(hyps, refs, move |h, r| {
            Self::sentence_multi(h, r, word_order)
        })
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

    /// sacrebleu's layout with word orders: the character orders' triples, then those of word
    /// orders 1 to `word_order`.
    pub fn to_sacrebleu_with_words(&self, word_order: usize) -> Vec<u64> {
        let mut flat = self.to_sacrebleu().to_vec();
        for c in &self.words[..word_order] {
            flat.extend([c.hyp, c.reference, c.matched]);
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
        // Word orders that were not computed are all zero and, like orders the reference lacks,
        // left out of the averages.
        for c in self.orders.iter().chain(&self.words) {
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
        let ours = self.orders.iter_mut().chain(&mut self.words);
        for (a, b) in ours.zip(other.orders.into_iter().chain(other.words)) {
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

/// sacrebleu's chrF++ score (0 to 100) of `hyps` against one or more reference streams, with
/// word n-grams up to `word_order` (0 is [`corpus_chrf`]).
///
/// # Panics
/// As [`ChrfStats::corpus_multi`].
pub fn corpus_chrf_multi(hyps: &[&str], refs: &[Vec<&str>], word_order: usize) -> f64 {
    ChrfStats::corpus_multi(hyps, refs, word_order).score()
}

/// Fills `counts[n - 1]` with the n-gram counts of `hyp` against `reference` for every order
/// `n` of `counts`, sacrebleu's `_get_match_statistics`.
fn order_counts<T: Eq + std::hash::Hash>(hyp: &[T], reference: &[T], counts: &mut [OrderCounts]) {
    // Reference n-gram → how many of its occurrences are still unmatched.
    let mut unmatched: HashMap<&[T], u64> = HashMap::new();
    for (i, counts) in counts.iter_mut().enumerate() {
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
}

/// sacrebleu's `CHRF._remove_punctuation`: the words of `str.split()`, a word longer than one
/// character losing one ASCII punctuation character at its end, or else at its start, to a
/// word of its own (`(hi)` becomes `(hi` and `)`, as in sacrebleu).
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for w in s.split(is_python_whitespace).filter(|w| !w.is_empty()) {
        let first = w.chars().next().unwrap_or_default();
        let last = w.chars().next_back().unwrap_or_default();
        if w.chars().nth(1).is_none() {
            out.push(w);
        } else if last.is_ascii_punctuation() {
            out.extend([&w[..w.len() - 1], &w[w.len() - 1..]]);
        } else if first.is_ascii_punctuation() {
            out.extend([&w[..1], &w[1..]]);
        } else {
            out.push(w);
        }
    }
    out
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
        assert_eq!(s.words, [OrderCounts::default(); MAX_WORD_ORDER]);
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

    #[test]
    fn words_lose_one_punctuation_mark_as_sacrebleu_splits_them() {
        assert_eq!(
            words("(hi) \"ok\", a . -x 'y'z ..."),
            ["(hi", ")", "\"ok\"", ",", "a", ".", "-", "x", "'", "y'z", "..", "."]
        );
        assert_eq!(words("قال: «نعم»"), ["قال", ":", "«نعم»"]);
    }

    #[test]
    fn the_best_reference_of_each_sentence_counts() {
        let one = ChrfStats::sentence("the cat", "a dog");
        let best = ChrfStats::sentence_multi("the cat", &["a dog", "the cat"], 0);
        assert!(best.score() > one.score());
        assert_eq!(best, ChrfStats::sentence("the cat", "the cat"));
        let pp = ChrfStats::sentence_multi("the cat.", &["the cat."], 2);
        assert_eq!(pp.words[0].hyp, 3);
        assert_eq!(pp.words[1].matched, 2);
        assert_eq!(pp.to_sacrebleu_with_words(2).len(), 24);
    }
}
