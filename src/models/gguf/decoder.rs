//! The decoder-only transformer shared by the Llama, Qwen2 and Qwen3 GGUF families.
//!
//! candle-transformers has a quantized model file per family, but each keeps its key/value
//! cache private and can only clear it. Reusing the cached prompt prefix across the turns of
//! one document (the system prompt and instructions every paragraph's prompt starts with)
//! needs a cache that can be cut back to a given length, so the three families live here in
//! one parametrised implementation, on candle's quantized matmul and rope kernels.

use std::ops::Range;
use std::sync::{Arc, PoisonError};

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_transformers::quantized_nn::RmsNorm;
use rayon::prelude::*;

use super::hparams::Hyperparameters;
use crate::gguf_reader::ReadAt;
use crate::kernels::ggml::{Q5_0Matrix, Q8_0Matrix};
use crate::kernels::mmap::ModelMap;
use crate::models::attention;
use crate::models::kv_cache::KvBuffer;
use crate::{Error, Result};

mod tensors;

use tensors::{Part, TensorReader};

/// How rotary embeddings pair the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RopeStyle {
    /// Adjacent pairs (GGUF Llama: the converter permutes q/k weights for it).
    Interleaved,
    /// First half with second half (Qwen2, Qwen3: GGUF "neox" rope).
    Halves,
}

#[derive(Debug, Clone)]
struct DecoderConfig {
    block_count: usize,
    head_count: usize,
    head_count_kv: usize,
    head_dim: usize,
    rms_norm_eps: f64,
    rope_freq_base: f32,
    rope_style: RopeStyle,
}

impl DecoderConfig {
    /// The settings of `arch` from hyperparameters [`Hyperparameters::read`] has checked.
    fn new(hp: &Hyperparameters, arch: &str) -> Self {
        Self {
            block_count: hp.block_count,
            head_count: hp.head_count,
            head_count_kv: hp.head_count_kv,
            head_dim: hp.head_dim,
            rms_norm_eps: hp.rms_norm_eps,
            rope_freq_base: hp.rope_freq_base,
            rope_style: if arch == "llama" {
                RopeStyle::Interleaved
            } else {
                RopeStyle::Halves
            },
        }
    }
}

/// A quantized linear layer.
struct QLinear {
    kernel: Kernel,
    bias: Option<Tensor>,
}

enum Kernel {
    /// tarjama's own kernels for Q5_0 weights, where they run; the weights are kept only in
    /// their layout.
    Q5_0(Q5_0Matrix),
    /// candle's; the tensor is kept for its fused single-row kernels.
    Candle {
        weight: Arc<QTensor>,
        matmul: QMatMul,
    },
}

impl QLinear {
    fn candle(weight: QTensor, bias: Option<Tensor>) -> Result<Self> {
        let weight = Arc::new(weight);
        let kernel = Kernel::Candle {
            matmul: QMatMul::from_arc(weight.clone())?,
            weight,
        };
        Ok(Self { kernel, bias })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.kernel {
            Kernel::Q5_0(q5_0) => q5_0.matmul(x)?,
            Kernel::Candle { matmul, .. } => matmul.forward(x)?,
        };
        self.add_bias(y)
    }

    /// candle repacks Q4_K and Q6_K weights for its x86 kernels the first time a product of
    /// several rows runs (a sixth of a short prompt's time). Doing it at load, as llama.cpp
    /// repacks at load too, keeps that out of the first prompt.
    fn prepare(&self) -> Result<()> {
        if let Kernel::Candle {
            weight,
            matmul: matmul @ QMatMul::QTensor(_),
        } = &self.kernel
        {
            if matches!(weight.dtype(), GgmlDType::Q4K | GgmlDType::Q6K) {
                let (_, k) = weight.shape().dims2()?;
                matmul.forward(&Tensor::zeros((2, k), DType::F32, &Device::Cpu)?)?;
            }
        }
        Ok(())
    }

    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    fn with_biases<const N: usize>(layers: [&QLinear; N], ys: [Tensor; N]) -> Result<[Tensor; N]> {
        let mut out = Vec::with_capacity(N);
        for (layer, y) in layers.iter().zip(ys) {
            out.push(layer.add_bias(y)?);
        }
        Ok(out
            .try_into()
            .unwrap_or_else(|_| unreachable!("N layers, N outputs")))
    }

    /// Applies several layers to the same input. With Q5_0 weights the input is quantized once
    /// for all of them; one token at a time, candle can do the same in one pass over the input
    /// (a fused kernel) when the weight types allow.
    fn forward_many<const N: usize>(layers: [&QLinear; N], x: &Tensor) -> Result<[Tensor; N]> {
        let q5_0: Option<Vec<&Q5_0Matrix>> = layers
            .iter()
            .map(|l| match &l.kernel {
                Kernel::Q5_0(q5_0) => Some(q5_0),
                Kernel::Candle { .. } => None,
            })
            .collect();
        if let Some(q5_0) = q5_0 {
            let q5_0: [&Q5_0Matrix; N] = q5_0.try_into().unwrap_or_else(|_| unreachable!());
            return Self::with_biases(layers, Q5_0Matrix::matmul_many(q5_0, x)?);
        }
        let quantized: Option<Vec<&QTensor>> = layers
            .iter()
            .map(|l| match &l.kernel {
                Kernel::Candle {
                    weight,
                    matmul: QMatMul::QTensor(_),
                } => Some(weight.as_ref()),
                _ => None,
            })
            .collect();
        if let Some(weights) = quantized {
            if x.dims().iter().rev().skip(1).product::<usize>() == 1 {
                if let Some(ys) = QTensor::gemv_fused_shared_lhs(&weights, x)? {
                    let ys: [Tensor; N] = ys.try_into().unwrap_or_else(|_| unreachable!());
                    return Self::with_biases(layers, ys);
                }
            }
        }
        let mut out = Vec::with_capacity(N);
        for layer in layers {
            out.push(layer.forward(x)?);
        }
        Ok(out.try_into().unwrap_or_else(|_| unreachable!()))
    }
}

/// Positions a chat model's cache grows by, so a long reply does not reallocate every step.
const CACHE_GROWTH: usize = 512;

struct Layer {
    attn_norm: RmsNorm,
    q: QLinear,
    k: QLinear,
    v: QLinear,
    /// Qwen3 normalises each query and key head before rope.
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    out: QLinear,
    ffn_norm: RmsNorm,
    gate: QLinear,
    up: QLinear,
    down: QLinear,
    cache: KvBuffer,
}

/// A mapped GGUF file and the byte ranges of the tensors the model reads where it puts them.
struct MappedWeights {
    map: Arc<ModelMap>,
    ranges: Vec<Range<usize>>,
}

/// Llama/Qwen2/Qwen3 weights plus their key/value cache (batch of one sequence).
pub struct Decoder {
    config: DecoderConfig,
    embeddings: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    /// tarjama's kernel for one token through a Q8_0 output projection, where it runs.
    output_q8_0: Option<Q8_0Matrix>,
    /// The GGUF file mapped into memory, where tensors above lie.
    mapped: Option<MappedWeights>,
    /// Rope frequencies per pair of head dimensions.
    inv_freq: Vec<f32>,
    device: Device,
    /// Positions in the cache.
    len: usize,
}

impl Decoder {
    /// Reads the weights, the blocks in parallel. On rayon's threads, not candle's: the products
    /// that make candle repack a block's weights would deadlock inside a task of candle's pool
    /// (its calling thread takes part in the work without being marked as in the pool).
    pub fn from_gguf<R: ReadAt>(
        content: &gguf_file::Content,
        hp: &Hyperparameters,
        arch: &str,
        data: &R,
        device: &Device,
    ) -> Result<Self> {
        let config = DecoderConfig::new(hp, arch);
        let eps = config.rms_norm_eps;
        let mapping = match device {
            // A file that cannot be mapped (some network filesystems) is read instead.
            Device::Cpu if !crate::kernels::mmap::mapping_turned_off() => data
                .file()
                .and_then(|file| ModelMap::new(file).ok())
                .map(Arc::new),
            _ => None,
        };
        let tensors = TensorReader {
            content,
            data,
            device,
            mapping: mapping.clone(),
            in_place: Default::default(),
        };
        // The two large tables first, so that the blocks fill the time around them.
        let parts: Vec<Result<Part>> = (0..2 + config.block_count)
            .into_par_iter()
            .map(|task| match task {
                // Kept quantized: rows are dequantized when looked up, which saves the hundreds of
                // megabytes a float copy of a 150k-word table takes.
                0 => tensors.get("token_embd.weight").map(|embeddings| {
                    tensors.keep(&embeddings);
                    Part::Embeddings(embeddings)
                }),
                1 => tensors.optional("output.weight").map(|output| {
                    output.as_ref().inspect(|output| tensors.keep(output));
                    Part::Output(output)
                }),
                i => tensors.layer(i - 2, eps).map(|l| Part::Layer(Box::new(l))),
            })
            .collect();
        let (mut embeddings, mut output) = (None, None);
        let mut layers = Vec::with_capacity(config.block_count);
        for part in parts {
            match part? {
                Part::Embeddings(e) => embeddings = Some(Arc::new(e)),
                Part::Output(o) => output = o.map(Arc::new),
                Part::Layer(l) => layers.push(*l),
            }
        }
        let embeddings = embeddings.unwrap_or_else(|| unreachable!("task 0 reads them"));
        let output = output.unwrap_or_else(|| embeddings.clone());
        let output_q8_0 = Q8_0Matrix::from_arc(output.clone())?;
        let output = QMatMul::from_arc(output)?;
        let norm = tensors.norm("output_norm.weight", eps)?;
        let mut inv_freq: Vec<f32> = (0..config.head_dim / 2)
            .map(|i| {
                1.0 / config
                    .rope_freq_base
                    .powf(2.0 * i as f32 / config.head_dim as f32)
            })
            .collect();
        // Llama 3.1+ stretches the low frequencies for long contexts (llama.cpp's freq factors).
        if content.tensor_infos.contains_key("rope_freqs.weight") {
            let factors = tensors.dequantized("rope_freqs.weight")?.to_vec1::<f32>()?;
            if factors.len() != inv_freq.len() {
                return Err(Error::model(format!(
                    "GGUF tensor rope_freqs.weight has {} factors for {} frequencies",
                    factors.len(),
                    inv_freq.len()
                )));
            }
            for (f, factor) in inv_freq.iter_mut().zip(factors) {
                *f /= factor;
            }
        }
        Ok(Self {
            config,
            embeddings,
            layers,
            norm,
            output,
            output_q8_0,
            inv_freq,
            device: device.clone(),
            len: 0,
            mapped: mapping.map(|map| MappedWeights {
                map,
                ranges: tensors
                    .in_place
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner),
            }),
        })
    }

    /// Bytes of weights read where the mapped file lies (0 where it is not mapped).
    pub fn in_place_bytes(&self) -> usize {
        self.mapped
            .as_ref()
            .map_or(0, |p| p.ranges.iter().map(|r| r.len()).sum())
    }

    /// Maps in the pages of the weights used where the file lies (see
    /// `kernels::mmap::ModelMap::fault_in`).
    pub fn fault_in_weights(&self) {
        if let Some(mapped) = &self.mapped {
            for range in &mapped.ranges {
                mapped.map.fault_in(range.clone());
            }
        }
    }

    /// Keeps the first `len` cached positions and forgets the rest.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        for layer in &mut self.layers {
            layer.cache.truncate(self.len);
        }
    }

    /// `cos` and `sin` of the rope angles for positions `start..start + count`.
    fn rope_tables(&self, start: usize, count: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(count * half);
        let mut sin = Vec::with_capacity(count * half);
        for pos in start..start + count {
            for f in &self.inv_freq {
                let (s, c) = (pos as f32 * f).sin_cos();
                cos.push(c);
                sin.push(s);
            }
        }
        Ok((
            Tensor::from_vec(cos, (count, half), &self.device)?,
            Tensor::from_vec(sin, (count, half), &self.device)?,
        ))
    }

    /// Causal mask for `t` new queries after `start` cached positions, with the query rows
    /// of all heads sharing a key/value head stacked (`groups × t` rows).
    fn causal_mask(device: &Device, start: usize, t: usize, groups: usize) -> Result<Tensor> {
        let total = start + t;
        let mut mask = Vec::with_capacity(groups * t * total);
        for _ in 0..groups {
            for i in 0..t {
                mask.extend((0..total).map(|j| {
                    if j > start + i {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                }));
            }
        }
        Ok(Tensor::from_vec(mask, (groups * t, total), device)?)
    }

    /// Feeds `tokens` after the cached positions and returns the logits after the last one.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let t = tokens.len();
        if t == 0 {
            return Err(Error::model("no tokens to feed the model"));
        }
        let c = &self.config;
        let (heads, kv_heads, head_dim) = (c.head_count, c.head_count_kv, c.head_dim);
        let groups = heads / kv_heads;
        let start = self.len;
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embeddings.embedding(&ids)?.unsqueeze(0)?;
        let (cos, sin) = self.rope_tables(start, t)?;
        // Built by the first layer that needs it (the general attention path, off the CPU).
        let mut mask = None;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let rope = |x: &Tensor| -> Result<Tensor> {
            Ok(match c.rope_style {
                RopeStyle::Halves => candle_nn::rotary_emb::rope(x, &cos, &sin)?,
                RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, &cos, &sin)?,
            })
        };
        for layer in &mut self.layers {
            let h = layer.attn_norm.forward(&x)?;
            let [q, k, v] = QLinear::forward_many([&layer.q, &layer.k, &layer.v], &h)?;
            let mut q = q.reshape((1, t, heads, head_dim))?;
            let mut k = k.reshape((1, t, kv_heads, head_dim))?;
            if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                q = qn.forward(&q)?;
                k = kn.forward(&k)?;
            }
            let q = rope(&q.transpose(1, 2)?.contiguous()?)?;
            let k = rope(&k.transpose(1, 2)?.contiguous()?)?;
            let v = v
                .reshape((1, t, kv_heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()?;
            let (keys, values) = layer.cache.append(&k, &v)?;
            let fast = match t {
                1 => attention::attend_one(&q, &keys, &values, None, scale as f32)?,
                _ => attention::attend_causal(&q, &keys, &values, scale as f32)?,
            };
            let attn = match fast {
                Some(attn) => attn,
                None => {
                    // The heads sharing a key/value head are stacked as extra query rows, so
                    // the cache is never repeated per head.
                    let q = q.reshape((1, kv_heads, groups * t, head_dim))?;
                    let mut scores = (q.matmul(&keys.t()?)? * scale)?;
                    if t > 1 && mask.is_none() {
                        mask = Some(Self::causal_mask(&self.device, start, t, groups)?);
                    }
                    if let Some(mask) = &mask {
                        scores = scores.broadcast_add(mask)?;
                    }
                    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
                    probs
                        .matmul(&values)?
                        .reshape((1, heads, t, head_dim))?
                        .transpose(1, 2)?
                        .reshape((1, t, heads * head_dim))?
                }
            };
            x = (x + layer.out.forward(&attn)?)?;

            let h = layer.ffn_norm.forward(&x)?;
            let [gate, up] = QLinear::forward_many([&layer.gate, &layer.up], &h)?;
            let ffn = layer.down.forward(&(candle_nn::ops::silu(&gate)? * up)?)?;
            x = (x + ffn)?;
        }
        self.len = start + t;
        let last = self.norm.forward(&x.narrow(1, t - 1, 1)?)?;
        let logits = match self.output_q8_0.as_ref().map(|o| o.matmul_one(&last)) {
            Some(logits) => logits?,
            None => None,
        };
        let logits = match logits {
            Some(logits) => logits,
            None => self.output.forward(&last)?,
        };
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("config", &self.config)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}
