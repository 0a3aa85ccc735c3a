//! Greedy search: the highest-scoring token at every step.

use rayon::prelude::*;

use super::{argmax, logits_to_host, row_index, GenerationConfig, Processors, Seq2SeqModel};
use crate::models::kv_cache::DecoderCache;

pub(super) fn search<M: Seq2SeqModel + ?Sized>(
    model: &M,
    mut cache: DecoderCache,
    batch: usize,
    cfg: &GenerationConfig,
) -> candle_core::Result<Vec<Vec<u32>>> {
    let processors = Processors::new(cfg);
    let mut sequences = vec![vec![cfg.decoder_start_token_id]; batch];
    // `active[r]` is the input that cache row `r` belongs to; finished inputs leave the batch.
    let mut active: Vec<usize> = (0..batch).collect();
    while !active.is_empty() {
        let last: Vec<u32> = active
            .iter()
            .map(|&i| *sequences[i].last().unwrap())
            .collect();
        let tokens = row_index(&last, model.device())?;
        let (mut scores, vocab) = logits_to_host(&model.decode_step(&tokens, &mut cache)?)?;
        let next: Vec<u32> = scores
            .par_chunks_mut(vocab)
            .zip(&active)
            .map(|(row_scores, &input)| {
                processors.apply(&sequences[input], row_scores);
                argmax(row_scores)
            })
            .collect();
        let mut keep = Vec::with_capacity(active.len());
        for (row, (&input, next)) in active.iter().zip(next).enumerate() {
            sequences[input].push(next);
            if next != cfg.eos_token_id && sequences[input].len() < cfg.max_length {
                keep.push(row as u32);
            }
        }
        if keep.len() < active.len() {
            active = keep.iter().map(|&r| active[r as usize]).collect();
            if !active.is_empty() {
                cache.select_rows(&row_index(&keep, model.device())?)?;
            }
        }
    }
    Ok(sequences.into_iter().map(|s| s[1..].to_vec()).collect())
}
