//! Attention of one new position per row over the key/value cache, on the CPU, for decoding:
//! the chat models' generation and the encoder-decoders' self- and cross-attention.
//!
//! Written here because the general path (a matmul over the strided cache, a softmax, a second
//! matmul, and the copies between them, each its own operation) cost about 5 ms per generated
//! token at 1000 cached positions on a 2-core machine, several times its arithmetic, and in
//! beam search on the opus-mt shape (32 rows of 8 heads) it was 8% of the time; this makes one
//! pass per row and query head, spread over candle's thread pool.

use candle_core::{DType, Device, Storage, Tensor};

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
    let mut out = vec![0f32; rows * heads * dim];
    crate::parallel::for_each_chunk_mut(&mut out, dim, |row_head, context| {
        let (row, h) = (row_head / heads, row_head % heads);
        let kv = h / groups;
        let key = |p: usize| {
            let at = k_layout.start_offset() + row * k_stride[0] + kv * k_stride[1] + p * dim;
            &k_data[at..at + dim]
        };
        let value = |p: usize| {
            let at = v_layout.start_offset() + row * v_stride[0] + kv * v_stride[1] + p * dim;
            &v_data[at..at + dim]
        };
        let query = &q[row_head * dim..(row_head + 1) * dim];
        let mut weights: Vec<f32> = (0..len).map(|p| dot(query, key(p)) * scale).collect();
        if let Some(mask) = &mask {
            for (w, m) in weights.iter_mut().zip(&mask[row * len..(row + 1) * len]) {
                *w += m;
            }
        }
        let max = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total = crate::exp::exp_in_place(&mut weights, max);
        for (p, w) in weights.iter().enumerate() {
            let w = w / total;
            for (c, v) in context.iter_mut().zip(value(p)) {
                *c += w * v;
            }
        }
    });
    Ok(Some(Tensor::from_vec(
        out,
        (rows, 1, heads * dim),
        &Device::Cpu,
    )?))
}

/// A dot product in eight independent lanes, which the compiler turns into vector
/// multiply-adds (one running sum would have to add in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same result as the general path (matmul, softmax, matmul) on a strided cache view,
    /// with grouped key/value heads, several rows and a padding mask.
    #[test]
    fn agrees_with_matmul_softmax_matmul() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (rows, heads, kv_heads, dim, cap, len) = (3, 6, 2, 20, 40, 33);
        let q = Tensor::randn(0f32, 1., (rows, heads, 1, dim), &dev)?;
        let k_buf = Tensor::randn(0f32, 1., (rows, kv_heads, cap, dim), &dev)?;
        let v_buf = Tensor::randn(0f32, 1., (rows, kv_heads, cap, dim), &dev)?;
        let (k, v) = (k_buf.narrow(2, 0, len)?, v_buf.narrow(2, 0, len)?);
        let keep: Vec<u32> = (0..rows * len)
            .map(|i| u32::from(i % len < len - 5 * (i / len)))
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
