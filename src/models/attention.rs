//! Attention of one new position over the key/value cache, on the CPU, for generating tokens.
//!
//! Written here because the general path (a matmul over the strided cache, a softmax, a second
//! matmul, and the copies between them, each its own parallel operation) cost about 5 ms per
//! generated token at 1000 cached positions on a 2-core machine, several times its arithmetic;
//! this makes one pass per query head, with the heads spread over candle's thread pool.

use candle_core::{Device, Storage, Tensor};

use crate::{Error, Result};

/// `q` is `[1, heads, 1, head_dim]`; `keys` and `values` are `[1, kv_heads, len, head_dim]` views
/// of the cache (rows of `head_dim` contiguous); query head `h` attends with key/value head
/// `h / (heads / kv_heads)`. Returns `[1, 1, heads * head_dim]` f32, or `None` where this path
/// does not apply (not the CPU, not f32), for the general one to run.
pub(super) fn attend_one(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    scale: f32,
) -> Result<Option<Tensor>> {
    if !matches!(q.device(), Device::Cpu) || q.dtype() != candle_core::DType::F32 {
        return Ok(None);
    }
    let (_, heads, _, dim) = q.dims4()?;
    let (_, kv_heads, len, _) = keys.dims4()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
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
        return Err(Error::model(format!(
            "{heads} attention heads cannot share {kv_heads} key/value heads"
        )));
    }
    let groups = heads / kv_heads;
    let mut out = vec![0f32; heads * dim];
    let out_ptr = SendPtr(out.as_mut_ptr());
    let head = |h: usize| {
        let kv = h / groups;
        let key = |p: usize| {
            let at = k_layout.start_offset() + kv * k_stride[1] + p * dim;
            &k_data[at..at + dim]
        };
        let value = |p: usize| {
            let at = v_layout.start_offset() + kv * v_stride[1] + p * dim;
            &v_data[at..at + dim]
        };
        let query = &q[h * dim..(h + 1) * dim];
        let mut weights: Vec<f32> = (0..len).map(|p| dot(query, key(p)) * scale).collect();
        let max = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0f32;
        for w in &mut weights {
            *w = (*w - max).exp();
            total += *w;
        }
        let mut context = vec![0f32; dim];
        for (p, w) in weights.iter().enumerate() {
            let w = w / total;
            for (c, v) in context.iter_mut().zip(value(p)) {
                *c += w * v;
            }
        }
        let out_ptr = &out_ptr;
        // SAFETY: head `h` writes only its own `dim` outputs, within `out`.
        unsafe { std::ptr::copy_nonoverlapping(context.as_ptr(), out_ptr.0.add(h * dim), dim) };
    };
    candle_core::utils::barrier_pool().execute_chunked(heads, |range| range.for_each(head));
    Ok(Some(Tensor::from_vec(
        out,
        (1, 1, heads * dim),
        &Device::Cpu,
    )?))
}

struct SendPtr(*mut f32);
// SAFETY: only used for disjoint writes, see `attend_one`.
unsafe impl Sync for SendPtr {}

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
    /// with grouped key/value heads.
    #[test]
    fn agrees_with_matmul_softmax_matmul() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (heads, kv_heads, dim, cap, len) = (6, 2, 20, 40, 33);
        let q = Tensor::randn(0f32, 1., (1, heads, 1, dim), &dev)?;
        let k_buf = Tensor::randn(0f32, 1., (1, kv_heads, cap, dim), &dev)?;
        let v_buf = Tensor::randn(0f32, 1., (1, kv_heads, cap, dim), &dev)?;
        let (k, v) = (k_buf.narrow(2, 0, len)?, v_buf.narrow(2, 0, len)?);
        let scale = 1.0 / (dim as f32).sqrt();
        let got = attend_one(&q, &k, &v, scale)
            .unwrap()
            .expect("the CPU path");

        let groups = heads / kv_heads;
        let q_grouped = q.reshape((1, kv_heads, groups, dim))?;
        let probs =
            candle_nn::ops::softmax_last_dim(&(q_grouped.matmul(&k.t()?)? * scale as f64)?)?;
        let want = probs
            .matmul(&v.contiguous()?)?
            .reshape((1, 1, heads * dim))?;
        let diff = crate::models::max_abs_diff(&got, &want)?;
        assert!(diff < 1e-5, "differs by {diff}");
        Ok(())
    }
}
