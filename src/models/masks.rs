//! Additive attention masks shared by the encoder-decoder families.

use candle_core::{DType, Device, Result, Tensor};

/// The value masked scores get: the dtype's most negative finite number, as transformers
/// uses, so that a fully masked row still has a defined softmax.
pub fn mask_value(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.389_531_389_251_535_5e38,
        _ => f32::MIN as f64,
    }
}

/// Additive mask `[rows, 1, 1, len]` from a `[rows, len]` 0/1 attention mask.
pub fn padding_mask(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (rows, len) = attention_mask.dims2()?;
    let keep = attention_mask.to_dtype(DType::F32)?;
    // (1 - mask) * min, computed in f32 and exact after the cast since it is 0 or min.
    let mask = ((keep - 1.0)? * (-mask_value(dtype)))?;
    mask.reshape((rows, 1, 1, len))?.to_dtype(dtype)
}

/// Causal mask `[1, 1, len, past + len]` for `len` new queries after `past` cached positions;
/// `None` for a single query, which may see everything.
pub fn causal_mask(
    len: usize,
    past: usize,
    dtype: DType,
    device: &Device,
) -> Result<Option<Tensor>> {
    if len == 1 {
        return Ok(None);
    }
    let total = past + len;
    let min = mask_value(dtype) as f32;
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| (0..total).map(move |j| if j > past + i { min } else { 0.0 }))
        .collect();
    Ok(Some(
        Tensor::from_vec(mask, (1, 1, len, total), device)?.to_dtype(dtype)?,
    ))
}
