//! The processors as masks on the device, for decoding on GPUs without reading every step's
//! scores back to the host.
//!
//! This applies where the settings' processors reduce to fixed masks and forced tokens: no
//! repetition penalty, no n-gram blocking, only single-token bad words (OPUS-MT's, NLLB's and
//! mBART's defaults). Other settings keep the host processors.

use candle_core::{Device, Tensor};

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
    /// The masks for decoding on `device`, where it is not the CPU and the settings allow.
    pub(super) fn for_settings(cfg: &'a GenerationConfig, device: &Device) -> Option<Self> {
        (!device.is_cpu() && Self::applies(cfg)).then(|| Self::new(cfg, device))
    }

    pub(super) fn new(cfg: &'a GenerationConfig, device: &Device) -> Self {
        Self {
            cfg,
            device: device.clone(),
            fixed: None,
        }
    }

    pub(super) fn applies(cfg: &GenerationConfig) -> bool {
        cfg.repetition_penalty == 1.0
            && cfg.no_repeat_ngram_size == 0
            && cfg.bad_words_ids.iter().all(|bad| bad.len() == 1)
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
}

/// Reproducible scores in `[-spread / 2, spread / 2)` for the tests of the device paths.
#[cfg(test)]
pub(super) fn test_scores(mut seed: u32, spread: f32) -> impl FnMut() -> f32 {
    move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * spread
    }
}
