//! Quantized tensors whose blocks stay where they lie in a GGUF file mapped into memory.
//!
//! candle's CPU tensors own their blocks, so every weight used to be copied out of the file at
//! each load, into fresh memory. llama.cpp multiplies by the weights where its mapping of the
//! file puts them instead: a load costs no copy, and the pages are the page cache's, shared by
//! every process that runs the model and still in memory from the last run. On VMs whose host
//! takes back the memory a guest frees, faulting fresh memory in was most of a load (see the
//! README's Performance section). candle lets a tensor's storage be any [`QuantizedType`], so
//! this one reads its blocks from the mapping.

use std::marker::PhantomData;
use std::sync::Arc;

use candle_core::quantized::k_quants::{self, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor, QuantizedType};
use candle_core::CpuStorage;
use half::f16;

use super::filled::{block_count, with_block_type, StorageOf};
use crate::kernels::mmap::ModelMap;

/// The `dtype` tensor of shape `dims` whose blocks start `offset` bytes into `map`, used in
/// place; `None` where those bytes are not aligned for the block type (GGUF aligns tensor data
/// to 32 bytes unless a file says otherwise, more than any block type needs): the caller then
/// copies them.
pub fn mapped_qtensor(
    dtype: GgmlDType,
    dims: &[usize],
    map: &Arc<ModelMap>,
    offset: usize,
) -> candle_core::Result<Option<QTensor>> {
    let blocks = block_count(dtype, dims)?;
    let end = blocks
        .checked_mul(dtype.type_size())
        .and_then(|bytes| bytes.checked_add(offset));
    if end.is_none_or(|end| end > map.len()) {
        candle_core::bail!(
            "{blocks} {dtype:?} blocks at offset {offset} run past the end of the {}-byte file",
            map.len()
        );
    }
    let in_place = InPlace {
        map: map.clone(),
        offset,
        blocks,
    };
    match with_block_type(dtype, in_place)? {
        Some(storage) => Ok(Some(QTensor::new(QStorage::Cpu(storage), dims.to_vec())?)),
        None => Ok(None),
    }
}

/// Where a tensor's blocks are: checked, when built, to lie within the mapping and be aligned.
struct InPlace {
    map: Arc<ModelMap>,
    offset: usize,
    blocks: usize,
}

impl StorageOf for InPlace {
    type Storage = Option<Box<dyn QuantizedType>>;

    fn build<T: GgmlType + Send + Sync + 'static>(self) -> candle_core::Result<Self::Storage> {
        let start = self.map.as_ptr().wrapping_add(self.offset);
        if !(start as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return Ok(None);
        }
        Ok(Some(Box::new(MappedBlocks::<T> {
            map: self.map,
            offset: self.offset,
            blocks: self.blocks,
            block: PhantomData,
        })))
    }
}

/// `blocks` blocks of type `T` at `offset` in `map`, aligned for `T` and within the mapping
/// (both checked by [`InPlace::build`], the only place that makes one).
struct MappedBlocks<T> {
    map: Arc<ModelMap>,
    offset: usize,
    blocks: usize,
    block: PhantomData<T>,
}

impl<T: GgmlType> MappedBlocks<T> {
    fn as_slice(&self) -> &[T] {
        // SAFETY: the range lies within the mapping and is aligned for `T` (see the struct);
        // GGML's block types are `repr(C)` structs of integers and halves whose size is GGML's
        // block size (checked by `with_block_type`), so any bytes are valid blocks; the mapping
        // is read-only and lives as long as `self` (see `mmap::ModelMap`).
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(self.offset).cast::<T>(), self.blocks)
        }
    }
}

impl<T: GgmlType + Send + Sync> QuantizedType for MappedBlocks<T> {
    fn dtype(&self) -> GgmlDType {
        T::DTYPE
    }

    fn matmul_t(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[f32],
        dst: &mut [f32],
    ) -> candle_core::Result<()> {
        k_quants::matmul(mkn, lhs, self.as_slice(), dst)
    }

    fn matmul_t_f16(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[f16],
        dst: &mut [f16],
    ) -> candle_core::Result<()> {
        k_quants::matmul_f16(mkn, lhs, self.as_slice(), dst)
    }

    /// The rows `ids` of a `[rows, hidden]` table, as candle's own storage gives them.
    fn embedding(
        &self,
        ids: &[u32],
        rows: usize,
        hidden: usize,
    ) -> candle_core::Result<CpuStorage> {
        if !hidden.is_multiple_of(T::BLCK_SIZE) || self.blocks != rows * (hidden / T::BLCK_SIZE) {
            candle_core::bail!(
                "a table of {} {:?} blocks has no {rows} rows of {hidden}",
                self.blocks,
                T::DTYPE
            );
        }
        let row_blocks = hidden / T::BLCK_SIZE;
        let blocks = self.as_slice();
        let mut out = vec![0f32; ids.len() * hidden];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
            let row = id as usize;
            if row >= rows {
                candle_core::bail!("embedding id {row} is out of range for {rows} rows");
            }
            T::to_float(&blocks[row * row_blocks..(row + 1) * row_blocks], dst);
        }
        Ok(CpuStorage::F32(out))
    }

    fn dequantize(&self, elem_count: usize) -> candle_core::Result<CpuStorage> {
        let mut out = vec![0f32; elem_count];
        T::to_float(self.as_slice(), &mut out);
        Ok(CpuStorage::F32(out))
    }

    fn storage_size_in_bytes(&self) -> usize {
        std::mem::size_of_val(self.as_slice())
    }

    fn as_ptr(&self) -> *const u8 {
        self.as_slice().as_ptr().cast()
    }

    fn block_size(&self) -> usize {
        T::BLCK_SIZE
    }

    /// candle quantizes only into storage it has just made, never into a loaded tensor's.
    fn from_float(&mut self, _: &[f32]) {
        unreachable!("a mapped GGUF tensor is read-only")
    }

    fn from_float_imatrix(&mut self, _: &[f32], _: &[f32], _: usize) {
        unreachable!("a mapped GGUF tensor is read-only")
    }

    fn size(&self) -> usize {
        self.storage_size_in_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::mapped_qtensor;

    /// A file of `pad` zero bytes, then `bytes`, mapped.
    fn mapped_file(pad: usize, bytes: &[u8]) -> Arc<crate::kernels::mmap::ModelMap> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![0; pad]).unwrap();
        file.write_all(bytes).unwrap();
        Arc::new(crate::kernels::mmap::ModelMap::new(&file).unwrap())
    }

    #[test]
    fn mapped_tensors_are_the_file_s_bytes_in_place_and_compute_as_owned_ones() {
        // 32 weight rows: enough for candle's repacked x86 kernels (16-row tiles) to take them.
        let w = Tensor::randn(0f32, 1., (32, 256), &Device::Cpu).unwrap();
        let inputs = [1, 3, 8].map(|m| Tensor::randn(0f32, 1., (m, 256), &Device::Cpu).unwrap());
        for dtype in [
            GgmlDType::F32,
            GgmlDType::Q8_0,
            GgmlDType::Q5_0,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
        ] {
            let owned = QTensor::quantize(&w, dtype).unwrap();
            let bytes = owned.data().unwrap().into_owned();
            let map = mapped_file(64, &bytes);
            let mapped = mapped_qtensor(dtype, &[32, 256], &map, 64)
                .unwrap()
                .unwrap();
            let data = mapped.data().unwrap();
            assert_eq!(*data, *bytes, "{dtype:?}");
            assert_eq!(data.as_ptr(), map[64..].as_ptr(), "{dtype:?}: not in place");
            assert_eq!(mapped.shape().dims(), [32, 256]);
            let results = [owned, mapped].map(|t| {
                let t = Arc::new(t);
                let matmul = QMatMul::from_arc(t.clone()).unwrap();
                let products: Vec<_> = inputs
                    .iter()
                    .map(|x| matmul.forward(x).unwrap().to_vec2::<f32>().unwrap())
                    .collect();
                let fused = QTensor::gemv_fused_shared_lhs(&[t.as_ref(), t.as_ref()], &inputs[0])
                    .unwrap()
                    .map(|ys| {
                        ys.iter()
                            .map(|y| y.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                            .collect::<Vec<_>>()
                    });
                let ids = Tensor::new(&[31u32, 0, 5], &Device::Cpu).unwrap();
                let rows = t.embedding(&ids).unwrap().to_vec2::<f32>().unwrap();
                let table = t
                    .dequantize(&Device::Cpu)
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                (products, fused, rows, table)
            });
            assert_eq!(results[0], results[1], "{dtype:?}");
        }
    }

    #[test]
    fn misaligned_blocks_are_copied_and_blocks_past_the_end_refused() {
        let w = Tensor::randn(0f32, 1., (2, 64), &Device::Cpu).unwrap();
        let bytes = QTensor::quantize(&w, GgmlDType::F32)
            .unwrap()
            .data()
            .unwrap()
            .into_owned();
        let map = mapped_file(3, &bytes);
        assert!(mapped_qtensor(GgmlDType::F32, &[2, 64], &map, 3)
            .unwrap()
            .is_none());
        let past = mapped_qtensor(GgmlDType::F32, &[2, 64], &map, 4).unwrap_err();
        assert!(past.to_string().contains("run past the end"), "{past}");
        let huge = mapped_qtensor(GgmlDType::F32, &[usize::MAX / 2, 2], &map, 4);
        assert!(huge.is_err());
    }
}
