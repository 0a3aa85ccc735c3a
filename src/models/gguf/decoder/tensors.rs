//! Reading a decoder's tensors from a GGUF file, straight into the layouts its kernels use.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::quantized::QMatMul;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::{Kernel, Layer, QLinear, CACHE_GROWTH};
use crate::gguf_reader::ReadAt;
use crate::kernels::ggml::{cpu_qtensor, mapped_qtensor, Q5_0Matrix};
use crate::kernels::mmap::ModelMap;
use crate::models::kv_cache::KvBuffer;
use crate::{Error, Result};

/// Reads named tensors of a GGUF file; shared by the threads that load a model's parts.
pub(super) struct TensorReader<'a, R> {
    pub(super) content: &'a gguf_file::Content,
    pub(super) data: &'a R,
    pub(super) device: &'a Device,
    /// The file mapped into memory, where its tensors are used in place (on the CPU); `None`
    /// reads them into memory of their own.
    pub(super) mapping: Option<Arc<ModelMap>>,
    /// The byte ranges of the mapped tensors that the model keeps using in place ([`Self::keep`]).
    pub(super) in_place: Mutex<Vec<Range<usize>>>,
}

impl<R: ReadAt> TensorReader<'_, R> {
    fn info(&self, name: &str) -> Result<&gguf_file::TensorInfo> {
        self.content
            .tensor_infos
            .get(name)
            .ok_or_else(|| Error::model(format!("GGUF tensor {name}: not in the file")))
    }

    /// Reads the bytes of tensor `name` into `buf`, which holds exactly them.
    fn read_into(&self, name: &str, info: &gguf_file::TensorInfo, buf: &mut [u8]) -> Result<()> {
        let offset = self.content.tensor_data_offset.saturating_add(info.offset);
        self.data.read_exact_at(buf, offset).map_err(|e| {
            Error::model(format!(
                "GGUF tensor {name}: cannot read its {} bytes at offset {offset}: {e}",
                buf.len()
            ))
        })
    }

    /// Where `tensor`'s blocks lie in the mapping, if they do.
    fn mapped_range(&self, tensor: &QTensor) -> Option<Range<usize>> {
        let map = self.mapping.as_ref()?;
        let start = (tensor.data().ok()?.as_ptr() as usize).checked_sub(map.as_ptr() as usize)?;
        let end = start.checked_add(tensor.storage_size_in_bytes())?;
        (end <= map.len()).then_some(start..end)
    }

    /// Records that the model reads `tensor` where the mapping puts it: its pages are faulted in
    /// once the load ends (`Decoder::fault_in_weights`).
    pub(super) fn keep(&self, tensor: &QTensor) {
        if let Some(range) = self.mapped_range(tensor) {
            self.in_place
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(range);
        }
    }

    /// Lets the mapped pages of `tensor` go, once what the model uses was made from it (a
    /// dequantized copy, candle's float weights), so that they do not count in the process's
    /// resident memory beside that copy.
    pub(super) fn let_go(&self, tensor: &QTensor) {
        self.release(self.mapped_range(tensor));
    }

    fn release(&self, range: Option<Range<usize>>) {
        if let (Some(map), Some(range)) = (&self.mapping, range) {
            map.release(range);
        }
    }

    /// A dequantized copy of tensor `name` (norms, biases, factors), its mapped pages let go.
    pub(super) fn dequantized(&self, name: &str) -> Result<Tensor> {
        let tensor = self.get(name)?;
        let values = tensor.dequantize(self.device)?;
        self.let_go(&tensor);
        Ok(values)
    }

    /// The bytes of tensor `name`: borrowed from the mapping, or read.
    fn bytes(&self, name: &str, info: &gguf_file::TensorInfo) -> Result<Cow<'_, [u8]>> {
        let len = Self::byte_len(name, info)?;
        if let Some(map) = &self.mapping {
            let start = self.offset(info);
            if let Some(bytes) = start.and_then(|s| map.get(s..s.checked_add(len)?)) {
                return Ok(Cow::Borrowed(bytes));
            }
        }
        let mut bytes = vec![0; len];
        self.read_into(name, info, &mut bytes)?;
        Ok(Cow::Owned(bytes))
    }

    /// Where tensor `info`'s bytes start in the file, if that is an address of this machine.
    fn offset(&self, info: &gguf_file::TensorInfo) -> Option<usize> {
        let offset = self.content.tensor_data_offset.checked_add(info.offset)?;
        usize::try_from(offset).ok()
    }

    fn byte_len(name: &str, info: &gguf_file::TensorInfo) -> Result<usize> {
        let (elems, dtype) = (info.shape.elem_count(), info.ggml_dtype);
        if !elems.is_multiple_of(dtype.block_size()) {
            return Err(Error::model(format!(
                "GGUF tensor {name}: {elems} values do not fill whole {dtype:?} blocks"
            )));
        }
        Ok(elems / dtype.block_size() * dtype.type_size())
    }

    pub(super) fn get(&self, name: &str) -> Result<QTensor> {
        let info = self.info(name)?;
        if !matches!(self.device, Device::Cpu) {
            let mut bytes = vec![0; Self::byte_len(name, info)?];
            self.read_into(name, info, &mut bytes)?;
            return Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(
                info.ggml_dtype,
                &bytes,
                info.shape.dims().to_vec(),
                self.device,
            )?);
        }
        if let (Some(map), Some(offset)) = (&self.mapping, self.offset(info)) {
            let mapped = mapped_qtensor(info.ggml_dtype, info.shape.dims(), map, offset)
                .map_err(|e| Error::model(format!("GGUF tensor {name}: {e}")))?;
            if let Some(tensor) = mapped {
                return Ok(tensor);
            }
        }
        let mut failed = None;
        let tensor = cpu_qtensor(info.ggml_dtype, info.shape.dims(), |buf| {
            self.read_into(name, info, buf).map_err(|e| {
                failed = Some(e);
                std::io::ErrorKind::Other.into()
            })
        });
        match (tensor, failed) {
            (_, Some(e)) => Err(e),
            (Ok(tensor), None) => Ok(tensor),
            (Err(e), None) => Err(Error::model(format!("GGUF tensor {name}: {e}"))),
        }
    }

    pub(super) fn optional(&self, name: &str) -> Result<Option<QTensor>> {
        if self.content.tensor_infos.contains_key(name) {
            self.get(name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn linear(&self, name: &str) -> Result<QLinear> {
        let weight_name = format!("{name}.weight");
        let bias_name = format!("{name}.bias");
        let bias = if self.content.tensor_infos.contains_key(&bias_name) {
            Some(self.dequantized(&bias_name)?)
        } else {
            None
        };
        let info = self.info(&weight_name)?;
        // Q5_0 weights go from the file's bytes to tarjama's layout, never held as candle's
        // blocks.
        if info.ggml_dtype == GgmlDType::Q5_0 && matches!(self.device, Device::Cpu) {
            if let [n, k] = *info.shape.dims() {
                let bytes = self.bytes(&weight_name, info)?;
                let q5_0 = Q5_0Matrix::from_gguf(&bytes, n, k)?;
                if let Some(q5_0) = q5_0 {
                    // Held in tarjama's layout from now on: the file's pages may go.
                    if let (Some(map), Some(start), Cow::Borrowed(read)) =
                        (&self.mapping, self.offset(info), &bytes)
                    {
                        let len = read.len();
                        drop(bytes);
                        map.release(start..start + len);
                    }
                    return Ok(QLinear {
                        kernel: Kernel::Q5_0(q5_0),
                        bias,
                    });
                }
            }
        }
        let linear = QLinear::candle(self.get(&weight_name)?, bias)?;
        if let Kernel::Candle { weight, matmul } = &linear.kernel {
            match matmul {
                // The quantized blocks are what candle multiplies by (or repacks from).
                QMatMul::QTensor(_) => self.keep(weight),
                // Float weights: candle made its own copy.
                _ => self.let_go(weight),
            }
        }
        Ok(linear)
    }

    pub(super) fn norm(&self, name: &str, eps: f64) -> Result<RmsNorm> {
        let weight = self.get(name)?;
        let mapped = self.mapped_range(&weight);
        let norm = RmsNorm::from_qtensor(weight, eps)?;
        self.release(mapped);
        Ok(norm)
    }

    fn optional_norm(&self, name: &str, eps: f64) -> Result<Option<RmsNorm>> {
        if self.content.tensor_infos.contains_key(name) {
            self.norm(name, eps).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Block `i`, its weights repacked for candle's kernels where they run on the CPU.
    pub(super) fn layer(&self, i: usize, eps: f64) -> Result<Layer> {
        let p = format!("blk.{i}");
        let layer = Layer {
            attn_norm: self.norm(&format!("{p}.attn_norm.weight"), eps)?,
            q: self.linear(&format!("{p}.attn_q"))?,
            k: self.linear(&format!("{p}.attn_k"))?,
            v: self.linear(&format!("{p}.attn_v"))?,
            q_norm: self.optional_norm(&format!("{p}.attn_q_norm.weight"), eps)?,
            k_norm: self.optional_norm(&format!("{p}.attn_k_norm.weight"), eps)?,
            out: self.linear(&format!("{p}.attn_output"))?,
            ffn_norm: self.norm(&format!("{p}.ffn_norm.weight"), eps)?,
            gate: self.linear(&format!("{p}.ffn_gate"))?,
            up: self.linear(&format!("{p}.ffn_up"))?,
            down: self.linear(&format!("{p}.ffn_down"))?,
            cache: KvBuffer::new(CACHE_GROWTH),
        };
        if matches!(self.device, Device::Cpu) {
            for linear in [
                &layer.q,
                &layer.k,
                &layer.v,
                &layer.out,
                &layer.gate,
                &layer.up,
                &layer.down,
            ] {
                linear.prepare()?;
            }
        }
        Ok(layer)
    }
}

/// What one of the parallel load tasks of [`super::Decoder::from_gguf`] reads.
pub(super) enum Part {
    Embeddings(QTensor),
    Output(Option<QTensor>),
    Layer(Box<Layer>),
}
