//! Attention of one new position per row over the key/value cache, on the CPU, for decoding:
//! the chat models' generation and the encoder-decoders' self- and cross-attention; and of a
//! chat model's prompt, position by position over its own prefix.
//!
//! Written here because the general path (a matmul over the strided cache, a softmax, a second
//! matmul, and the copies between them, each its own operation) cost about 5 ms per generated
//! token at 1000 cached positions on a 2-core machine, several times its arithmetic, and in
//! beam search on the opus-mt shape (32 rows of 8 heads) it was 8% of the time; this makes one
//! pass per row and query head, spread over candle's thread pool.

use candle_core::{DType, Device, Layout, Storage, Tensor};

use crate::kernels::attention::{Group, MAX_HEADS_TOGETHER};

/// `q` is `[rows, heads, 1, head_dim]`; `keys` and `values` are `[kv_rows, kv_heads, len,
/// head_dim]` views of the cache (rows of `head_dim` contiguous); query head `h` attends with
/// key/value head `h / (heads / kv_heads)`, and query row `r` with key/value row
/// `r / (rows / kv_rows)` (the beams of one input share its cross-attention keys/values, and
/// then its mask: only the first row's of each is read); `mask` is an additive
/// `[rows, 1, 1, len]`. Returns `[rows, 1, heads * head_dim]` f32, or `None` where this path does
/// not apply (not the CPU, not f32, another layout), for the general one to run (after
/// [`rows_for`]).
pub fn attend_one(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    mask: Option<&Tensor>,
    scale: f32,
) -> candle_core::Result<Option<Tensor>> {
    if !matches!(q.device(), Device::Cpu) || q.dtype() != DType::F32 || q.dim(2)? != 1 {
        return Ok(None);
    }
    let (rows, heads, _, dim) = q.dims4()?;
    let (kv_rows, kv_heads, len, _) = keys.dims4()?;
    // One additive value per row and position; a mask with more (T5's position bias per
    // head) takes the general path.
    let mask = match mask.map(|m| (m.dtype(), m.broadcast_as((rows, 1, 1, len)))) {
        Some((DType::F32, Ok(mask))) => Some(mask.flatten_all()?.to_vec1::<f32>()?),
        Some(_) => return Ok(None),
        None => None,
    };
    if rows == 0 || kv_rows == 0 {
        // Nothing to attend from or to: the general path gives the empty or masked result.
        return Ok(None);
    }
    if heads % kv_heads != 0 || rows % kv_rows != 0 {
        candle_core::bail!(
            "{rows} rows of {heads} attention heads cannot share {kv_rows} rows of {kv_heads} \
             key/value heads"
        );
    }
    let (share, groups) = (rows / kv_rows, heads / kv_heads);
    // The queries of each key/value row and head together: `[kv_rows, kv_heads, share, groups]`
    // (without shared rows, the order they come in).
    let q = if share == 1 {
        q.flatten_all()?
    } else {
        q.reshape((kv_rows, share, kv_heads, groups, dim))?
            .transpose(1, 2)?
            .flatten_all()?
    };
    let q = q.to_vec1::<f32>()?;
    let per_unit = share * groups;
    let together = heads_together(per_unit, kv_rows * kv_heads);
    let out = with_cache(keys, values, dim, |cache| {
        let mut out = vec![0f32; rows * heads * dim];
        crate::kernels::parallel::for_each_chunk_mut(&mut out, together * dim, |task, context| {
            let first = task * together;
            let unit = first / per_unit;
            let (kv_row, kv) = (unit / kv_heads, unit % kv_heads);
            let queries = &q[first * dim..(first + together) * dim];
            let row = kv_row * share;
            let mask = mask.as_ref().map(|m| &m[row * len..(row + 1) * len]);
            cache
                .group(queries, (kv_row, kv, len), mask, scale)
                .attend(context);
        });
        out
    })?;
    let Some(out) = out else {
        return Ok(None);
    };
    let out = Tensor::from_vec(out, (kv_rows, kv_heads, share, groups, dim), &Device::Cpu)?;
    let out = if share == 1 {
        out
    } else {
        out.transpose(1, 2)?.contiguous()?
    };
    Ok(Some(out.reshape((rows, 1, heads * dim))?))
}

/// `kv` (`[kv_rows, ..]`, keys or values) with each row repeated to `rows` rows, for the general
/// path where query rows share key/value rows (see [`attend_one`]).
pub fn rows_for(kv: &Tensor, rows: usize) -> candle_core::Result<Tensor> {
    let kv_rows = kv.dim(0)?;
    if kv_rows == rows || kv_rows == 0 || !rows.is_multiple_of(kv_rows) {
        return Ok(kv.clone());
    }
    let share = (rows / kv_rows) as u32;
    let index: Vec<u32> = (0..rows as u32).map(|r| r / share).collect();
    kv.contiguous()?
        .index_select(&Tensor::new(index.as_slice(), kv.device())?, 0)
}

/// Attention of `t` new positions of one sequence, each over the cache up to and including
/// itself (causal), for a chat model's prompt. `q` is `[1, heads, t, head_dim]`; `keys` and
/// `values` are `[1, kv_heads, len, head_dim]` views of the cache whose last `t` positions are
/// the new ones. Returns `[1, t, heads * head_dim]` f32, or `None` where this path does not
/// apply, for the general one (matmul, causal mask, softmax, matmul) to run.
///
/// The general path holds every score at once: at a 1000-token prompt of Qwen2.5 0.5B, 66 MB
/// per layer, three times over (scores, masked, softmax), all fresh memory the kernel zeroes,
/// plus the scores past the diagonal that the mask then discards. Here each position is a
/// generation step's attention over its own prefix, so nothing past it is computed or held.
pub fn attend_causal(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    scale: f32,
) -> candle_core::Result<Option<Tensor>> {
    if !matches!(q.device(), Device::Cpu) || q.dtype() != DType::F32 || q.dim(0)? != 1 {
        return Ok(None);
    }
    let (_, heads, t, dim) = q.dims4()?;
    let (_, kv_heads, len, _) = keys.dims4()?;
    if heads % kv_heads != 0 || t > len {
        candle_core::bail!(
            "causal attention: {heads} heads over {kv_heads} key/value heads, {t} new of {len} \
             positions"
        );
    }
    let start = len - t;
    // By position, so that the heads sharing a key/value head are contiguous.
    let q = q.transpose(1, 2)?.flatten_all()?.to_vec1::<f32>()?;
    let groups = heads / kv_heads;
    let together = heads_together(groups, t * kv_heads);
    let per_position = heads / together;
    with_cache(keys, values, dim, |cache| {
        let mut out = vec![0f32; t * heads * dim];
        // The last positions attend over the longest prefixes: handed out first, so that no
        // thread is left with a long one at the end.
        let width = together * dim;
        crate::kernels::parallel::for_each_chunk_mut_last_first(
            &mut out,
            width,
            |task, context| {
                let (position, first_head) = (task / per_position, task % per_position * together);
                let at = position * heads + first_head;
                let queries = &q[at * dim..(at + together) * dim];
                let head = (0, first_head / groups, start + position + 1);
                cache.group(queries, head, None, scale).attend(context);
            },
        );
        Tensor::from_vec(out, (1, t, heads * dim), &Device::Cpu)
    })?
    .transpose()
}

/// Self-attention of an encoder layer within each sequence of a batch, without padding: `q`,
/// `k` and `v` are `[positions, heads * head_dim]` (or `[batch, len, ..]`, every row full), the
/// rows of sequence `i` the `lengths[i]` after those of the sequences before it, and each
/// position attends over its own sequence's positions alone. Returns the context in the layout
/// of `q`, or `None` where this path does not apply (not the CPU, not f32).
///
/// The general path unpacks the batch to its padded layout, copies each of q, k and v into
/// heads, multiplies, adds the padding mask, takes the softmax over every padded position and
/// multiplies again, each step its own pass over fresh memory; on the tc-big shape's encoder
/// that was about a fifth of its time. Here the positions of one sequence and head are the
/// queries of the grouped kernel (eight at a time, reading the keys and values once for them),
/// and nothing of the padding is computed.
pub fn attend_within(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    lengths: &[usize],
    heads: usize,
    scale: f32,
) -> candle_core::Result<Option<Tensor>> {
    let on_cpu = |t: &Tensor| matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32;
    if !(on_cpu(q) && on_cpu(k) && on_cpu(v)) {
        return Ok(None);
    }
    let width = q.dim(candle_core::D::Minus1)?;
    let positions = q.elem_count() / width.max(1);
    if heads == 0 || width % heads != 0 || lengths.iter().sum::<usize>() != positions {
        candle_core::bail!(
            "self-attention of {positions} positions of width {width} in {heads} heads, \
             sequences of {lengths:?}"
        );
    }
    let dim = width / heads;
    // `[heads, positions, dim]`: each head's positions contiguous.
    let by_head = |t: &Tensor| -> candle_core::Result<Vec<f32>> {
        t.reshape((positions, heads, dim))?
            .transpose(0, 1)?
            .flatten_all()?
            .to_vec1::<f32>()
    };
    let (q_heads, k_heads, v_heads) = (by_head(q)?, by_head(k)?, by_head(v)?);
    let starts = crate::kernels::parallel::run_starts(lengths);
    let runs: Vec<usize> = (0..heads)
        .flat_map(|_| lengths.iter().map(|len| len * dim))
        .collect();
    let mut out = vec![0f32; heads * positions * dim];
    crate::kernels::parallel::for_each_run_mut(&mut out, &runs, |run, context| {
        let (head, sequence) = (run / lengths.len(), run % lengths.len());
        let first = (head * positions + starts[sequence]) * dim;
        let len = lengths[sequence] * dim;
        let (keys, values) = (&k_heads[first..first + len], &v_heads[first..first + len]);
        for (block, context) in context.chunks_mut(MAX_HEADS_TOGETHER * dim).enumerate() {
            let at = first + block * MAX_HEADS_TOGETHER * dim;
            let group = Group {
                queries: &q_heads[at..at + context.len()],
                keys,
                values,
                mask: None,
                dim,
                scale,
            };
            group.attend(context);
        }
    });
    Tensor::from_vec(out, (heads, positions, dim), &Device::Cpu)?
        .transpose(0, 1)?
        .contiguous()?
        .reshape(q.shape())
        .map(Some)
}

/// How many query heads sharing a key/value head to take together: each cached key and value
/// is then read once for all of them (Qwen2.5 0.5B: 7 query heads per key/value head), as long
/// as `units` (rows × key/value heads) times the groups of heads still give a task per thread.
fn heads_together(groups: usize, units: usize) -> usize {
    let threads = candle_core::utils::barrier_pool().n_workers() + 1;
    (1..=groups.min(MAX_HEADS_TOGETHER))
        .rev()
        .find(|&g| groups.is_multiple_of(g) && units * (groups / g) >= threads)
        .unwrap_or(1)
}

/// The f32 data of a key and a value cache view on the CPU whose positions are rows of `dim`
/// contiguous values.
struct CacheData<'a> {
    keys: (&'a [f32], &'a Layout),
    values: (&'a [f32], &'a Layout),
    dim: usize,
}

impl<'a> CacheData<'a> {
    /// `queries` (query heads sharing a key/value head) over the first `len` keys and values
    /// of key/value head `kv` of row `row`.
    fn group<'q>(
        &self,
        queries: &'q [f32],
        (row, kv, len): (usize, usize, usize),
        mask: Option<&'q [f32]>,
        scale: f32,
    ) -> Group<'q>
    where
        'a: 'q,
    {
        let part = |(data, layout): (&'a [f32], &Layout)| -> &'a [f32] {
            let stride = layout.stride();
            let start = layout.start_offset() + row * stride[0] + kv * stride[1];
            &data[start..start + len * self.dim]
        };
        Group {
            queries,
            keys: part(self.keys),
            values: part(self.values),
            mask,
            dim: self.dim,
            scale,
        }
    }
}

/// `f` over the data of `keys` and `values`, or `None` where they are not f32 on the CPU with
/// positions as contiguous rows of `dim` values.
fn with_cache<R>(
    keys: &Tensor,
    values: &Tensor,
    dim: usize,
    f: impl FnOnce(&CacheData<'_>) -> R,
) -> candle_core::Result<Option<R>> {
    let (k_storage, k_layout) = keys.storage_and_layout();
    let (v_storage, v_layout) = values.storage_and_layout();
    let (Storage::Cpu(k_cpu), Storage::Cpu(v_cpu)) = (&*k_storage, &*v_storage) else {
        return Ok(None);
    };
    let rows_of = |l: &Layout| l.stride()[3] == 1 && l.stride()[2] == dim;
    if keys.dtype() != DType::F32
        || values.dtype() != DType::F32
        || !rows_of(k_layout)
        || !rows_of(v_layout)
    {
        return Ok(None);
    }
    let cache = CacheData {
        keys: (k_cpu.as_slice::<f32>()?, k_layout),
        values: (v_cpu.as_slice::<f32>()?, v_layout),
        dim,
    };
    Ok(Some(f(&cache)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same result as the general path (matmul, softmax, matmul) on a strided cache view,
    /// with grouped key/value heads, several rows and a padding mask.
    #[test]
    fn agrees_with_matmul_softmax_matmul() -> candle_core::Result<()> {
        // Groups of 3 and 7 query heads per key/value head, one head per key/value head, and
        // head sizes that are and are not multiples of 8.
        for (rows, heads, kv_heads, dim) in [(3, 6, 2, 20), (1, 14, 2, 64), (2, 4, 4, 12)] {
            agrees_on(rows, heads, kv_heads, dim)?;
        }
        Ok(())
    }

    fn agrees_on(
        rows: usize,
        heads: usize,
        kv_heads: usize,
        dim: usize,
    ) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (cap, len) = (150, 133);
        let q = Tensor::randn(0f32, 1., (rows, heads, 1, dim), &dev)?;
        let k_buf = Tensor::randn(0f32, 1., (rows, kv_heads, cap, dim), &dev)?;
        let v_buf = Tensor::randn(0f32, 1., (rows, kv_heads, cap, dim), &dev)?;
        let (k, v) = (k_buf.narrow(2, 0, len)?, v_buf.narrow(2, 0, len)?);
        let keep: Vec<u32> = (0..rows * len)
            .map(|i| u32::from(i % len < len - 5 * (i / len) * usize::from(rows > 1)))
            .collect();
        let mask = crate::models::masks::padding_mask(
            &Tensor::from_vec(keep, (rows, len), &dev)?,
            DType::F32,
        )?;
        let scale = 1.0 / (dim as f32).sqrt();
        for mask in [None, Some(&mask)] {
            let got = attend_one(&q, &k, &v, mask, scale)?.expect("the CPU path");
            let groups = heads / kv_heads;
            let q_grouped = q.reshape((rows, kv_heads, groups, dim))?;
            let mut scores = (q_grouped.matmul(&k.t()?)? * scale as f64)?;
            if let Some(mask) = mask {
                scores = scores.broadcast_add(mask)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let want = probs
                .matmul(&v.contiguous()?)?
                .reshape((rows, 1, heads * dim))?;
            let diff = crate::models::max_abs_diff(&got, &want)?;
            assert!(diff < 1e-5, "differs by {diff}");
        }
        Ok(())
    }

    /// Rows sharing key/value rows (the beams of one input over its cross-attention cache)
    /// give what each row with its own copy gives, on the fast path and through [`rows_for`]
    /// on the general one, for one and several heads per key/value head.
    #[test]
    fn shared_key_value_rows_agree_with_copies() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (kv_rows, share, heads, kv_heads, dim) in
            [(3, 4, 4, 4, 16), (2, 3, 6, 2, 20), (1, 5, 2, 1, 64)]
        {
            let rows = kv_rows * share;
            let (cap, len) = (40, 33);
            let q = Tensor::randn(0f32, 1., (rows, heads, 1, dim), &dev)?;
            let k_buf = Tensor::randn(0f32, 1., (kv_rows, kv_heads, cap, dim), &dev)?;
            let v_buf = Tensor::randn(0f32, 1., (kv_rows, kv_heads, cap, dim), &dev)?;
            let (k, v) = (k_buf.narrow(2, 0, len)?, v_buf.narrow(2, 0, len)?);
            // Each input's own padding, the same for its rows.
            let keep: Vec<u32> = (0..rows * len)
                .map(|i| u32::from(i % len < len - 3 * (i / len / share)))
                .collect();
            let mask = crate::models::masks::padding_mask(
                &Tensor::from_vec(keep, (rows, len), &dev)?,
                DType::F32,
            )?;
            let (k_rows, v_rows) = (rows_for(&k, rows)?, rows_for(&v, rows)?);
            assert_eq!(k_rows.dims4()?, (rows, kv_heads, len, dim));
            for mask in [None, Some(&mask)] {
                let got = attend_one(&q, &k, &v, mask, 0.3)?.expect("the CPU path");
                let want = attend_one(&q, &k_rows, &v_rows, mask, 0.3)?.expect("the CPU path");
                let diff = crate::models::max_abs_diff(&got, &want)?;
                assert!(diff < 1e-5, "shared rows differ by {diff}");
            }
        }
        Ok(())
    }

    /// Self-attention within packed sequences gives the padded general path's result (matmul,
    /// padding mask, softmax, matmul) at every real position, for sequence lengths past and
    /// below the kernel's group of eight, an empty one, and head sizes that are and are not
    /// multiples of 8.
    #[test]
    fn within_sequences_agrees_with_the_padded_path() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (lengths, heads, dim) in [
            (vec![5usize, 17, 0, 9], 4, 16),
            (vec![1, 8, 33], 3, 20),
            (vec![12], 2, 64),
        ] {
            let (batch, len) = (lengths.len(), *lengths.iter().max().unwrap());
            let width = heads * dim;
            let padded_input = |seed: f64| -> candle_core::Result<Tensor> {
                Tensor::randn(0f32, 1., (batch, len, width), &dev)?.affine(1.0, seed)
            };
            let (q, k, v) = (padded_input(0.0)?, padded_input(0.1)?, padded_input(-0.1)?);
            let keep: Vec<u32> = (0..batch * len)
                .map(|i| u32::from(i % len < lengths[i / len]))
                .collect();
            let keep = Tensor::from_vec(keep, (batch, len), &dev)?;
            let mask = crate::models::masks::padding_mask(&keep, DType::F32)?;
            let heads_of = |t: &Tensor| -> candle_core::Result<Tensor> {
                t.reshape((batch, len, heads, dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let scale = 0.25f32;
            let scores = (heads_of(&q)?.matmul(&heads_of(&k)?.t()?)? * scale as f64)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
            let want = probs
                .matmul(&heads_of(&v)?)?
                .transpose(1, 2)?
                .reshape((batch, len, width))?;
            let packing = crate::models::packing::Packing::new(&keep)?;
            let pack = |t: &Tensor| crate::models::packing::packed(t.clone(), packing.as_ref());
            let (qp, kp, vp) = (pack(&q)?, pack(&k)?, pack(&v)?);
            let got = attend_within(&qp, &kp, &vp, &lengths, heads, scale)?.expect("the CPU path");
            let diff = crate::models::max_abs_diff(&got, &pack(&want)?)?;
            assert!(diff < 1e-5, "{lengths:?}: differs by {diff}");
        }
        Ok(())
    }

    /// A prompt of `t` positions after `start` cached ones, attended position by position,
    /// gives what the general path gives with a causal mask, on a cache view with spare room
    /// (as the key/value buffer has), for grouped and single key/value heads.
    #[test]
    fn causal_agrees_with_masked_matmul() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (heads, kv_heads, dim, start, t) in [
            (14, 2, 64, 0, 37),
            (6, 2, 20, 11, 9),
            (4, 4, 12, 3, 2),
            (14, 2, 64, 40, 300),
        ] {
            let (len, cap) = (start + t, start + t + 17);
            let q = Tensor::randn(0f32, 1., (1, heads, t, dim), &dev)?;
            let k_buf = Tensor::randn(0f32, 1., (1, kv_heads, cap, dim), &dev)?;
            let v_buf = Tensor::randn(0f32, 1., (1, kv_heads, cap, dim), &dev)?;
            let (k, v) = (k_buf.narrow(2, 0, len)?, v_buf.narrow(2, 0, len)?);
            let scale = 1.0 / (dim as f32).sqrt();
            let got = attend_causal(&q, &k, &v, scale)?.expect("the CPU path");

            let groups = heads / kv_heads;
            let mask: Vec<f32> = (0..t)
                .flat_map(|i| {
                    (0..len).map(move |j| {
                        if j > start + i {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            let mask = Tensor::from_vec(mask, (t, len), &dev)?;
            // Each key/value head repeated for the query heads that share it.
            let per_head = |x: &Tensor| {
                x.unsqueeze(2)?
                    .broadcast_as((1, kv_heads, groups, len, dim))?
                    .reshape((1, heads, len, dim))
            };
            let scores = (q.matmul(&per_head(&k)?.t()?)? * scale as f64)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
            let want = probs
                .matmul(&per_head(&v)?)?
                .reshape((1, heads, t, dim))?
                .transpose(1, 2)?
                .reshape((1, t, heads * dim))?;
            let diff = crate::models::max_abs_diff(&got, &want)?;
            assert!(
                diff < 1e-5,
                "{heads}/{kv_heads} heads, {start}+{t}: differs by {diff}"
            );
        }
        Ok(())
    }
}
