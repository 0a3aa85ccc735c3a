//! The decoder's key/value cache, kept outside the model so that the decoding loop can reorder
//! its rows (beam search) and drop finished ones (batching).

use candle_core::{CpuStorage, DType, Device, InplaceOp1, Layout, Result, Storage, Tensor};

/// Keys and values of one attention layer in buffers of `[rows, heads, capacity, head_dim]`,
/// of which the first `len` positions are filled. A step writes its positions in place:
/// concatenating instead copied the whole cache of every layer on every step. Shared by the
/// encoder-decoder models (self-attention) and the GGUF chat models. Clones share the buffers,
/// so a clone must not be appended to while the original is still used.
#[derive(Debug, Clone)]
pub struct KvBuffer {
    kv: Option<(Tensor, Tensor)>,
    len: usize,
    /// The smallest number of positions a buffer grows by.
    growth: usize,
}

impl KvBuffer {
    /// An empty cache whose buffers grow by at least `growth` positions at a time (and at least
    /// double), so that appending reallocates rarely.
    pub fn new(growth: usize) -> Self {
        Self {
            kv: None,
            len: 0,
            growth: growth.max(1),
        }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends keys/values `[rows, heads, t, head_dim]` after the held positions and returns
    /// the keys/values of every position so far.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (rows, heads, t, dim) = k.dims4()?;
        let needed = self.len + t;
        let capacity = self.kv.as_ref().map_or(Ok(0), |(k, _)| k.dim(2))?;
        if needed > capacity {
            let capacity = needed.next_multiple_of(self.growth).max(capacity * 2);
            let grow = |old: Option<&Tensor>| -> Result<Tensor> {
                if let Some(old) = old.filter(|_| self.len > 0) {
                    // On the CPU one pass into one new buffer (zeroed room and a concatenation
                    // were two of each: 9% of a beam-search step's time on the tc-big shape,
                    // most of it faulting in their fresh memory).
                    let all: Vec<u32> = (0..rows as u32).collect();
                    if let Some(grown) = gather_rows(old, &all, self.len, capacity)? {
                        return Ok(grown);
                    }
                    let room = Tensor::zeros(
                        (rows, heads, capacity - self.len, dim),
                        k.dtype(),
                        k.device(),
                    )?;
                    return Tensor::cat(&[&old.narrow(2, 0, self.len)?, &room], 2);
                }
                Tensor::zeros((rows, heads, capacity, dim), k.dtype(), k.device())
            };
            let old = self.kv.as_ref();
            self.kv = Some((grow(old.map(|kv| &kv.0))?, grow(old.map(|kv| &kv.1))?));
        }
        let (cache_k, cache_v) = self.kv.as_ref().expect("allocated above");
        cache_k.slice_set(&k.contiguous()?, 2, self.len)?;
        cache_v.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len = needed;
        Ok((cache_k.narrow(2, 0, needed)?, cache_v.narrow(2, 0, needed)?))
    }

    /// Keeps the first `len` positions; the buffers stay, so the cut is free.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Keeps (and repeats or permutes) the rows named by `index`, a `u32` tensor.
    pub fn select_rows(&mut self, index: &Tensor) -> Result<()> {
        let Some((k, v)) = &mut self.kv else {
            return Ok(());
        };
        if matches!(k.device(), Device::Cpu) {
            let rows = index.to_dtype(DType::U32)?.to_vec1::<u32>()?;
            let kept = self.len + ROOM_AFTER_SELECT;
            if let (Some(k_rows), Some(v_rows)) = (
                gather_rows(k, &rows, self.len, kept)?,
                gather_rows(v, &rows, self.len, kept)?,
            ) {
                (*k, *v) = (k_rows, v_rows);
                return Ok(());
            }
        }
        *k = k.index_select(index, 0)?;
        *v = v.index_select(index, 0)?;
        Ok(())
    }

    /// Permutes or repeats the rows as `index` (a `u32` tensor naming as many rows as are held)
    /// says: on the CPU in place, copying only the rows that change; elsewhere as
    /// [`KvBuffer::select_rows`]. Only for a buffer no clone shares.
    pub fn reorder_rows(&mut self, index: &Tensor) -> Result<()> {
        let Some((k, v)) = &self.kv else {
            return Ok(());
        };
        let n = index.dim(0)?;
        let in_place = |t: &Tensor| {
            matches!(t.device(), Device::Cpu)
                && t.dtype() == DType::F32
                && t.is_contiguous()
                && t.dim(0).is_ok_and(|rows| rows == n)
        };
        if !(in_place(k) && in_place(v)) {
            return self.select_rows(index);
        }
        let rows = index.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        if rows.iter().enumerate().all(|(r, &s)| s as usize == r) {
            return Ok(());
        }
        let op = ReorderRows {
            rows: &rows,
            len: self.len,
        };
        k.inplace_op1(&op)?;
        v.inplace_op1(&op)
    }
}

/// [`crate::kernels::gather::reorder_heads`] as a candle in-place operation, which hands out the
/// buffer's storage for writing.
struct ReorderRows<'a> {
    rows: &'a [u32],
    len: usize,
}

impl InplaceOp1 for ReorderRows<'_> {
    fn name(&self) -> &'static str {
        "reorder-rows"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("reorder-rows: a contiguous f32 buffer is needed");
        };
        let (_, heads, capacity, dim) = layout.shape().dims4()?;
        crate::kernels::gather::reorder_heads(
            &mut data[start..end],
            self.rows,
            [heads, capacity, dim],
            self.len,
        );
        Ok(())
    }
}

/// Positions of room a CPU buffer keeps after a row selection. Beam search selects rows at every
/// step, so this is all its appends need; greedy search selects rarely, and grows by `growth`.
const ROOM_AFTER_SELECT: usize = 8;

/// The rows `rows` of a CPU f32 buffer `[rows, heads, capacity, dim]` in a buffer of `kept`
/// positions, copied in parallel and only as far as the `len` filled positions (the rest
/// zeroed, see [`gather_heads`](crate::kernels::gather::gather_heads)).
/// `None` off the CPU or for other dtypes and layouts.
fn gather_rows(buffer: &Tensor, rows: &[u32], len: usize, kept: usize) -> Result<Option<Tensor>> {
    if !matches!(buffer.device(), Device::Cpu) || buffer.dtype() != DType::F32 {
        return Ok(None);
    }
    let (source_rows, heads, capacity, dim) = buffer.dims4()?;
    let (storage, layout) = buffer.storage_and_layout();
    let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) else {
        return Ok(None);
    };
    let source = &cpu.as_slice::<f32>()?[start..end];
    if let Some(bad) = rows.iter().find(|&&r| r as usize >= source_rows) {
        candle_core::bail!("row {bad} selected from a cache of {source_rows} rows");
    }
    let out = crate::kernels::gather::gather_heads(source, rows, [heads, capacity, dim], len, kept);
    Ok(Some(Tensor::from_vec(
        out,
        (rows.len(), heads, kept, dim),
        &Device::Cpu,
    )?))
}

/// Self-attention positions a decoder's buffers grow by: a translation is rarely longer, and
/// beam search copies whole buffers when it reorders rows.
const DECODER_GROWTH: usize = 32;

/// The cache of one decoder layer.
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// Self-attention keys/values, grown by one position per decoding step.
    pub self_kv: KvBuffer,
    /// Cross-attention keys/values over the encoder output: computed once per input.
    pub cross_kv: (Tensor, Tensor),
}

/// Everything the decoder needs between steps for a batch of `rows` hypotheses.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    pub layers: Vec<LayerCache>,
    /// Additive mask over encoder positions, `[rows, 1, 1, src_len]`.
    pub encoder_mask: Tensor,
    /// Number of decoder positions already processed.
    pub past_len: usize,
    /// Consecutive rows that share each row of the cross-attention keys/values (the beams of
    /// one input, see [`DecoderCache::expand_beams`]); 1 where every row has its own.
    cross_share: usize,
}

impl DecoderCache {
    /// The cache of a new batch: cross-attention keys/values per layer, no decoded positions.
    pub fn start(cross_kv: Vec<(Tensor, Tensor)>, encoder_mask: Tensor) -> Self {
        Self {
            layers: cross_kv
                .into_iter()
                .map(|cross_kv| LayerCache {
                    self_kv: KvBuffer::new(DECODER_GROWTH),
                    cross_kv,
                })
                .collect(),
            encoder_mask,
            past_len: 0,
            cross_share: 1,
        }
    }

    pub fn rows(&self) -> usize {
        self.encoder_mask.dim(0).unwrap_or(0)
    }

    /// Repeats each row `beams` times in place (row `r` becomes rows `r * beams ..`), for beam
    /// search. On the CPU the beams of an input share its cross-attention keys/values rather
    /// than each holding a copy: `attention::attend_one` then reads each of them once for all
    /// the beams (on the tc-big shape with 4 beams they were as many bytes per step as the
    /// int8 weights).
    pub fn expand_beams(&mut self, beams: usize, device: &Device) -> Result<()> {
        let expand: Vec<u32> = (0..self.rows() as u32)
            .flat_map(|r| std::iter::repeat_n(r, beams))
            .collect();
        let index = Tensor::new(expand.as_slice(), device)?;
        let shared = self.layers.iter().all(|layer| {
            let (k, v) = &layer.cross_kv;
            [k, v]
                .iter()
                .all(|t| matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32)
        });
        if !shared {
            return self.select_rows(&index);
        }
        for layer in &mut self.layers {
            layer.self_kv.select_rows(&index)?;
        }
        self.encoder_mask = self.encoder_mask.index_select(&index, 0)?;
        self.cross_share *= beams;
        Ok(())
    }

    /// Keeps (and repeats or permutes) the rows named by `index`, a `u32` tensor of row numbers.
    /// Used to expand each input into its beams off the CPU, to drop finished inputs, and to
    /// follow beams.
    pub fn select_rows(&mut self, index: &Tensor) -> Result<()> {
        let cross_index = match self.cross_share {
            1 => index.clone(),
            share => {
                let rows = index.to_dtype(DType::U32)?.to_vec1::<u32>()?;
                let share_u32 = share as u32;
                // Whole runs of `share` rows of one shared row keep it shared; anything else
                // gives every row its own copy again.
                let runs = rows.len().is_multiple_of(share)
                    && rows
                        .chunks(share)
                        .all(|run| run.iter().all(|&r| r / share_u32 == run[0] / share_u32));
                let cross: Vec<u32> = if runs {
                    rows.chunks(share).map(|run| run[0] / share_u32).collect()
                } else {
                    self.cross_share = 1;
                    rows.iter().map(|&r| r / share_u32).collect()
                };
                Tensor::new(cross.as_slice(), index.device())?
            }
        };
        for layer in &mut self.layers {
            layer.self_kv.select_rows(index)?;
            let (k, v) = &layer.cross_kv;
            layer.cross_kv = (
                k.index_select(&cross_index, 0)?,
                v.index_select(&cross_index, 0)?,
            );
        }
        self.encoder_mask = self.encoder_mask.index_select(index, 0)?;
        Ok(())
    }

    /// Reorders only the self-attention rows. Beam search permutes beams within one input, and all
    /// beams of an input share the same encoder output, so the cross-attention rows need no copy.
    pub fn reorder_beams(&mut self, index: &Tensor) -> Result<()> {
        for layer in &mut self.layers {
            layer.self_kv.reorder_rows(index)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Beams expanded on the CPU share their input's cross-attention rows, which follow row
    /// selections that keep whole inputs (dropping finished ones) and are copied per row again
    /// by selections that do not; every row always sees its own input's keys/values.
    #[test]
    fn expanded_beams_share_cross_attention_rows() -> Result<()> {
        let dev = Device::Cpu;
        let cross = |i: usize| -> Result<Tensor> {
            Tensor::arange(0f32, 24., &dev)?.affine(1.0, 1000.0 * i as f64)
        };
        let cross_kv: Vec<(Tensor, Tensor)> = (0..2)
            .map(|l| {
                Ok((
                    cross(l)?.reshape((3, 2, 2, 2))?,
                    cross(l + 5)?.reshape((3, 2, 2, 2))?,
                ))
            })
            .collect::<Result<_>>()?;
        let mask = Tensor::arange(0f32, 6., &dev)?.reshape((3, 1, 1, 2))?;
        let mut cache = DecoderCache::start(cross_kv.clone(), mask);
        // Input of each row, and what each row must see.
        let check = |cache: &DecoderCache, inputs: &[u32]| -> Result<()> {
            let index = Tensor::new(inputs, &dev)?;
            assert_eq!(cache.rows(), inputs.len());
            for (layer, (k, v)) in cache.layers.iter().zip(&cross_kv) {
                let (ck, cv) = &layer.cross_kv;
                let rows = inputs.len();
                let got_k = crate::models::attention::rows_for(ck, rows)?;
                let got_v = crate::models::attention::rows_for(cv, rows)?;
                let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
                assert_eq!(flat(&got_k)?, flat(&k.index_select(&index, 0)?)?);
                assert_eq!(flat(&got_v)?, flat(&v.index_select(&index, 0)?)?);
            }
            Ok(())
        };
        cache.expand_beams(2, &dev)?;
        assert_eq!(cache.layers[0].cross_kv.0.dim(0)?, 3, "shared, not copied");
        check(&cache, &[0, 0, 1, 1, 2, 2])?;
        // Input 0 finished: its two rows go, the others' beams swap.
        cache.select_rows(&Tensor::new(&[3u32, 2, 4, 5], &dev)?)?;
        assert_eq!(cache.layers[0].cross_kv.0.dim(0)?, 2);
        check(&cache, &[1, 1, 2, 2])?;
        // One row of each input: no longer whole runs, so every row gets its own copy.
        cache.select_rows(&Tensor::new(&[1u32, 2], &dev)?)?;
        assert_eq!(cache.layers[0].cross_kv.0.dim(0)?, 2);
        check(&cache, &[1, 2])?;
        cache.select_rows(&Tensor::new(&[1u32, 1, 0], &dev)?)?;
        check(&cache, &[2, 2, 1])?;
        Ok(())
    }

    /// Appending position by position, across reallocations, a row selection and a cut, holds
    /// what concatenation would.
    #[test]
    fn appends_in_place_like_concatenation() -> Result<()> {
        let dev = Device::Cpu;
        let step = |i: usize| {
            Tensor::arange(0f32, 12., &dev)?
                .affine(1.0, i as f64 * 100.0)?
                .reshape((3, 2, 1, 2))
        };
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let mut cache = KvBuffer::new(4);
        let mut expected: Option<Tensor> = None;
        for i in 0..21 {
            let k = step(i)?;
            let (got_k, got_v) = cache.append(&k, &(&k * 2.0)?)?;
            let want = match expected.take() {
                Some(e) => Tensor::cat(&[&e, &k], 2)?,
                None => k,
            };
            assert_eq!(flat(&got_k)?, flat(&want)?);
            assert_eq!(flat(&got_v)?, flat(&(&want * 2.0)?)?);
            expected = Some(want);
        }
        let expected = expected.unwrap();
        let index = Tensor::new(&[2u32, 0], &dev)?;
        cache.select_rows(&index)?;
        cache.truncate(5);
        let k = step(99)?.index_select(&index, 0)?;
        let (got_k, _) = cache.append(&k, &k)?;
        let kept = expected.index_select(&index, 0)?.narrow(2, 0, 5)?;
        let mut expected = Tensor::cat(&[&kept, &k], 2)?;
        assert_eq!(flat(&got_k)?, flat(&expected)?);
        assert_eq!(cache.len(), 6);
        // Reordered in place (a swap), then appended to, as a gather would have left it.
        let swap = Tensor::new(&[1u32, 0], &dev)?;
        cache.reorder_rows(&swap)?;
        expected = expected.index_select(&swap, 0)?;
        let k = step(98)?.index_select(&index, 0)?;
        let (got_k, _) = cache.append(&k, &k)?;
        expected = Tensor::cat(&[&expected, &k], 2)?;
        assert_eq!(flat(&got_k)?, flat(&expected)?);
        // Past the room a selection leaves, the buffers grow again.
        for i in 0..12 {
            let k = step(200 + i)?.index_select(&index, 0)?;
            let (got_k, _) = cache.append(&k, &k)?;
            expected = Tensor::cat(&[&expected, &k], 2)?;
            assert_eq!(flat(&got_k)?, flat(&expected)?);
        }
        Ok(())
    }
}
