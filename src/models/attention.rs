//! Attention of one new position per row over the key/value cache, on the CPU, for decoding:
//! the chat models' generation and the encoder-decoders' self- and cross-attention.
//!
//! Written here because the general path (a matmul over the strided cache, a softmax, a second
//! matmul, and the copies between them, each its own operation) cost about 5 ms per generated
//! token at 1000 cached positions on a 2-core machine, several times its arithmetic, and in
//! beam search on the opus-mt shape (32 rows of 8 heads) it was 8% of the time; this makes one
//! pass per row and query head, spread over candle's thread pool.

use candle_core::{DType, Device, Storage, Tensor};

use crate::kernels::attention::{Group, MAX_HEADS_TOGETHER};

/// `q` is `[rows, heads, 1, head_dim]`; `keys` and `values` are `[rows, kv_heads, len,
/// head_dim]` views of the cache (rows of `head_dim` contiguous); query head `h` attends with
/// key/value head `h / (heads / kv_heads)`; `mask` is an additive `[rows, 1, 1, len]`. Returns
/// `[rows, 1, heads * head_dim]` f32, or `None` where this path does not apply (not the CPU, not
/// f32, another layout), for the general one to run.
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
    let (_, kv_heads, len, _) = keys.dims4()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    // One additive value per row and position; a mask with more (T5's position bias per
    // head) takes the general path.
    let mask = match mask.map(|m| (m.dtype(), m.broadcast_as((rows, 1, 1, len)))) {
        Some((DType::F32, Ok(mask))) => Some(mask.flatten_all()?.to_vec1::<f32>()?),
        Some(_) => return Ok(None),
        None => None,
    };
    let (k_storage, k_layout) = keys.storage_and_layout();
    let (v_storage, v_layout) = values.storage_and_layout();
    let (Storage::Cpu(k_cpu), Storage::Cpu(v_cpu)) = (&*k_storage, &*v_storage) else {
        return Ok(None);
    };
    let (k_data, v_data) = (k_cpu.as_slice::<f32>()?, v_cpu.as_slice::<f32>()?);
    let (k_stride, v_stride) = (k_layout.stride(), v_layout.stride());
    if k_stride[3] != 1 || v_stride[3] != 1 || k_stride[2] != dim || v_stride[2] != dim {
        return Ok(None);
    }
    if heads % kv_heads != 0 {
        candle_core::bail!("{heads} attention heads cannot share {kv_heads} key/value heads");
    }
    let groups = heads / kv_heads;
    // Query heads that share a key/value head are taken together, so that each cached key and
    // value is read once for all of them (Qwen2.5 0.5B: 7 query heads per key/value head), as
    // long as that still leaves a task per thread.
    let threads = candle_core::utils::barrier_pool().n_workers() + 1;
    let together = (1..=groups.min(MAX_HEADS_TOGETHER))
        .rev()
        .find(|&g| groups % g == 0 && rows * kv_heads * (groups / g) >= threads)
        .unwrap_or(1);
    let mut out = vec![0f32; rows * heads * dim];
    crate::kernels::parallel::for_each_chunk_mut(&mut out, together * dim, |task, context| {
        let first_head = task * together;
        let (row, kv) = (first_head / heads, first_head % heads / groups);
        fn cache<'a>(data: &'a [f32], layout: &candle_core::Layout, at: [usize; 3]) -> &'a [f32] {
            let [row, kv, len_dim] = at;
            let start = layout.start_offset() + row * layout.stride()[0] + kv * layout.stride()[1];
            &data[start..start + len_dim]
        }
        let group = Group {
            queries: &q[first_head * dim..(first_head + together) * dim],
            keys: cache(k_data, k_layout, [row, kv, len * dim]),
            values: cache(v_data, v_layout, [row, kv, len * dim]),
            mask: mask.as_ref().map(|m| &m[row * len..(row + 1) * len]),
            dim,
            scale,
        };
        group.attend(context);
    });
    Ok(Some(Tensor::from_vec(
        out,
        (rows, 1, heads * dim),
        &Device::Cpu,
    )?))
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
}
