//! The processors on the device, for decoding on GPUs without reading every step's scores back
//! to the host.
//!
//! The processors that are the same at every step (single-token bad words, the end token before
//! `min_length`, forced tokens) become fixed masks. Those that depend on each row's own tokens
//! (the repetition penalty, n-gram blocking, bad words of several tokens) are worked out on the
//! host, where the sequences are, as a short list of token ids per row; only that list goes to
//! the device, where one gather and one scatter apply it.

use candle_core::{DType, Device, Tensor};

use super::processors::{banned_bad_words, banned_ngram_tokens};
use super::{GenerationConfig, Processors};

/// What the processors do to a step's scores, as one tensor over the vocabulary.
pub(super) enum StepMask<'t> {
    /// Only this token may follow: scores become 0 there and -inf elsewhere.
    Forced(u32, Tensor),
    /// Added to the scores: -inf at banned tokens, 0 elsewhere.
    Add(&'t Tensor),
}

pub(super) struct DeviceMasks<'a> {
    cfg: &'a GenerationConfig,
    device: Device,
    /// Made at the first step, when the vocabulary size is known: the banned words, and the
    /// banned words plus the end token (before `min_length`).
    fixed: Option<(Tensor, Tensor)>,
}

impl<'a> DeviceMasks<'a> {
    /// The masks for decoding on `device`, where it is not the CPU.
    pub(super) fn for_settings(cfg: &'a GenerationConfig, device: &Device) -> Option<Self> {
        (!device.is_cpu()).then(|| Self::new(cfg, device))
    }

    pub(super) fn new(cfg: &'a GenerationConfig, device: &Device) -> Self {
        Self {
            cfg,
            device: device.clone(),
            fixed: None,
        }
    }

    pub(super) fn cfg(&self) -> &'a GenerationConfig {
        self.cfg
    }

    /// The processors for sequences of `len` tokens (start token included), in their order:
    /// a forced end token at `max_length` wins over a forced first token, which wins over the
    /// bans.
    pub(super) fn mask(&mut self, len: usize, vocab: usize) -> candle_core::Result<StepMask<'_>> {
        let cfg = self.cfg;
        let forced = cfg
            .forced_eos_token_id
            .filter(|_| len + 1 == cfg.max_length)
            .or(cfg.forced_bos_token_id.filter(|_| len == 1));
        if let Some(id) = forced {
            let mut only = vec![f32::NEG_INFINITY; vocab];
            if let Some(s) = only.get_mut(id as usize) {
                *s = 0.0;
            }
            return Ok(StepMask::Forced(
                id,
                Tensor::from_vec(only, vocab, &self.device)?,
            ));
        }
        if self.fixed.is_none() {
            self.fixed = Some(self.fixed_masks(vocab)?);
        }
        let (banned, banned_and_eos) = self.fixed.as_ref().expect("made above");
        Ok(StepMask::Add(if len < cfg.min_length {
            banned_and_eos
        } else {
            banned
        }))
    }

    fn fixed_masks(&self, vocab: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let cfg = self.cfg;
        // From the processors themselves: a row of zeros through them, with the
        // length-dependent ones switched off, is -inf exactly at the banned words.
        let fixed = GenerationConfig {
            min_length: 0,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            renormalize_logits: false,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            bad_words_ids: (cfg.bad_words_ids.iter())
                .filter(|bad| bad.len() == 1)
                .cloned()
                .collect(),
            ..cfg.clone()
        };
        let mut banned = vec![0f32; vocab];
        Processors::new(&fixed).apply(&[cfg.decoder_start_token_id], &mut banned);
        let mut with_eos = banned.clone();
        if let Some(s) = with_eos.get_mut(cfg.eos_token_id as usize) {
            *s = f32::NEG_INFINITY;
        }
        Ok((
            Tensor::from_vec(banned, vocab, &self.device)?,
            Tensor::from_vec(with_eos, vocab, &self.device)?,
        ))
    }

    /// `scores` (`[rows, vocab]`, f32, with the [`StepMask::Add`] mask already added) after the
    /// processors that depend on each row's tokens; `sequences` are the rows' tokens so far,
    /// start token included. Adding the mask first changes nothing: a penalised or banned -inf
    /// stays -inf.
    pub(super) fn apply_row_processors(
        &self,
        scores: Tensor,
        sequences: &[&[u32]],
    ) -> candle_core::Result<Tensor> {
        let cfg = self.cfg;
        let penalty = cfg.repetition_penalty;
        if penalty == 1.0
            && cfg.no_repeat_ngram_size == 0
            && cfg.bad_words_ids.iter().all(|bad| bad.len() <= 1)
        {
            return Ok(scores);
        }
        let (rows, vocab) = scores.dims2()?;
        // Per row, the tokens to change and whether each is banned (else penalised). Every
        // row gets at least one entry and is padded to the widest by repeating its first, which
        // sets the same value twice.
        let edits: Vec<Vec<(u32, bool)>> = sequences
            .iter()
            .map(|sequence| row_edits(cfg, sequence, vocab))
            .collect();
        let width = edits.iter().map(Vec::len).max().unwrap_or(1);
        let (mut ids, mut banned) = (Vec::with_capacity(rows * width), Vec::new());
        for row in &edits {
            for i in 0..width {
                let (id, ban) = row.get(i).copied().unwrap_or(row[0]);
                ids.push(id);
                banned.push(u8::from(ban));
            }
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let banned = Tensor::from_vec(banned, (rows, width), &self.device)?;
        let values = scores.gather(&ids, 1)?;
        let values = if penalty == 1.0 {
            values
        } else {
            // As the host computes it: `s * p` below zero, `s / p` above, both exact in f32.
            let p = Tensor::new(penalty, &self.device)?;
            values
                .lt(0f32)?
                .where_cond(&values.broadcast_mul(&p)?, &values.broadcast_div(&p)?)?
        };
        let minus_inf = Tensor::full(f32::NEG_INFINITY, (rows, width), &self.device)?;
        let values = banned.where_cond(&minus_inf, &values)?;
        scores.to_dtype(DType::F32)?.scatter(&ids, &values, 1)
    }
}

/// The tokens the row processors change after `sequence`: `(id, banned)`, with the seen tokens
/// (penalised) where there is a repetition penalty, and never empty.
fn row_edits(cfg: &GenerationConfig, sequence: &[u32], vocab: usize) -> Vec<(u32, bool)> {
    let mut bans = Vec::new();
    if cfg.no_repeat_ngram_size > 0 {
        bans.extend(banned_ngram_tokens(sequence, cfg.no_repeat_ngram_size));
    }
    // Single-token bad words are in the fixed mask.
    let long_bad_words = cfg.bad_words_ids.iter().filter(|bad| bad.len() > 1);
    bans.extend(banned_bad_words(long_bad_words, cfg.eos_token_id, sequence));
    let mut edits: Vec<(u32, bool)> = bans.into_iter().map(|id| (id, true)).collect();
    if cfg.repetition_penalty != 1.0 {
        edits.extend(sequence.iter().map(|&id| (id, false)));
    }
    // One entry per token, a ban winning over a penalty; ids past the vocabulary are ignored,
    // as on the host.
    edits.retain(|&(id, _)| (id as usize) < vocab);
    edits.sort_unstable_by_key(|&(id, ban)| (id, !ban));
    edits.dedup_by_key(|e| e.0);
    if edits.is_empty() {
        // Unchanged: not banned, and the penalty (if any) is 1.
        edits.push((*sequence.last().unwrap_or(&0), false));
    }
    edits
}

/// Reproducible scores in `[-spread / 2, spread / 2)` for the tests of the device paths.
#[cfg(test)]
pub(super) fn test_scores(mut seed: u32, spread: f32) -> impl FnMut() -> f32 {
    move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * spread
    }
}

/// `rows` sequences of `len` tokens after `start`, drawn from the few tokens 3 to 5 so that
/// n-grams, bad-word prefixes and seen tokens recur, for the tests of the device paths.
#[cfg(test)]
pub(super) fn test_sequences(
    rand: &mut impl FnMut() -> f32,
    rows: usize,
    len: usize,
    start: u32,
) -> Vec<Vec<u32>> {
    (0..rows)
        .map(|_| {
            let mut seq = vec![start];
            seq.extend((1..len).map(|_| (rand().abs() % 3.0) as u32 + 3));
            seq
        })
        .collect()
}
