//! Quantized tensors whose bytes are read straight into the blocks candle keeps them in.
//!
//! candle's GGUF reader reads a tensor into a byte buffer, then copies it into a vector of
//! blocks: two passes over every weight, and twice the memory while a tensor loads. Reading into
//! the blocks' own buffer makes it one.

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType,
};
use candle_core::quantized::{GgmlDType, QStorage, QTensor, QuantizedType};
use half::{bf16, f16};

/// A CPU tensor of type `dtype` and shape `dims` whose bytes, in GGML's layout, `fill` writes.
pub fn cpu_qtensor(
    dtype: GgmlDType,
    dims: &[usize],
    fill: impl FnOnce(&mut [u8]) -> std::io::Result<()>,
) -> candle_core::Result<QTensor> {
    let elems: usize = dims.iter().product();
    if !elems.is_multiple_of(dtype.block_size()) {
        candle_core::bail!(
            "{elems} values do not fill whole {dtype:?} blocks of {}",
            dtype.block_size()
        );
    }
    let blocks = elems / dtype.block_size();
    let storage = match dtype {
        GgmlDType::F32 => filled::<f32>(blocks, dtype, fill)?,
        GgmlDType::F16 => filled::<f16>(blocks, dtype, fill)?,
        GgmlDType::BF16 => filled::<bf16>(blocks, dtype, fill)?,
        GgmlDType::Q4_0 => filled::<BlockQ4_0>(blocks, dtype, fill)?,
        GgmlDType::Q4_1 => filled::<BlockQ4_1>(blocks, dtype, fill)?,
        GgmlDType::Q5_0 => filled::<BlockQ5_0>(blocks, dtype, fill)?,
        GgmlDType::Q5_1 => filled::<BlockQ5_1>(blocks, dtype, fill)?,
        GgmlDType::Q8_0 => filled::<BlockQ8_0>(blocks, dtype, fill)?,
        GgmlDType::Q8_1 => filled::<BlockQ8_1>(blocks, dtype, fill)?,
        GgmlDType::Q2K => filled::<BlockQ2K>(blocks, dtype, fill)?,
        GgmlDType::Q3K => filled::<BlockQ3K>(blocks, dtype, fill)?,
        GgmlDType::Q4K => filled::<BlockQ4K>(blocks, dtype, fill)?,
        GgmlDType::Q5K => filled::<BlockQ5K>(blocks, dtype, fill)?,
        GgmlDType::Q6K => filled::<BlockQ6K>(blocks, dtype, fill)?,
        GgmlDType::Q8K => filled::<BlockQ8K>(blocks, dtype, fill)?,
    };
    QTensor::new(QStorage::Cpu(storage), dims.to_vec())
}

fn filled<T: GgmlType + Send + Sync + 'static>(
    blocks: usize,
    dtype: GgmlDType,
    fill: impl FnOnce(&mut [u8]) -> std::io::Result<()>,
) -> candle_core::Result<Box<dyn QuantizedType>> {
    if std::mem::size_of::<T>() != dtype.type_size() {
        candle_core::bail!("{dtype:?} blocks are not laid out as GGML's");
    }
    let mut data = vec![T::zeros(); blocks];
    // SAFETY: GGML's block types are `repr(C)` structs of integers and halves with no padding
    // (their size is GGML's block size, checked above), so any bytes are valid blocks; the slice
    // covers exactly the vector's elements and is dropped before the vector is used again.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            data.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(data.as_slice()),
        )
    };
    fill(bytes)?;
    Ok(Box::new(data))
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;
    use candle_core::{Device, Tensor};

    #[test]
    fn the_blocks_are_the_bytes_given() {
        let x = Tensor::arange(0f32, 512., &Device::Cpu)
            .unwrap()
            .reshape((2, 256))
            .unwrap();
        for dtype in [
            GgmlDType::F32,
            GgmlDType::Q5_0,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
        ] {
            let q = candle_core::quantized::QTensor::quantize(&x, dtype).unwrap();
            let bytes = q.data().unwrap();
            let ours = super::cpu_qtensor(dtype, &[2, 256], |buf| {
                buf.copy_from_slice(&bytes);
                Ok(())
            })
            .unwrap();
            assert_eq!(ours.data().unwrap(), bytes, "{dtype:?}");
            assert_eq!(ours.shape().dims(), [2, 256]);
        }
        let short = super::cpu_qtensor(GgmlDType::Q8_0, &[2, 32], |_| {
            Err(std::io::ErrorKind::UnexpectedEof.into())
        });
        assert!(short.is_err());
    }
}
