//! Translation and summary quality metrics, computed exactly as the reference Python tools do so
//! that scores can be compared with published ones.
//!
//! - [`chrf`]: sacrebleu's default chrF (character n-gram F-score, chrF2), and chrF++ (word
//!   n-grams too).
//! - [`bleu`]: sacrebleu's default BLEU (13a tokens, 4-grams, exponential smoothing).
//! - [`rouge`]: Google rouge-score's ROUGE-1, ROUGE-2 and ROUGE-L, without stemming.
//!
//! [`score_translation`] and [`score_summaries`] score whole files of lines, one reference line
//! per output line; [`score_translation_multi`] takes several reference files and chrF++, and
//! its scores carry sacrebleu's signatures, so that a score can be cited and reproduced.

pub mod bleu;
pub mod chrf;
pub mod rouge;

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};

pub use bleu::{corpus_bleu, corpus_bleu_multi, sentence_bleu, tokenize_13a, BleuScore, BleuStats};
pub use chrf::{corpus_chrf, corpus_chrf_multi, sentence_chrf, ChrfStats};
pub use rouge::{corpus_rouge, sentence_rouge, RougeScore, RougeScores};

/// The sacrebleu release whose definitions the metrics follow, whose outputs the fixtures hold
/// (`scripts/make-metric-fixtures.py`) and whose version the signatures name.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// sacrebleu's signature of its default corpus BLEU against `nrefs` references.
pub fn bleu_signature(nrefs: usize) -> String {
    format!("nrefs:{nrefs}|case:mixed|eff:no|tok:13a|smooth:exp|version:{SACREBLEU_VERSION}")
}

/// sacrebleu's signature of its chrF with word order `word_order` (2: chrF++) against `nrefs`
/// references.
pub fn chrf_signature(nrefs: usize, word_order: usize) -> String {
    format!(
        "nrefs:{nrefs}|case:mixed|eff:yes|nc:{}|nw:{word_order}|space:no|version:{SACREBLEU_VERSION}",
        chrf::CHAR_ORDER
    )
}

/// sacrebleu's name of the chrF variant: `chrF2`, `chrF2+`, `chrF2++`.
pub fn chrf_name(word_order: usize) -> String {
    format!("chrF{}{}", chrf::BETA, "+".repeat(word_order))
}

/// Corpus-level translation scores, as `sacrebleu refs... -i hyps.txt -m bleu chrf` reports
/// them, with their signatures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TranslationScores {
    /// How many hypothesis/reference pairs were scored.
    pub sentences: usize,
    /// How many references each hypothesis has.
    pub references: usize,
    /// sacrebleu's `corpus_bleu`.
    pub bleu: BleuScore,
    /// sacrebleu's signature of the BLEU settings.
    pub bleu_signature: String,
    /// sacrebleu's `corpus_chrf` score, 0 to 100.
    pub chrf: f64,
    /// `chrF2`, or `chrF2++` with word n-grams.
    pub chrf_name: String,
    /// sacrebleu's signature of the chrF settings.
    pub chrf_signature: String,
}

impl fmt::Display for TranslationScores {
    /// sacrebleu's `--format text` (with `--width 2`): `NAME|SIGNATURE = SCORE ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "BLEU|{} = {:.2} {}",
            self.bleu_signature,
            self.bleu.score,
            self.bleu.verbose()
        )?;
        write!(
            f,
            "{}|{} = {:.2}",
            self.chrf_name, self.chrf_signature, self.chrf
        )
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
    let stream: Vec<&str> = refs.iter().map(AsRef::as_ref).collect();
    score_translation_multi(hyps, &[stream], 0)
}

/// BLEU and chrF (chrF++ with `chrf_word_order` 2) of `hyps` against one or more reference
/// streams (`refs[k][i]` is reference `k` of line `i`), as sacrebleu computes them with several
/// references.
///
/// # Errors
/// [`Error::Input`] when a stream's length differs from `hyps`', or there is nothing to score.
/// [`Error::Usage`] without any stream, or with a word order above [`chrf::MAX_WORD_ORDER`].
pub fn score_translation_multi<H: AsRef<str>, R: AsRef<str>>(
    hyps: &[H],
    refs: &[Vec<R>],
    chrf_word_order: usize,
) -> Result<TranslationScores> {
    if refs.is_empty() {
        return Err(Error::usage("give at least one reference file (--ref)"));
    }
    if chrf_word_order > chrf::MAX_WORD_ORDER {
        return Err(Error::usage(format!(
            "chrF word order {chrf_word_order} is not supported: use 0 (chrF) or 2 (chrF++)"
        )));
    }
    for stream in refs {
        check_pairs(hyps.len(), stream.len())?;
    }
    let hyp_strs: Vec<&str> = hyps.iter().map(AsRef::as_ref).collect();
    let ref_strs: Vec<Vec<&str>> = refs
        .iter()
        .map(|stream| stream.iter().map(AsRef::as_ref).collect())
        .collect();
    Ok(TranslationScores {
        sentences: hyps.len(),
        references: refs.len(),
        bleu: corpus_bleu_multi(&hyp_strs, &ref_strs),
        bleu_signature: bleu_signature(refs.len()),
        chrf: corpus_chrf_multi(&hyp_strs, &ref_strs, chrf_word_order),
        chrf_name: chrf_name(chrf_word_order),
        chrf_signature: chrf_signature(refs.len(), chrf_word_order),
    })
}

/// `score(hyp, references)` for every sentence of a corpus against its references in each
/// stream (`refs[k][i]` is reference `k` of sentence `i`).
///
/// # Panics
/// If a stream's length differs from `hyps`' (sacrebleu silently drops the extra sentences).
fn per_sentence<'a, T>(
    hyps: &'a [&str],
    refs: &'a [Vec<&str>],
    score: impl Fn(&str, &[&str]) -> T + 'a,
) -> impl Iterator<Item = T> + 'a {
    for stream in refs {
        assert_eq!(
            hyps.len(),
            stream.len(),
            "one reference per hypothesis in each stream"
        );
    }
    hyps.iter().enumerate().map(move |(i, h)| {
        let references: Vec<&str> = refs.iter().map(|stream| stream[i]).collect();
        score(h, &references)
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
        assert!(
            t.to_string()
                .starts_with("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = "),
            "{t}"
        );
        assert!(t
            .to_string()
            .contains("\nchrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|"));
        let json = serde_json::to_value(t).unwrap();
        assert!(json["bleu"]["precisions"].is_array());
        assert_eq!(json["chrf_name"], "chrF2");
        let pp = score_translation_multi(&hyps, &[refs.to_vec(), hyps.to_vec()], 2).unwrap();
        assert_eq!(pp.chrf_name, "chrF2++");
        assert_eq!(
            pp.chrf_signature,
            "nrefs:2|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"
        );
        // The second reference is the hypothesis itself (sacrebleu's float sum gives 100 plus
        // an ulp or so, as here).
        assert!((pp.bleu.score - 100.0).abs() < 1e-9, "{}", pp.bleu.score);
        let r = score_summaries(&hyps, &refs).unwrap();
        assert_eq!(r, corpus_rouge(&hyps, &refs));
        assert!(serde_json::to_value(r).unwrap()["rougeL"]["fmeasure"].is_number());
    }
}
