//! What half-precision models need so that an overflow does not turn every later value into
//! NaN, as transformers guards against it.

use candle_core::{DType, Tensor};

/// transformers' f16 guard after every T5 sub-layer and every BART-family encoder layer: if
/// anything overflowed to ±inf, clamp the hidden states to `f16::MAX - 1000` so the next layer
/// norm stays finite. Without inf, T5's reference clamps to `f16::MAX` and BART's does nothing;
/// neither changes a value, so that case is skipped. bf16 and f32 have the range not to need it.
pub(crate) fn clamp_f16(xs: Tensor) -> candle_core::Result<Tensor> {
    if xs.dtype() != DType::F16 {
        return Ok(xs);
    }
    let largest = xs
        .abs()?
        .max_all()?
        .to_dtype(DType::F32)?
        .to_scalar::<f32>()?;
    if largest.is_infinite() {
        let limit = 65504.0 - 1000.0;
        xs.clamp(-limit, limit)
    } else {
        Ok(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn f16_clamp_only_acts_on_overflow() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let finite = Tensor::new(&[65504f32, -3.0], &dev)?.to_dtype(DType::F16)?;
        let kept = clamp_f16(finite.clone())?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        assert_eq!(kept, [65504.0, -3.0]);
        let overflow = Tensor::new(&[f32::INFINITY, 65504.0, f32::NEG_INFINITY], &dev)?;
        let clamped = clamp_f16(overflow.to_dtype(DType::F16)?)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        // 64504 is not representable in f16; the clamp bound rounds to 64512.
        assert!(
            clamped
                .iter()
                .all(|v| v.abs() < 65504.0 && v.abs() > 64000.0),
            "{clamped:?}"
        );
        Ok(())
    }
}
