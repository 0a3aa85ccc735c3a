//! Beam search with the reference's scoring and stopping rules.
//!
//! Per input and step: the processed log-probabilities of every beam are added to the beam's
//! running score, the best `2 * num_beams` continuations are kept, the first `num_beams` of those
//! that end (end-of-sequence or `max_length`) become finished hypotheses scored
//! `sum_logprobs / generated_len ^ length_penalty`, and the best `num_beams` that do not end run on.
//! An input stops once no running beam can beat its finished ones ([`EarlyStopping`]); it then
//! leaves the batch, which the reference does not do but which cannot change its result, because
//! the reference freezes a stopped input's hypotheses.

use candle_core::{Tensor, D};

use super::device_masks::{DeviceMasks, StepMask};
use super::{
    host_scores, row_index, EarlyStopping, GenerationConfig, Laps, Processors, Seq2SeqModel,
    StepTimes,
};
use crate::models::kv_cache::DecoderCache;

/// The reference's stand-in for "impossible", used for beams that must not be picked.
const IMPOSSIBLE: f32 = -1.0e9;

struct Hypotheses {
    /// Running beams, best first, each with the start token.
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    /// Finished hypotheses `(score, tokens)`, best first, at most `num_beams`.
    finished: Vec<(f32, Vec<u32>)>,
    /// The reference's `is_early_stop_heuristic_unsatisfied`: a running beam may still win.
    improvable: bool,
}

impl Hypotheses {
    fn new(start: u32, num_beams: usize) -> Self {
        let mut running_scores = vec![IMPOSSIBLE; num_beams];
        // Only the first beam is live at the start, so the beams do not all pick the same tokens.
        running_scores[0] = 0.0;
        Self {
            running: vec![vec![start]; num_beams],
            running_scores,
            finished: Vec::with_capacity(num_beams + 1),
            improvable: true,
        }
    }

    fn is_full(&self, num_beams: usize) -> bool {
        self.finished.len() >= num_beams
    }

    fn add_finished(&mut self, score: f32, tokens: Vec<u32>, num_beams: usize) {
        let at = self.finished.partition_point(|(s, _)| *s >= score);
        self.finished.insert(at, (score, tokens));
        self.finished.truncate(num_beams);
    }

    fn is_done(&self, cfg: &GenerationConfig) -> bool {
        !self.improvable
            || (cfg.early_stopping == EarlyStopping::Yes && self.is_full(cfg.num_beams))
    }
}

/// The `k` best `(score, flat index)` pairs of `scores`, best first; ties keep the lower index:
/// the choice on written-out rows that [`host_scores::beam_candidates`] and the device scoring
/// must match.
#[cfg(test)]
fn top_k(scores: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if best.len() == k && s <= best[k - 1].0 {
            continue;
        }
        let at = best.partition_point(|&(b, _)| b >= s);
        best.insert(at, (s, i));
        best.truncate(k);
    }
    best
}

pub(super) fn search<M: Seq2SeqModel + ?Sized>(
    model: &M,
    mut cache: DecoderCache,
    batch: usize,
    cfg: &GenerationConfig,
    times: &mut StepTimes,
) -> candle_core::Result<Vec<Vec<u32>>> {
    let num_beams = cfg.num_beams;
    let processors = Processors::new(cfg);
    let mut on_device = DeviceMasks::for_settings(cfg, model.device()).map(DeviceScoring);
    cache.expand_beams(num_beams, model.device())?;

    let mut items: Vec<Hypotheses> = (0..batch)
        .map(|_| Hypotheses::new(cfg.decoder_start_token_id, num_beams))
        .collect();
    // `active[p]` is the input whose beams occupy cache rows `p * num_beams ..`.
    let mut active: Vec<usize> = (0..batch).collect();
    let mut cur_len = 1;

    while !active.is_empty() {
        let mut laps = Laps::start();
        times.steps += 1;
        let last: Vec<u32> = active
            .iter()
            .flat_map(|&i| items[i].running.iter().map(|s| *s.last().unwrap()))
            .collect();
        let tokens = row_index(&last, model.device())?;
        let logits = model.decode_step(&tokens, &mut cache)?;
        laps.lap(&mut times.model);
        let vocab = logits.dim(1)?;
        let all_candidates: Vec<Vec<(f32, usize)>> = match &mut on_device {
            Some(scoring) => {
                let running: Vec<f32> = active
                    .iter()
                    .flat_map(|&i| items[i].running_scores.iter().copied())
                    .collect();
                let sequences: Vec<&[u32]> = active
                    .iter()
                    .flat_map(|&i| items[i].running.iter().map(Vec::as_slice))
                    .collect();
                scoring.candidates(&logits, &running, &sequences, num_beams)?
            }
            None => host_scores::beam_candidates(
                &logits,
                &processors,
                cfg.renormalize_logits,
                num_beams,
                |row| {
                    let item = &items[active[row / num_beams]];
                    let beam = row % num_beams;
                    (item.running[beam].as_slice(), item.running_scores[beam])
                },
            )?,
        };
        laps.lap(&mut times.scoring);

        let mut next_rows: Vec<u32> = Vec::with_capacity(active.len() * num_beams);
        let mut still_active = Vec::with_capacity(active.len());
        for ((slot, &input), candidates) in active.iter().enumerate().zip(all_candidates) {
            let item = &mut items[input];

            let may_add = item.improvable
                && !(cfg.early_stopping == EarlyStopping::Yes && item.is_full(num_beams));
            let generated_len = (cur_len + 1 - 1) as f64;
            let penalty = generated_len.powf(cfg.length_penalty as f64) as f32;
            let mut running = Vec::with_capacity(num_beams);
            for (rank, &(score, flat)) in candidates.iter().enumerate() {
                let (beam, token) = (flat / vocab, (flat % vocab) as u32);
                let ends = token == cfg.eos_token_id || cur_len + 1 >= cfg.max_length;
                if ends {
                    if may_add && rank < num_beams {
                        let mut tokens = item.running[beam].clone();
                        tokens.push(token);
                        item.add_finished(score / penalty, tokens, num_beams);
                    }
                } else if running.len() < num_beams {
                    running.push((score, beam, token));
                }
            }
            // Only at max_length can every continuation end; the input is then complete.
            if running.len() < num_beams {
                item.improvable = false;
                continue;
            }
            let previous = std::mem::take(&mut item.running);
            item.running = running
                .iter()
                .map(|&(_, beam, token)| {
                    let mut seq = previous[beam].clone();
                    seq.push(token);
                    seq
                })
                .collect();
            item.running_scores = running.iter().map(|&(score, _, _)| score).collect();

            if item.improvable && item.is_full(num_beams) {
                let hypothetical_len = match cfg.early_stopping {
                    EarlyStopping::Never if cfg.length_penalty > 0.0 => cfg.max_length - 1,
                    _ => cur_len + 1 - 1,
                };
                let best_possible = item.running_scores[0]
                    / (hypothetical_len as f64).powf(cfg.length_penalty as f64) as f32;
                let worst_finished = item.finished.last().map(|(s, _)| *s).unwrap();
                item.improvable = best_possible > worst_finished;
            }
            if !item.is_done(cfg) {
                let base = (slot * num_beams) as u32;
                next_rows.extend(running.iter().map(|&(_, beam, _)| base + beam as u32));
                still_active.push(input);
            }
        }
        cur_len += 1;
        laps.lap(&mut times.bookkeeping);
        if still_active.is_empty() {
            break;
        }
        let index = row_index(&next_rows, model.device())?;
        if still_active.len() == active.len() {
            cache.reorder_beams(&index)?;
        } else {
            cache.select_rows(&index)?;
        }
        active = still_active;
        laps.lap(&mut times.reorder);
    }

    Ok(items
        .into_iter()
        .map(|item| match item.finished.into_iter().next() {
            Some((_, tokens)) => tokens[1..].to_vec(),
            None => item.running[0][1..].to_vec(),
        })
        .collect())
}

/// Beam scoring on the device (GPUs): log-probabilities, the processors' masks, the running
/// scores and each row's best `2 * num_beams` continuations are computed there, and only those
/// candidates are read back (instead of every row's scores over the whole vocabulary).
struct DeviceScoring<'a>(DeviceMasks<'a>);

impl DeviceScoring<'_> {
    /// Each active input's best `2 * num_beams` `(score, beam * vocab + token)`, as [`top_k`]
    /// gives them on the host. `running` holds every row's running score and `sequences` its
    /// tokens so far (start token included, all of one length).
    fn candidates(
        &mut self,
        logits: &Tensor,
        running: &[f32],
        sequences: &[&[u32]],
        num_beams: usize,
    ) -> candle_core::Result<Vec<Vec<(f32, usize)>>> {
        let (rows, vocab) = logits.dims2()?;
        let k = 2 * num_beams;
        let cfg = self.0.cfg();
        let len = sequences.first().map_or(1, |s| s.len());
        let (scores, forced) = match self.0.mask(len, vocab)? {
            StepMask::Forced(_, only) => (only.unsqueeze(0)?.repeat((rows, 1))?, true),
            StepMask::Add(mask) => (
                candle_nn::ops::log_softmax(logits, D::Minus1)?.broadcast_add(mask)?,
                false,
            ),
        };
        let mut scores = if forced {
            scores
        } else {
            self.0.apply_row_processors(scores, sequences)?
        };
        if cfg.renormalize_logits {
            scores = candle_nn::ops::log_softmax(&scores, D::Minus1)?;
        }
        let running = Tensor::from_slice(running, (rows, 1), logits.device())?;
        // A copy the selection below may overwrite.
        let scores = scores.broadcast_add(&running)?.contiguous()?;
        // Each row's best k by repeated argmax; chosen entries are set to -inf. Every input's
        // best k lie among its rows' best k.
        let taken = Tensor::full(f32::NEG_INFINITY, (rows, 1), logits.device())?;
        let (mut ids, mut values) = (Vec::with_capacity(k), Vec::with_capacity(k));
        for _ in 0..k.min(vocab) {
            let best = scores.argmax_keepdim(D::Minus1)?;
            values.push(scores.gather(&best, D::Minus1)?);
            scores.scatter_set(&best, &taken, D::Minus1)?;
            ids.push(best);
        }
        let ids = Tensor::cat(&ids, 1)?.to_vec2::<u32>()?;
        let values = Tensor::cat(&values, 1)?.to_vec2::<f32>()?;
        Ok((0..rows / num_beams)
            .map(|input| {
                let mut found: Vec<(f32, usize)> = (0..num_beams)
                    .flat_map(|beam| {
                        let row = input * num_beams + beam;
                        ids[row]
                            .iter()
                            .zip(&values[row])
                            .map(move |(&id, &v)| (v, beam * vocab + id as usize))
                    })
                    .collect();
                // The host's order: best first, ties to the lower index; a row whose finite
                // scores ran out repeats -inf entries, which are dropped as duplicates.
                found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                found.dedup_by_key(|c| c.1);
                found.truncate(k);
                found
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::log_softmax;
    use super::*;
    use candle_core::Device;

    /// The candidates chosen on written-out rows: log-softmax, processors and running score
    /// over every row of `logits`, then [`top_k`] over each input's block of rows.
    fn written_out(
        cfg: &GenerationConfig,
        logits: &[f32],
        vocab: usize,
        sequences: &[Vec<u32>],
        running: &[f32],
    ) -> Vec<Vec<(f32, usize)>> {
        let mut rows = logits.to_vec();
        for (r, row) in rows.chunks_mut(vocab).enumerate() {
            log_softmax(row);
            Processors::new(cfg).apply(&sequences[r], row);
            row.iter_mut().for_each(|x| *x += running[r]);
        }
        rows.chunks(cfg.num_beams * vocab)
            .map(|block| top_k(block, 2 * cfg.num_beams))
            .collect()
    }

    /// The device scoring (run here on CPU tensors) selects what the host path selects.
    #[test]
    fn device_scoring_matches_the_host() -> candle_core::Result<()> {
        let (inputs, num_beams, vocab) = (3, 4, 50);
        let rows = inputs * num_beams;
        let mut rand = super::super::device_masks::test_scores(5, 6.0);
        let settings = [
            GenerationConfig {
                num_beams,
                min_length: 3,
                max_length: 8,
                bad_words_ids: vec![vec![7]],
                forced_eos_token_id: Some(0),
                renormalize_logits: true,
                ..GenerationConfig::new(1, 0, 1)
            },
            GenerationConfig {
                num_beams,
                max_length: 8,
                forced_bos_token_id: Some(9),
                ..GenerationConfig::new(2, 2, 1)
            },
            // The processors that depend on each beam's own tokens.
            GenerationConfig {
                num_beams,
                min_length: 2,
                max_length: 9,
                repetition_penalty: 1.3,
                no_repeat_ngram_size: 2,
                bad_words_ids: vec![vec![7], vec![4, 5], vec![3, 4, 6]],
                ..GenerationConfig::new(2, 0, 1)
            },
        ];
        for cfg in &settings {
            let mut scoring = DeviceScoring(DeviceMasks::new(cfg, &Device::Cpu));
            for len in 1..cfg.max_length {
                let logits: Vec<f32> = (0..rows * vocab).map(|_| rand()).collect();
                let running: Vec<f32> = (0..rows).map(|_| rand() * 3.0).collect();
                let sequences = super::super::device_masks::test_sequences(
                    &mut rand,
                    rows,
                    len,
                    cfg.decoder_start_token_id,
                );
                let want = written_out(cfg, &logits, vocab, &sequences, &running);
                let tensor = Tensor::from_vec(logits, (rows, vocab), &Device::Cpu)?;
                let rows_seen: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
                let got = scoring.candidates(&tensor, &running, &rows_seen, num_beams)?;
                for (g, w) in got.iter().zip(&want) {
                    // Candidates with a finite score are the same, in the same order; where a
                    // forced token leaves too few of them, the -inf ones that fill up the
                    // host's list (which no search step can prefer) may be other tokens.
                    let finite = |c: &[(f32, usize)]| -> Vec<usize> {
                        c.iter().filter(|x| x.0.is_finite()).map(|x| x.1).collect()
                    };
                    assert_eq!(finite(g), finite(w), "length {len}");
                    for (a, b) in g.iter().zip(w).filter(|(a, _)| a.0.is_finite()) {
                        assert!((a.0 - b.0).abs() < 1e-4, "length {len}: {a:?} vs {b:?}");
                    }
                }
            }
        }
        Ok(())
    }

    /// The host's candidates, taken from the logits without writing rows out, are exactly (bit
    /// for bit) the best of the written-out rows: log-softmax, processors, running score, then
    /// [`top_k`] over each input's block. Across every processor, re-normalisation, forced
    /// tokens, ties, and rows whose highest logit is banned or penalised.
    #[test]
    fn host_candidates_match_the_written_out_rows() -> candle_core::Result<()> {
        let (inputs, num_beams, vocab) = (3, 3, 301);
        let rows = inputs * num_beams;
        let mut rand = super::super::device_masks::test_scores(9, 12.0);
        let base = |start, eos| GenerationConfig {
            num_beams,
            max_length: 9,
            ..GenerationConfig::new(start, eos, 1)
        };
        let settings = [
            GenerationConfig {
                renormalize_logits: true,
                bad_words_ids: vec![vec![7]],
                forced_eos_token_id: Some(0),
                ..base(1, 0)
            },
            GenerationConfig {
                min_length: 4,
                forced_bos_token_id: Some(9),
                forced_eos_token_id: Some(400),
                ..base(2, 2)
            },
            GenerationConfig {
                min_length: 2,
                repetition_penalty: 1.3,
                no_repeat_ngram_size: 2,
                bad_words_ids: vec![vec![7], vec![4, 5], vec![3, 4, 6]],
                renormalize_logits: true,
                ..base(2, 0)
            },
            GenerationConfig {
                repetition_penalty: 0.8,
                no_repeat_ngram_size: 1,
                ..base(2, 0)
            },
        ];
        let steps = settings
            .iter()
            .flat_map(|cfg| (1..cfg.max_length).map(move |len| (cfg, len)));
        for (cfg, len) in steps {
            let processors = Processors::new(cfg);
            let start = cfg.decoder_start_token_id;
            let sequences = super::super::device_masks::test_sequences(&mut rand, rows, len, start);
            // Coarse logits, so that scores tie; the seen tokens and a banned one highest.
            let mut logits: Vec<f32> = (0..rows * vocab)
                .map(|_| (rand() * 4.0).round() / 4.0)
                .collect();
            for (r, row) in logits.chunks_mut(vocab).enumerate() {
                row[*sequences[r].last().unwrap() as usize] = 7.0;
                row[7] = if r % 2 == 0 { 7.0 } else { 6.0 };
            }
            let running: Vec<f32> = (0..rows)
                .map(|r| if r % 3 == 2 { IMPOSSIBLE } else { rand() })
                .collect();
            let want = written_out(cfg, &logits, vocab, &sequences, &running);
            let logits = Tensor::from_vec(logits, (rows, vocab), &Device::Cpu)?;
            let got = host_scores::beam_candidates(
                &logits,
                &processors,
                cfg.renormalize_logits,
                num_beams,
                |r| (sequences[r].as_slice(), running[r]),
            )?;
            let bits = |c: &Vec<Vec<(f32, usize)>>| -> Vec<Vec<(u32, usize)>> {
                c.iter()
                    .map(|i| i.iter().map(|&(s, t)| (s.to_bits(), t)).collect())
                    .collect()
            };
            assert_eq!(bits(&got), bits(&want), "length {len}, {cfg:?}");
        }
        Ok(())
    }

    #[test]
    fn top_k_is_sorted_and_stable() {
        let scores = [0.1, 0.9, 0.5, 0.9, -1.0];
        assert_eq!(top_k(&scores, 3), vec![(0.9, 1), (0.9, 3), (0.5, 2)]);
    }
}
