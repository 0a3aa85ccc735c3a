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
    let blocks = block_count(dtype, dims)?;
    let storage = with_block_type(dtype, Filled { blocks, fill })?;
    QTensor::new(QStorage::Cpu(storage), dims.to_vec())
}

/// The number of `dtype` blocks that hold a tensor of shape `dims`.
pub(super) fn block_count(dtype: GgmlDType, dims: &[usize]) -> candle_core::Result<usize> {
    let Some(elems) = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        candle_core::bail!(
            "a tensor of shape {dims:?} has more values than this machine can address"
        );
    };
    if !elems.is_multiple_of(dtype.block_size()) {
        candle_core::bail!(
            "{elems} values do not fill whole {dtype:?} blocks of {}",
            dtype.block_size()
        );
    }
    Ok(elems / dtype.block_size())
}

/// Builds a tensor's storage given the Rust type of its blocks ([`with_block_type`]).
pub(super) trait StorageOf {
    type Storage;
    fn build<T: GgmlType + Send + Sync + 'static>(self) -> candle_core::Result<Self::Storage>;
}

/// `build` called with the block type of `dtype`, once that type is checked to be laid out as
/// GGML's (so that any bytes of the right length are valid blocks).
pub(super) fn with_block_type<B: StorageOf>(
    dtype: GgmlDType,
    build: B,
) -> candle_core::Result<B::Storage> {
    fn checked<T: GgmlType + Send + Sync + 'static, B: StorageOf>(
        dtype: GgmlDType,
        build: B,
    ) -> candle_core::Result<B::Storage> {
        if std::mem::size_of::<T>() != dtype.type_size() {
            candle_core::bail!("{dtype:?} blocks are not laid out as GGML's");
        }
        build.build::<T>()
    }
    match dtype {
        GgmlDType::F32 => checked::<f32, B>(dtype, build),
        GgmlDType::F16 => checked::<f16, B>(dtype, build),
        GgmlDType::BF16 => checked::<bf16, B>(dtype, build),
        GgmlDType::Q4_0 => checked::<BlockQ4_0, B>(dtype, build),
        GgmlDType::Q4_1 => checked::<BlockQ4_1, B>(dtype, build),
        GgmlDType::Q5_0 => checked::<BlockQ5_0, B>(dtype, build),
        GgmlDType::Q5_1 => checked::<BlockQ5_1, B>(dtype, build),
        GgmlDType::Q8_0 => checked::<BlockQ8_0, B>(dtype, build),
        GgmlDType::Q8_1 => checked::<BlockQ8_1, B>(dtype, build),
        GgmlDType::Q2K => checked::<BlockQ2K, B>(dtype, build),
        GgmlDType::Q3K => checked::<BlockQ3K, B>(dtype, build),
        GgmlDType::Q4K => checked::<BlockQ4K, B>(dtype, build),
        GgmlDType::Q5K => checked::<BlockQ5K, B>(dtype, build),
        GgmlDType::Q6K => checked::<BlockQ6K, B>(dtype, build),
        GgmlDType::Q8K => checked::<BlockQ8K, B>(dtype, build),
    }
}

/// Blocks in a vector of their own, their bytes written by `fill`.
struct Filled<F> {
    blocks: usize,
    fill: F,
}

impl<F: FnOnce(&mut [u8]) -> std::io::Result<()>> StorageOf for Filled<F> {
    type Storage = Box<dyn QuantizedType>;

    fn build<T: GgmlType + Send + Sync + 'static>(self) -> candle_core::Result<Self::Storage> {
        let mut data = vec![T::zeros(); self.blocks];
        // SAFETY: GGML's block types are `repr(C)` structs of integers and halves with no
        // padding (their size is GGML's block size, checked by `with_block_type`), so any bytes
        // are valid blocks; the slice covers exactly the vector's elements and is dropped before
        // the vector is used again.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                data.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(data.as_slice()),
            )
        };
        (self.fill)(bytes)?;
        Ok(Box::new(data))
    }
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
