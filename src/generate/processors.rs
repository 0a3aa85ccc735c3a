//! Score processors applied to one hypothesis' next-token scores before a token is chosen, in the
//! order Hugging Face applies them: repetition penalty, no-repeat n-grams, bad words, minimum
//! length, forced first token, forced end token, and last the optional re-normalisation.
//!
//! Greedy search applies them to raw logits, beam search to log-probabilities, as the reference
//! does; the repetition penalty therefore acts differently in the two, on purpose.

use std::collections::HashSet;

use super::GenerationConfig;

pub struct Processors<'a> {
    cfg: &'a GenerationConfig,
}

impl<'a> Processors<'a> {
    pub fn new(cfg: &'a GenerationConfig) -> Self {
        Self { cfg }
    }

    /// `sequence` is the decoder sequence so far, start token included; `scores` has one entry
    /// per vocabulary item.
    pub fn apply(&self, sequence: &[u32], scores: &mut [f32]) {
        self.apply_changes(sequence, scores);
        if self.cfg.renormalize_logits {
            log_softmax(scores);
        }
    }

    /// Every processor but the final re-normalisation, on a row of scores in any form.
    pub fn apply_changes<R: ScoreRow + ?Sized>(&self, sequence: &[u32], scores: &mut R) {
        let cfg = self.cfg;
        let len = sequence.len();
        if cfg.repetition_penalty != 1.0 {
            let penalty = cfg.repetition_penalty;
            let seen: HashSet<u32> = sequence.iter().copied().collect();
            for id in seen {
                if let Some(s) = scores.score_mut(id) {
                    *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
                }
            }
        }
        if cfg.no_repeat_ngram_size > 0 {
            for id in banned_ngram_tokens(sequence, cfg.no_repeat_ngram_size) {
                if let Some(s) = scores.score_mut(id) {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
        for id in banned_bad_words(&cfg.bad_words_ids, cfg.eos_token_id, sequence) {
            if let Some(s) = scores.score_mut(id) {
                *s = f32::NEG_INFINITY;
            }
        }
        if len < cfg.min_length {
            if let Some(s) = scores.score_mut(cfg.eos_token_id) {
                *s = f32::NEG_INFINITY;
            }
        }
        if let Some(bos) = cfg.forced_bos_token_id {
            if len == 1 {
                scores.force(bos);
            }
        }
        if let Some(eos) = cfg.forced_eos_token_id {
            if len + 1 == cfg.max_length {
                scores.force(eos);
            }
        }
    }
}

/// A row of scores for the processors to change: a written-out row, or one that only records
/// the changes (beam search's, which never writes a row out).
pub trait ScoreRow {
    /// The score of `id`, to change; `None` past the vocabulary.
    fn score_mut(&mut self, id: u32) -> Option<&mut f32>;
    /// Every score becomes -inf, except `id`'s, which becomes 0.
    fn force(&mut self, id: u32);
}

impl ScoreRow for [f32] {
    fn score_mut(&mut self, id: u32) -> Option<&mut f32> {
        self.get_mut(id as usize)
    }

    fn force(&mut self, id: u32) {
        self.fill(f32::NEG_INFINITY);
        if let Some(s) = self.get_mut(id as usize) {
            *s = 0.0;
        }
    }
}

/// The tokens `bad_words` ban after `sequence`: the last token of each bad word whose other
/// tokens end the sequence. The end token alone is never banned, as in the reference.
pub(super) fn banned_bad_words<'a>(
    bad_words: impl IntoIterator<Item = &'a Vec<u32>> + 'a,
    eos_token_id: u32,
    sequence: &'a [u32],
) -> impl Iterator<Item = u32> + 'a {
    bad_words.into_iter().filter_map(move |bad| {
        let (&last, prefix) = bad.split_last()?;
        let eos_alone = last == eos_token_id && prefix.is_empty();
        (!eos_alone && sequence.ends_with(prefix)).then_some(last)
    })
}

/// Tokens that would complete an n-gram already present in `sequence`.
pub(crate) fn banned_ngram_tokens(sequence: &[u32], n: usize) -> Vec<u32> {
    if sequence.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &sequence[sequence.len() + 1 - n..];
    sequence
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// Numerically stable log-softmax over one row, in place.
pub fn log_softmax(row: &mut [f32]) {
    let max = crate::kernels::top_k::max(row);
    let log_sum = crate::kernels::exp::sum_exp(row, max).ln();
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}

/// Index of the first maximum, like `torch.argmax`.
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_repeated_trigram() {
        // 1 2 3 ... 1 2 → 3 would repeat "1 2 3".
        assert_eq!(banned_ngram_tokens(&[1, 2, 3, 4, 1, 2], 3), vec![3]);
        assert!(banned_ngram_tokens(&[1, 2], 3).is_empty());
        assert_eq!(banned_ngram_tokens(&[7, 7], 2), vec![7]);
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        let mut cfg = GenerationConfig::new(0, 1, 0);
        cfg.repetition_penalty = 2.0;
        let mut scores = vec![4.0, -1.0, 3.0];
        Processors::new(&cfg).apply(&[0, 1], &mut scores);
        assert_eq!(scores, vec![2.0, -2.0, 3.0]);
    }

    #[test]
    fn min_length_and_forced_eos() {
        let mut cfg = GenerationConfig::new(0, 1, 0);
        cfg.min_length = 3;
        cfg.max_length = 4;
        cfg.forced_eos_token_id = Some(1);
        let mut scores = vec![0.5, 0.9, 0.1];
        Processors::new(&cfg).apply(&[0, 2], &mut scores);
        assert_eq!(scores[1], f32::NEG_INFINITY);
        let mut scores = vec![0.5, 0.9, 0.1];
        Processors::new(&cfg).apply(&[0, 2, 2], &mut scores);
        assert_eq!(scores, vec![f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
    }

    #[test]
    fn log_softmax_normalises() {
        let mut row = vec![1.0, 2.0, 3.0];
        log_softmax(&mut row);
        let total: f32 = row.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&row), 2);
    }
}
