//! Choosing tokens on the host straight from the model's logits: each row is read where the
//! model wrote it, the processors' changes are recorded rather than written into a copy of the
//! row ([`Changes`]), and one scan keeps the best tokens ([`crate::kernels::top_k`]). The scores
//! compared are bit for bit those of the written-out rows (log-softmax, processors, optional
//! re-normalisation, the beam's running score), so the choices are the same.

use candle_core::{DType, Storage, Tensor};

use super::processors::ScoreRow;
use super::Processors;
use crate::kernels::exp::{sum_exp, sum_exp_shifted};
use crate::kernels::parallel;
use crate::kernels::top_k::{self, Best, ShiftedRow};

/// The processors' changes to a row of scores that is never written out: entry `i` is
/// `(row[i] - shift[0]) - shift[1]` unless changed.
struct Changes<'a> {
    row: &'a [f32],
    shift: [f32; 2],
    edits: Vec<(usize, f32)>,
    /// Whether a forced token made every unchanged entry -inf.
    forced: bool,
}

impl<'a> Changes<'a> {
    fn new(row: &'a [f32], shift: [f32; 2]) -> Self {
        Self {
            row,
            shift,
            edits: Vec::new(),
            forced: false,
        }
    }

    /// The edits sorted by index, and the shift of the unchanged entries.
    fn finish(mut self) -> (Vec<(usize, f32)>, [f32; 2]) {
        self.edits.sort_unstable_by_key(|e| e.0);
        let shift = if self.forced {
            // `x - inf` is -inf for every finite logit.
            [f32::INFINITY, 0.0]
        } else {
            self.shift
        };
        (self.edits, shift)
    }
}

impl ScoreRow for Changes<'_> {
    fn score_mut(&mut self, id: u32) -> Option<&mut f32> {
        let i = id as usize;
        let x = *self.row.get(i)?;
        let at = match self.edits.iter().position(|e| e.0 == i) {
            Some(at) => at,
            None => {
                let value = if self.forced {
                    f32::NEG_INFINITY
                } else {
                    (x - self.shift[0]) - self.shift[1]
                };
                self.edits.push((i, value));
                self.edits.len() - 1
            }
        };
        Some(&mut self.edits[at].1)
    }

    fn force(&mut self, id: u32) {
        self.forced = true;
        self.edits.clear();
        if (id as usize) < self.row.len() {
            self.edits.push((id as usize, 0.0));
        }
    }
}

/// `[f(0, row 0), f(1, row 1), ..]` over the rows of a `[rows, vocab]` logits tensor, in
/// parallel, reading a contiguous f32 CPU tensor in place (other tensors are read out first).
fn map_rows<R: Send>(
    logits: &Tensor,
    f: impl Fn(usize, &[f32]) -> R + Sync,
) -> candle_core::Result<Vec<R>> {
    let (rows, vocab) = logits.dims2()?;
    let in_place = logits.device().is_cpu()
        && logits.dtype() == DType::F32
        && logits.layout().contiguous_offsets().is_some();
    if !in_place {
        let read_out = logits
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        return Ok(parallel::map(rows, |r| {
            f(r, &read_out[r * vocab..(r + 1) * vocab])
        }));
    }
    let (storage, layout) = logits.storage_and_layout();
    let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) else {
        candle_core::bail!("logits moved off the CPU");
    };
    let data = &cpu.as_slice::<f32>()?[start..end];
    Ok(parallel::map(rows, |r| {
        f(r, &data[r * vocab..(r + 1) * vocab])
    }))
}

/// Beam search's candidates: for each input (a block of `num_beams` rows of `logits`), the best
/// `2 * num_beams` `(score, beam * vocab + token)` of the log-probabilities after the processors,
/// plus each beam's running score, best first, ties to the lower index. `beam(row)` is the
/// row's tokens so far (start token included) and running score.
pub(super) fn beam_candidates<'s>(
    logits: &Tensor,
    processors: &Processors,
    renormalize: bool,
    num_beams: usize,
    beam: impl Fn(usize) -> (&'s [u32], f32) + Sync,
) -> candle_core::Result<Vec<Vec<(f32, usize)>>> {
    let (_, vocab) = logits.dims2()?;
    let k = 2 * num_beams;
    let per_row = map_rows(logits, |r, row| {
        let (sequence, running) = beam(r);
        let row_max = top_k::max(row);
        let log_sum = sum_exp(row, row_max).ln();
        let mut changes = Changes::new(row, [row_max, log_sum]);
        processors.apply_changes(sequence, &mut changes);
        let (edits, sub) = changes.finish();
        let scores = ShiftedRow {
            row,
            sub,
            edits: &edits,
        };
        let then = if renormalize {
            let max = scores.max(row_max);
            [max, sum_exp_shifted(&scores, max).ln()]
        } else {
            [0.0, 0.0]
        };
        let mut best = Best::new(k);
        top_k::offer_row(&scores, then, running, (r % num_beams) * vocab, &mut best);
        best.into_vec()
    })?;
    // An input's best k lie among its rows' best k.
    Ok(per_row
        .chunks(num_beams)
        .map(|rows| {
            let mut found: Vec<(f32, usize)> = rows.concat();
            found.sort_by(|a, b| {
                b.0.partial_cmp(&a.0)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.1.cmp(&b.1))
            });
            found.truncate(k);
            found
        })
        .collect())
}

/// Greedy search's choice: per row of `logits`, the first token with the highest logit after the
/// processors (without the final re-normalisation, which never changes it), given each row's
/// tokens so far.
pub(super) fn greedy_choices<'s>(
    logits: &Tensor,
    processors: &Processors,
    sequence: impl Fn(usize) -> &'s [u32] + Sync,
) -> candle_core::Result<Vec<u32>> {
    map_rows(logits, |r, row| {
        let mut changes = Changes::new(row, [0.0, 0.0]);
        processors.apply_changes(sequence(r), &mut changes);
        let (edits, sub) = changes.finish();
        let scores = ShiftedRow {
            row,
            sub,
            edits: &edits,
        };
        let mut best = Best::new(1);
        top_k::offer_row(&scores, [0.0, 0.0], 0.0, 0, &mut best);
        best.into_vec().first().map_or(0, |&(_, i)| i as u32)
    })
}
