//! Translation and summary quality metrics, computed exactly as the reference Python tools do so
//! that scores can be compared with published ones.
//!
//! - [`chrf`]: sacrebleu's default chrF (character n-gram F-score, chrF2).
//! - [`bleu`]: sacrebleu's default BLEU (13a tokens, 4-grams, exponential smoothing).
//! - [`rouge`]: Google rouge-score's ROUGE-1, ROUGE-2 and ROUGE-L, without stemming.
//!
//! [`score_translation`] and [`score_summaries`] score whole files of lines, one reference line
//! per output line.

pub mod bleu;
pub mod chrf;
pub mod rouge;

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};

pub use bleu::{corpus_bleu, sentence_bleu, tokenize_13a, BleuScore, BleuStats};
pub use chrf::{corpus_chrf, sentence_chrf, ChrfStats};
pub use rouge::{corpus_rouge, sentence_rouge, RougeScore, RougeScores};

/// Corpus-level translation scores, as `sacrebleu hyps.txt -i refs.txt -m bleu chrf` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TranslationScores {
    /// How many hypothesis/reference pairs were scored.
    pub sentences: usize,
    /// sacrebleu's `corpus_bleu`.
    pub bleu: BleuScore,
    /// sacrebleu's `corpus_chrf` score, 0 to 100.
    pub chrf: f64,
}

impl fmt::Display for TranslationScores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.bleu)?;
        write!(f, "chrF2 = {:.2}", self.chrf)
    }
}

/// BLEU and chrF of `hyps` against `refs` (line `i` against line `i`), each over the whole corpus.
///
/// # Errors
/// [`Error::Input`] when the lists differ in length or are empty.
pub fn score_translation<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    refs: &[R],
) -> Result<TranslationScores> {
    check_pairs(hyps.len(), refs.len())?;
    let hyp_strs: Vec<&str> = hyps.iter().map(AsRef::as_ref).collect();
    let ref_strs: Vec<&str> = refs.iter().map(AsRef::as_ref).collect();
    Ok(TranslationScores {
        sentences: hyps.len(),
        bleu: corpus_bleu(&hyp_strs, &ref_strs),
        chrf: corpus_chrf(&hyp_strs, &ref_strs),
    })
}

/// ROUGE-1, ROUGE-2 and ROUGE-L of summaries `hyps` against `refs` (item `i` against item `i`),
/// averaged over the pairs (see [`rouge`] for why the mean). Text without ASCII letters or digits,
/// Arabic included, has no tokens for rouge-score and scores 0.
///
/// # Errors
/// [`Error::Input`] when the lists differ in length or are empty.
pub fn score_summaries<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    refs: &[R],
) -> Result<RougeScores> {
    check_pairs(hyps.len(), refs.len())?;
    Ok(corpus_rouge(hyps, refs))
}

fn check_pairs(hyps: usize, refs: usize) -> Result<()> {
    if hyps != refs {
        return Err(Error::input(format!(
            "{hyps} hypotheses but {refs} references: scoring pairs line i of the output with \
             line i of the reference, so give both the same number of lines (blank lines count; \
             check for a missing or extra trailing line)"
        )));
    }
    if hyps == 0 {
        return Err(Error::input(
            "no lines to score: the hypotheses and references are empty; give at least one pair",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_lengths_are_an_input_error() {
        let hyps = vec!["a".to_string(), "b".to_string()];
        let refs = vec!["a".to_string()];
        let err = score_translation(&hyps, &refs).unwrap_err();
        assert!(matches!(err, Error::Input(_)));
        let msg = err.to_string();
        assert!(msg.contains("2 hypotheses but 1 references"), "{msg}");
        let err = score_summaries(&refs, &hyps).unwrap_err();
        assert!(err.to_string().contains("1 hypotheses but 2 references"));
        assert!(score_translation::<String, String>(&[], &[]).is_err());
    }

    #[test]
    fn convenience_api_agrees_with_the_metrics() {
        let hyps = ["The cat sat on the mat.", "It rained all day"];
        let refs = ["The cat sat on a mat.", "It was raining all day."];
        let t = score_translation(&hyps, &refs).unwrap();
        assert_eq!(t.sentences, 2);
        assert_eq!(t.bleu, corpus_bleu(&hyps, &refs));
        assert_eq!(t.chrf.to_bits(), corpus_chrf(&hyps, &refs).to_bits());
        assert!(t.to_string().starts_with("BLEU = "), "{t}");
        let json = serde_json::to_value(t).unwrap();
        assert!(json["bleu"]["precisions"].is_array());
        let r = score_summaries(&hyps, &refs).unwrap();
        assert_eq!(r, corpus_rouge(&hyps, &refs));
        assert!(serde_json::to_value(r).unwrap()["rougeL"]["fmeasure"].is_number());
    }
}
