//! Greedy search: the highest-scoring token at every step.

use candle_core::{DType, Tensor, D};

use super::device_masks::{DeviceMasks, StepMask};
use super::{host_scores, row_index, GenerationConfig, Laps, Processors, Seq2SeqModel, StepTimes};
use crate::models::kv_cache::DecoderCache;

pub(super) fn search<M: Seq2SeqModel + ?Sized>(
    model: &M,
    mut cache: DecoderCache,
    batch: usize,
    cfg: &GenerationConfig,
    times: &mut StepTimes,
) -> candle_core::Result<Vec<Vec<u32>>> {
    // The final re-normalisation never changes which token scores highest; on the host it was
    // an exponential per vocabulary item and row.
    let choice_cfg = GenerationConfig {
        renormalize_logits: false,
        ..cfg.clone()
    };
    let processors = Processors::new(&choice_cfg);
    let mut on_device = DeviceMasks::for_settings(cfg, model.device()).map(DeviceChoice);
    let mut sequences = vec![vec![cfg.decoder_start_token_id]; batch];
    // `active[r]` is the input that cache row `r` belongs to; finished inputs leave the batch.
    let mut active: Vec<usize> = (0..batch).collect();
    while !active.is_empty() {
        let mut laps = Laps::start();
        times.steps += 1;
        let last: Vec<u32> = active
            .iter()
            .map(|&i| *sequences[i].last().unwrap())
            .collect();
        let tokens = row_index(&last, model.device())?;
        let logits = model.decode_step(&tokens, &mut cache)?;
        laps.lap(&mut times.model);
        let next: Vec<u32> = match &mut on_device {
            // Every active row has the same length: rows advance together and leave when done.
            Some(choice) => {
                let rows: Vec<&[u32]> = active.iter().map(|&i| sequences[i].as_slice()).collect();
                choice.next_tokens(&logits, &rows)?
            }
            None => host_scores::greedy_choices(&logits, &processors, |row| {
                sequences[active[row]].as_slice()
            })?,
        };
        laps.lap(&mut times.scoring);
        let mut keep = Vec::with_capacity(active.len());
        for (row, (&input, next)) in active.iter().zip(next).enumerate() {
            sequences[input].push(next);
            if next != cfg.eos_token_id && sequences[input].len() < cfg.max_length {
                keep.push(row as u32);
            }
        }
        laps.lap(&mut times.bookkeeping);
        if keep.len() < active.len() {
            active = keep.iter().map(|&r| active[r as usize]).collect();
            if !active.is_empty() {
                cache.select_rows(&row_index(&keep, model.device())?)?;
            }
        }
        laps.lap(&mut times.reorder);
    }
    Ok(sequences.into_iter().map(|s| s[1..].to_vec()).collect())
}

/// Greedy choice on the device (GPUs): the scores stay there and only the chosen ids are read
/// back, instead of every row's logits over the whole vocabulary each step. The final
/// re-normalisation is left out, as it never changes which token scores highest.
struct DeviceChoice<'a>(DeviceMasks<'a>);

impl DeviceChoice<'_> {
    /// The next token of every row, given the rows' sequences so far (start token included,
    /// all of one length); the same choice as [`Processors::apply`] followed by [`argmax`] on
    /// the host.
    fn next_tokens(
        &mut self,
        logits: &Tensor,
        sequences: &[&[u32]],
    ) -> candle_core::Result<Vec<u32>> {
        let (rows, vocab) = logits.dims2()?;
        let len = sequences.first().map_or(1, |s| s.len());
        let scores = match self.0.mask(len, vocab)? {
            StepMask::Forced(id, _) => return Ok(vec![id; rows]),
            StepMask::Add(mask) => logits.to_dtype(DType::F32)?.broadcast_add(mask)?,
        };
        self.0
            .apply_row_processors(scores, sequences)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::argmax;
    use super::*;
    use candle_core::Device;

    /// The device choice (run here on the CPU tensors it would get on a GPU) picks what the
    /// host processors pick, at every length, across forced tokens, `min_length` and bad words.
    #[test]
    fn device_choice_matches_the_host_processors() -> candle_core::Result<()> {
        let (rows, vocab) = (5, 40);
        let mut rand = super::super::device_masks::test_scores(11, 8.0);
        let settings = [
            GenerationConfig {
                min_length: 4,
                max_length: 9,
                bad_words_ids: vec![vec![7], vec![3], vec![12]],
                forced_bos_token_id: Some(5),
                forced_eos_token_id: Some(3),
                renormalize_logits: true,
                ..GenerationConfig::new(1, 3, 1)
            },
            GenerationConfig {
                max_length: 2,
                forced_bos_token_id: Some(9),
                forced_eos_token_id: Some(0),
                ..GenerationConfig::new(2, 0, 2)
            },
            GenerationConfig {
                max_length: 12,
                min_length: 6,
                ..GenerationConfig::new(2, 0, 2)
            },
            // The processors that depend on each row's own tokens.
            GenerationConfig {
                max_length: 10,
                min_length: 3,
                repetition_penalty: 1.5,
                no_repeat_ngram_size: 2,
                bad_words_ids: vec![vec![12], vec![4, 5], vec![3, 4, 6]],
                ..GenerationConfig::new(1, 2, 1)
            },
            GenerationConfig {
                max_length: 10,
                repetition_penalty: 0.7,
                no_repeat_ngram_size: 1,
                ..GenerationConfig::new(1, 2, 1)
            },
        ];
        for cfg in &settings {
            let mut choice = DeviceChoice(DeviceMasks::new(cfg, &Device::Cpu));
            for len in 1..cfg.max_length {
                let sequences = super::super::device_masks::test_sequences(
                    &mut rand,
                    rows,
                    len,
                    cfg.decoder_start_token_id,
                );
                let mut scores: Vec<f32> = (0..rows * vocab).map(|_| rand()).collect();
                // Rows where the end token, a banned word or a seen token would win unless
                // masked or penalised.
                for (r, row) in scores.chunks_mut(vocab).enumerate() {
                    match r % 3 {
                        0 => row[cfg.eos_token_id as usize] = 9.0,
                        1 => row[7] = 9.5,
                        _ => row[*sequences[r].last().unwrap() as usize] = 4.5,
                    }
                }
                let mut host = scores.clone();
                let logits = Tensor::from_vec(scores, (rows, vocab), &Device::Cpu)?;
                // The host's choice, made on the logits without writing them out.
                let choices = GenerationConfig {
                    renormalize_logits: false,
                    ..cfg.clone()
                };
                let from_logits = super::super::host_scores::greedy_choices(
                    &logits,
                    &Processors::new(&choices),
                    |r| sequences[r].as_slice(),
                )?;
                let want: Vec<u32> = host
                    .chunks_mut(vocab)
                    .zip(&sequences)
                    .map(|(row, sequence)| {
                        Processors::new(cfg).apply(sequence, row);
                        argmax(row)
                    })
                    .collect();
                assert_eq!(from_logits, want, "length {len}");
                let rows_seen: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
                assert_eq!(
                    choice.next_tokens(&logits, &rows_seen)?,
                    want,
                    "length {len}"
                );
            }
        }
        Ok(())
    }
}
