//! A linear layer (`x · Wᵀ + b`, PyTorch's weight layout) for every model family.
//!
//! On x86-64 CPUs with AVX-512 or AVX2+FMA and f32 weights the weight is packed once at load time and multiplied by
//! [`packed_gemm`], which measured 1.5–2x faster than candle's matmul on decoding shapes (see that
//! module). Elsewhere candle's matmul runs; with few rows it computes `(W · xᵀ)ᵀ`, which measured
//! 1.3–1.6x faster than `x · Wᵀ` there, because the `gemm` crate packs its right operand anew on
//! every call. With `--quantize` the weight is quantized at load time (Q8_0: int8 in blocks of 32
//! with an f16 scale each) and multiplied by candle's quantized matmul, which quantizes each input
//! row the same way and takes integer dot products. Where [`packed_gemm`] runs, the int8 weights
//! can also come from a file saved once ([`saved_int8`]), and are recorded for it.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::saved_int8::{Int8Recorder, SavedInt8};
use crate::kernels::packed_gemm::{self, PackedWeight};

/// `--quantize`: the format linear layers are quantized to, and where int8 weights come from.
#[derive(Debug, Clone)]
pub struct Quantize {
    pub format: GgmlDType,
    pub int8: Int8Store,
}

/// Where the int8 weights of [`packed_gemm`] come from, or go.
#[derive(Debug, Clone, Default)]
pub enum Int8Store {
    /// Quantized from the weights as each layer loads.
    #[default]
    AtLoad,
    /// Read from saved int8 weights; a layer they lack is quantized at load.
    Saved(Arc<SavedInt8>),
    /// Quantized at load, and each layer's int8 weights recorded, to be saved.
    Record(Arc<Int8Recorder>),
}

impl Quantize {
    pub fn at_load(format: GgmlDType) -> Self {
        Self {
            format,
            int8: Int8Store::AtLoad,
        }
    }
}

/// At or below this many rows, candle's path uses `(W · xᵀ)ᵀ`.
const FEW_ROWS: usize = 64;

#[derive(Debug, Clone)]
enum Weight {
    Packed {
        weight: PackedWeight,
        bias: Option<Vec<f32>>,
        device: Device,
    },
    Dense {
        weight: Tensor,
        bias: Option<Tensor>,
    },
    Quantized {
        matmul: QMatMul,
        bias: Option<Tensor>,
    },
}

#[derive(Debug, Clone)]
pub struct Linear {
    inner: Weight,
}

impl Linear {
    /// A layer with `weight` (`[out, in]`) as it is, or quantized when `quantize` asks for it.
    /// Q8_0 means int8: on CPUs [`packed_gemm`] runs, int8 panels with a scale per output and
    /// f32 inputs; elsewhere candle's Q8_0 blocks when the input width is a whole number of
    /// blocks (else the weight stays as it is).
    pub fn new(weight: Tensor, bias: Option<Tensor>, quantize: Option<GgmlDType>) -> Result<Self> {
        let packable = weight.device().is_cpu() && packed_gemm::available();
        if packable && (weight.dtype() == DType::F32 || quantize.is_some()) {
            let (n, k) = weight.dims2()?;
            let host = weight
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let weight = match quantize {
                Some(_) => PackedWeight::pack_int8(&host, n, k),
                None => PackedWeight::pack(&host, n, k),
            };
            return Self::packed(weight, bias);
        }
        if let Some(format) = quantize {
            let (_, k) = weight.dims2()?;
            if k % format.block_size() == 0 {
                let weight = weight.to_dtype(DType::F32)?;
                let matmul = QMatMul::from_qtensor(QTensor::quantize(&weight, format)?)?;
                return Ok(Self {
                    inner: Weight::Quantized { matmul, bias },
                });
            }
        }
        Ok(Self {
            inner: Weight::Dense { weight, bias },
        })
    }

    /// The layer `name` (a key of the checkpoint, or of saved int8 weights) of `[out, in]`
    /// `shape`, whose weight `weight` reads unless saved int8 weights have it.
    pub fn named(
        name: &str,
        shape: (usize, usize),
        weight: impl FnOnce() -> Result<Tensor>,
        bias: Option<Tensor>,
        quantize: Option<&Quantize>,
    ) -> Result<Self> {
        let Some(quantize) = quantize else {
            return Self::new(weight()?, bias, None);
        };
        if let Int8Store::Saved(saved) = &quantize.int8 {
            let saved = saved
                .take(name, shape.0, shape.1)
                .filter(|_| packed_gemm::available());
            if let Some(weight) = saved {
                return Self::packed(weight, bias);
            }
        }
        let layer = Self::new(weight()?, bias, Some(quantize.format))?;
        if let (Int8Store::Record(recorder), Weight::Packed { weight, .. }) =
            (&quantize.int8, &layer.inner)
        {
            recorder.record(name, weight);
        }
        Ok(layer)
    }

    fn packed(weight: PackedWeight, bias: Option<Tensor>) -> Result<Self> {
        Ok(Self {
            inner: Weight::Packed {
                weight,
                bias: bias
                    .map(|b| b.to_dtype(DType::F32)?.to_vec1::<f32>())
                    .transpose()?,
                device: Device::Cpu,
            },
        })
    }

    /// The layer at `vb` (`weight` `[out_dim, in_dim]` and `bias`).
    pub fn load(
        in_dim: usize,
        out_dim: usize,
        vb: VarBuilder,
        quantize: Option<&Quantize>,
    ) -> Result<Self> {
        let bias = vb.get(out_dim, "bias")?;
        Self::load_with(in_dim, out_dim, vb, Some(bias), quantize)
    }

    /// The layer at `vb`, which has a weight and no bias.
    pub fn load_unbiased(
        in_dim: usize,
        out_dim: usize,
        vb: VarBuilder,
        quantize: Option<&Quantize>,
    ) -> Result<Self> {
        Self::load_with(in_dim, out_dim, vb, None, quantize)
    }

    fn load_with(
        in_dim: usize,
        out_dim: usize,
        vb: VarBuilder,
        bias: Option<Tensor>,
        quantize: Option<&Quantize>,
    ) -> Result<Self> {
        let name = format!("{}.weight", vb.prefix());
        let weight = || vb.get((out_dim, in_dim), "weight");
        Self::named(&name, (out_dim, in_dim), weight, bias, quantize)
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let in_dim = xs.dim(candle_core::D::Minus1)?;
        let mut shape: Vec<usize> = xs.dims()[..xs.rank() - 1].to_vec();
        let rows: usize = shape.iter().product();
        let flat = xs.reshape((rows, in_dim))?;
        let out = match &self.inner {
            Weight::Packed {
                weight,
                bias,
                device,
            } => {
                let host = flat.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let out = packed_gemm::matmul(&host, rows, weight, bias.as_deref());
                shape.push(weight.out_dim());
                return Tensor::from_vec(out, shape, device)?.to_dtype(xs.dtype());
            }
            Weight::Dense { weight, bias } => {
                let product = if rows <= FEW_ROWS && xs.device().is_cpu() {
                    weight.matmul(&flat.t()?)?.t()?
                } else {
                    flat.matmul(&weight.t()?)?
                };
                shape.push(weight.dim(0)?);
                match bias {
                    // The broadcast add also makes a transposed product contiguous.
                    Some(bias) => product.broadcast_add(bias)?,
                    None => product.contiguous()?,
                }
            }
            Weight::Quantized { matmul, bias } => {
                let dtype = flat.dtype();
                let product = matmul.forward(&flat.to_dtype(DType::F32)?)?;
                shape.push(product.dim(1)?);
                let product = match bias {
                    Some(bias) => product.broadcast_add(&bias.to_dtype(DType::F32)?)?,
                    None => product,
                };
                product.to_dtype(dtype)?
            }
        };
        out.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;

    #[test]
    fn agrees_with_the_definition_for_few_and_many_rows() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1., (70, 33), &dev)?;
        let b = Tensor::randn(0f32, 1., 70, &dev)?;
        let layer = Linear::new(w.clone(), Some(b.clone()), None)?;
        for rows in [3, FEW_ROWS + 5] {
            let x = Tensor::randn(0f32, 1., (rows, 1, 33), &dev)?;
            let expected = x
                .broadcast_mul(&w.unsqueeze(0)?)?
                .sum(D::Minus1)?
                .broadcast_add(&b)?
                .unsqueeze(1)?;
            let got = layer.forward(&x)?;
            assert_eq!(got.dims(), &[rows, 1, 70]);
            let diff = crate::models::max_abs_diff(&got, &expected)?;
            assert!(diff < 1e-4, "{diff}");
        }
        Ok(())
    }
}
