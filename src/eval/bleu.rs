//! BLEU (Papineni et al. 2002) exactly as sacrebleu 2.6 computes it by default.
//!
//! [`corpus_bleu`] is `sacrebleu.corpus_bleu(hyps, [refs])` and [`sentence_bleu`] is
//! `sacrebleu.sentence_bleu(hyp, [ref])`, both with no options: one reference per hypothesis,
//! the `13a` tokenizer (mteval-v13a, [`tokenize_13a`]), word n-grams of orders 1 to 4,
//! exponential smoothing ('exp', the NIST/mteval method 3 of Chen and Cherry 2014), no
//! lowercasing. The corpus score sums the sentence statistics and applies one brevity penalty to
//! the summed lengths; it is not an average of sentence scores. `corpus_bleu` uses
//! `effective_order=False`, so a corpus without any 4-gram scores 0; `sentence_bleu` uses
//! sacrebleu's sentence default `use_effective_order=True`, which averages only the orders the
//! hypothesis has n-grams of.
//!
//! Like sacrebleu's `BLEU._preprocess_segment`, each line loses its trailing whitespace (Python's
//! `str.rstrip`) before it is tokenized. The counts are integers and the float operations below
//! are those of sacrebleu's `BLEU.compute_bleu`, in its order, including its `my_log` floor of
//! `log(0)` at -9999999999. `exp` and `ln` are the C library's, which Python's `math` also calls,
//! so on the same libm (glibc here) the scores are bit-identical to sacrebleu's; a libm that
//! rounds `exp`/`log` differently can move the last bit.

use std::collections::HashMap;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::Serialize;

use super::chrf::is_python_whitespace;

/// The largest word n-gram order (sacrebleu's `MAX_NGRAM_ORDER`).
pub const MAX_NGRAM_ORDER: usize = 4;

/// sacrebleu's `my_log(0.0)`: a precision of 0 contributes this instead of minus infinity.
const LOG_ZERO: f64 = -9999999999.0;

/// BLEU's sufficient statistics: add up the statistics of the sentences of a corpus, then
/// [`BleuStats::score`] the sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BleuStats {
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens.
    pub ref_len: u64,
    /// Index `n - 1`: hypothesis n-grams of order `n` found in the reference, each reference
    /// n-gram used at most as often as it occurs there.
    pub correct: [u64; MAX_NGRAM_ORDER],
    /// Index `n - 1`: hypothesis n-grams of order `n`.
    pub total: [u64; MAX_NGRAM_ORDER],
}

impl BleuStats {
    /// The statistics of one hypothesis against its reference, both untokenized.
    pub fn sentence(hyp: &str, reference: &str) -> Self {
        let hyp = preprocess(hyp);
        let reference = preprocess(reference);
        Self::tokenized(&tokens(&hyp), &tokens(&reference))
    }

    /// The statistics of already tokenized text (sacrebleu's `_compute_segment_statistics`).
    pub fn tokenized(hyp: &[&str], reference: &[&str]) -> Self {
        Self::tokenized_multi(hyp, &[reference])
    }

    /// The statistics of one hypothesis against several references, as sacrebleu computes
    /// them: each n-gram may match as often as it occurs in the reference that has it most
    /// often, and the reference length is the one closest to the hypothesis' (the shorter of
    /// two as close).
    pub fn tokenized_multi(hyp: &[&str], references: &[&[&str]]) -> Self {
        let mut stats = Self {
            sys_len: hyp.len() as u64,
            ref_len: closest_ref_len(hyp.len(), references.iter().map(|r| r.len())),
            ..Self::default()
        };
        // Reference n-gram → how many of its occurrences are still unmatched; taking one per
        // matched hypothesis n-gram is sacrebleu's min(hyp count, ref count) per distinct n-gram.
        let mut unmatched: HashMap<&[&str], u64> = HashMap::new();
        let mut counts: HashMap<&[&str], u64> = HashMap::new();
        for i in 0..MAX_NGRAM_ORDER {
            let n = i + 1;
            if hyp.len() < n {
                break;
            }
            unmatched.clear();
            for reference in references {
                counts.clear();
                for gram in reference.windows(n) {
                    *counts.entry(gram).or_insert(0) += 1;
                }
                for (&gram, &count) in &counts {
                    let max = unmatched.entry(gram).or_insert(0);
                    *max = (*max).max(count);
                }
            }
            let mut correct = 0;
            for gram in hyp.windows(n) {
                if let Some(left @ 1..) = unmatched.get_mut(gram) {
                    *left -= 1;
                    correct += 1;
                }
            }
            stats.correct[i] = correct;
            stats.total[i] = (hyp.len() + 1 - n) as u64;
        }
        stats
    }

    /// The statistics of one untokenized hypothesis against several untokenized references.
    pub fn sentence_multi(hyp: &str, references: &[&str]) -> Self {
        let hyp = preprocess(hyp);
        let references: Vec<String> = references.iter().map(|r| preprocess(r)).collect();
        let ref_tokens: Vec<Vec<&str>> = references.iter().map(|r| tokens(r)).collect();
        let ref_slices: Vec<&[&str]> = ref_tokens.iter().map(Vec::as_slice).collect();
        Self::tokenized_multi(&tokens(&hyp), &ref_slices)
    }

    /// The summed statistics of a corpus against one or more reference streams (`refs[k][i]` is
    /// reference `k` of sentence `i`, sacrebleu's layout).
    ///
    /// # Panics
    /// If a stream's length differs from `hyps`'.
    pub fn corpus_multi(hyps: &[&str], refs: &[Vec<&str>]) -> Self {
        super::per_sentence(hyps, refs, Self::sentence_multi).sum()
    }

    /// The summed statistics of a corpus, sentence `i` of `hyps` against sentence `i` of `refs`.
    ///
    /// # Panics
    /// If `hyps` and `refs` differ in length (sacrebleu silently drops the extra sentences).
    pub fn corpus<H: AsRef<str>, R: AsRef<str>>(hyps: &[H], refs: &[R]) -> Self {
        assert_eq!(
            hyps.len(),
            refs.len(),
            "BLEU needs one reference per hypothesis"
        );
        hyps.iter()
            .zip(refs)
            .map(|(h, r)| Self::sentence(h.as_ref(), r.as_ref()))
            .sum()
    }

    /// The statistics in sacrebleu's layout: `[sys_len, ref_len, correct 1..4, total 1..4]`.
    pub fn to_sacrebleu(&self) -> [u64; 2 + 2 * MAX_NGRAM_ORDER] {
        let mut flat = [0; 2 + 2 * MAX_NGRAM_ORDER];
        flat[0] = self.sys_len;
        flat[1] = self.ref_len;
        flat[2..2 + MAX_NGRAM_ORDER].copy_from_slice(&self.correct);
        flat[2 + MAX_NGRAM_ORDER..].copy_from_slice(&self.total);
        flat
    }

    /// The BLEU score of these statistics with exponential smoothing: sacrebleu's
    /// `BLEU.compute_bleu(..., smooth_method='exp', effective_order=effective_order)`.
    /// `effective_order` is false for sacrebleu's corpus BLEU and true for its sentence BLEU.
    pub fn score(&self, effective_order: bool) -> BleuScore {
        // u64 → f64 is exact below 2^53, and Python divides ints with correct rounding, as f64
        // division of the exact values does.
        let (sys_len, ref_len) = (self.sys_len as f64, self.ref_len as f64);
        let mut bp = 1.0;
        if self.sys_len < self.ref_len {
            bp = if self.sys_len > 0 {
                (1.0 - ref_len / sys_len).exp()
            } else {
                0.0
            };
        }
        let mut precisions = [0.0; MAX_NGRAM_ORDER];
        let mut result = BleuScore {
            score: 0.0,
            counts: self.correct,
            totals: self.total,
            precisions,
            bp,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
        };
        // sacrebleu's early exit (its issue #141): no match of any order scores 0.
        if self.correct.iter().all(|&c| c == 0) {
            return result;
        }
        let mut smooth_mteval = 1.0;
        let mut eff_order = MAX_NGRAM_ORDER;
        for (i, (&correct, &total)) in self.correct.iter().zip(&self.total).enumerate() {
            if total == 0 {
                break;
            }
            if effective_order {
                eff_order = i + 1;
            }
            precisions[i] = if correct == 0 {
                smooth_mteval *= 2.0;
                100.0 / (smooth_mteval * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }
        // Python's built-in sum before 3.12: plain left-to-right addition from 0.
        let mut log_sum = 0.0;
        for &p in &precisions[..eff_order] {
            log_sum += if p == 0.0 { LOG_ZERO } else { p.ln() };
        }
        result.precisions = precisions;
        result.score = bp * (log_sum / eff_order as f64).exp();
        result
    }
}

impl AddAssign for BleuStats {
    fn add_assign(&mut self, other: Self) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for i in 0..MAX_NGRAM_ORDER {
            self.correct[i] += other.correct[i];
            self.total[i] += other.total[i];
        }
    }
}

impl Add for BleuStats {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

impl Sum for BleuStats {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

/// A BLEU score with its parts, as sacrebleu's `BLEUScore`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BleuScore {
    /// BLEU, 0 to 100.
    pub score: f64,
    /// Matched n-grams of orders 1 to 4.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams of orders 1 to 4.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// The (smoothed) n-gram precisions in percent; all 0 when nothing matched, and 0 for the
    /// orders after the first one the hypothesis has no n-gram of.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// The brevity penalty, 0 to 1.
    pub bp: f64,
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens.
    pub ref_len: u64,
}

impl BleuScore {
    /// `sys_len / ref_len`, or 0 without reference tokens (sacrebleu's `BLEUScore.ratio`).
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }
}

impl fmt::Display for BleuScore {
    /// sacrebleu's `BLEUScore.format()` without the signature, for example
    /// `BLEU = 32.42 63.5/38.8/25.6/17.1 (BP = 1.000 ratio = 1.013 hyp_len = 1291 ref_len = 1275)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BLEU = {:.2} {}", self.score, self.verbose())
    }
}

impl BleuScore {
    /// What sacrebleu prints after the score: precisions, brevity penalty, length ratio and
    /// lengths.
    pub fn verbose(&self) -> String {
        let p = &self.precisions;
        format!(
            "{:.1}/{:.1}/{:.1}/{:.1} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            p[0],
            p[1],
            p[2],
            p[3],
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// sacrebleu's corpus-level BLEU of `hyps` against one reference stream `refs`:
/// `sacrebleu.corpus_bleu(hyps, [refs])`. An empty corpus scores 0 (sacrebleu raises).
///
/// # Panics
/// If `hyps` and `refs` differ in length.
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(hyps: &[H], refs: &[R]) -> BleuScore {
    BleuStats::corpus(hyps, refs).score(false)
}

/// sacrebleu's corpus-level BLEU against one or more reference streams:
/// `sacrebleu.corpus_bleu(hyps, refs)`.
///
/// # Panics
/// If a stream's length differs from `hyps`'.
pub fn corpus_bleu_multi(hyps: &[&str], refs: &[Vec<&str>]) -> BleuScore {
    BleuStats::corpus_multi(hyps, refs).score(false)
}

/// sacrebleu's `BLEU._get_closest_ref_len`: the reference length closest to the hypothesis
/// length, the shorter of two as close; 0 without references.
fn closest_ref_len(hyp_len: usize, ref_lens: impl Iterator<Item = usize>) -> u64 {
    let mut closest: Option<(usize, usize)> = None;
    for len in ref_lens {
        let diff = hyp_len.abs_diff(len);
        closest = match closest {
            Some((d, l)) if d < diff || (d == diff && l <= len) => Some((d, l)),
            _ => Some((diff, len)),
        };
    }
    closest.map_or(0, |(_, len)| len as u64)
}

/// sacrebleu's sentence-level BLEU: `sacrebleu.sentence_bleu(hyp, [reference])`, which averages
/// only the n-gram orders the hypothesis has (effective order).
pub fn sentence_bleu(hyp: &str, reference: &str) -> BleuScore {
    BleuStats::sentence(hyp, reference).score(true)
}

/// sacrebleu's `Tokenizer13a()(line)`: the tokenization of mteval-v13a.pl, as a string of tokens
/// separated by single spaces.
///
/// It drops `<skipped>` and hyphen-newline line breaks, turns other newlines into spaces,
/// unescapes `&quot; &amp; &lt; &gt;`, puts spaces around ASCII punctuation and symbols except
/// `' , - .`, splits `.` and `,` off unless they sit between digits, and splits `-` off a digit
/// before it. Anything outside ASCII, Arabic punctuation included, stays attached to its word.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    tokenize_regexp(&format!(" {line} "))
}

/// sacrebleu's `TokenizerRegexp` (the second half of 13a): its four `re.sub` passes, then
/// whitespace collapsed as by `' '.join(line.split())`.
fn tokenize_regexp(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    // r'([\{-\~\[-\` -\&\(-\+\:-\@\/])' → r' \1 '
    let mut spaced = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        if matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/') {
            spaced.extend([' ', c, ' ']);
        } else {
            spaced.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let period_comma = |c: char| c == '.' || c == ',';
    // r'([^0-9])([\.,])' → r'\1 \2 '
    let s = substitute_pairs(
        &spaced,
        |c| !digit(c),
        period_comma,
        |a, b| [a, ' ', b, ' '],
    );
    // r'([\.,])([^0-9])' → r' \1 \2'
    let s = substitute_pairs(&s, period_comma, |c| !digit(c), |a, b| [' ', a, ' ', b]);
    // r'([0-9])(-)' → r'\1 \2 '
    let s = substitute_pairs(&s, digit, |c| c == '-', |a, b| [a, ' ', b, ' ']);

    let mut out = String::with_capacity(s.len());
    for token in s
        .split(|&c| is_python_whitespace(c))
        .filter(|t| !t.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(token);
    }
    out
}

/// Python's `re.sub` of a two-character pattern `(first)(second)`: matches do not overlap, and
/// after a match the search resumes behind its second character, so in `"a.."` only the first
/// period is split off by the `[^0-9][.,]` pass.
fn substitute_pairs(
    s: &[char],
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    replace: impl Fn(char, char) -> [char; 4],
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 4);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && first(s[i]) && second(s[i + 1]) {
            out.extend(replace(s[i], s[i + 1]));
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// sacrebleu's `BLEU._preprocess_segment` without lowercasing: `tokenize(sent.rstrip())`.
fn preprocess(line: &str) -> String {
    tokenize_13a(line.trim_end_matches(is_python_whitespace))
}

fn tokens(tokenized: &str) -> Vec<&str> {
    tokenized.split(' ').filter(|t| !t.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected tokenizations are sacrebleu 2.6.0's `Tokenizer13a()` outputs; the fixture
    // (tests/fixtures/metrics/bleu.json) checks many more.
    #[test]
    fn tokenizer_13a_tricky_strings() {
        let cases = [
            ("Hello, world!", "Hello , world !"),
            (
                "It costs $3.50, or 1,000.5 dinars.",
                "It costs $ 3.50 , or 1,000.5 dinars .",
            ),
            ("U.S. e.g.,x", "U . S . e . g . , x"),
            ("9-5 x-ray 2020-2021", "9 - 5 x-ray 2020 - 2021"),
            ("a..b", "a . . b"),
            (".5 5. ,a a,", ". 5 5 . , a a ,"),
            ("AT&amp;T &quot;hi&quot; &lt;b&gt;", "AT & T \" hi \" < b >"),
            ("foo-\nbar\nbaz<skipped>!", "foobar baz !"),
            ("don't", "don't"),
            ("قال: «مرحباً»، وذهب.", "قال : «مرحباً»، وذهب ."),
            ("1,2,3", "1,2,3"),
            ("a\u{1c}b\u{a0}c\u{200b}d", "a b c\u{200b}d"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(tokenize_13a(input), want, "{input:?}");
        }
    }

    #[test]
    fn clipped_counts() {
        // sacrebleu 2.6.0's `_extract_corpus_statistics` gives the same.
        let s = BleuStats::tokenized(&["the", "the", "the"], &["the", "cat", "the"]);
        assert_eq!(s.to_sacrebleu(), [3, 3, 2, 0, 0, 0, 3, 2, 1, 0]);
    }

    #[test]
    fn several_references_clip_at_the_largest_count_and_take_the_closest_length() {
        let s = BleuStats::tokenized_multi(
            &["the", "the", "the"],
            &[&["the", "cat"], &["the", "the", "a", "b"]],
        );
        // "the" may match twice and "the the" once (the second reference); lengths 2 and 4 are
        // both 1 away from 3, and the shorter counts.
        assert_eq!(s.to_sacrebleu(), [3, 2, 2, 1, 0, 0, 3, 2, 1, 0]);
        assert_eq!(closest_ref_len(5, [9, 4, 6].into_iter()), 4);
        assert_eq!(closest_ref_len(5, std::iter::empty()), 0);
    }

    #[test]
    fn sums_and_effective_order() {
        let a = BleuStats::sentence("a b c", "a b d");
        let b = BleuStats::sentence("x", "x y");
        let sum = a + b;
        assert_eq!(sum.sys_len, 4);
        assert_eq!(sum.ref_len, 5);
        assert_eq!(sum.correct, [3, 1, 0, 0]);
        assert_eq!(sum.total, [4, 2, 1, 0]);
        assert_eq!([a, b].into_iter().sum::<BleuStats>(), sum);
        // Without effective order the missing 4-grams zero the corpus score.
        assert_eq!(sum.score(false).score, 0.0);
        assert!(sum.score(true).score > 0.0);
    }
}
