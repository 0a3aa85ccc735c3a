//! The sub-layers of a T5 block and the dtype rules they follow in half precision.

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;

use super::config::{Activation, FeedForwardKind};
use super::T5Config;
use crate::models::attention;
use crate::models::linear::Linear;
use crate::models::packing::{packed, padded, Packing};

/// T5's layer norm: RMS without mean subtraction or bias. The statistics are taken in f32 whatever
/// the model's dtype, and the result is cast back to the weight's dtype, like the reference.
#[derive(Debug, Clone)]
pub(super) struct RmsNorm {
    weight_f32: Tensor,
    dtype: DType,
    eps: f32,
}

impl RmsNorm {
    pub(super) fn load(vb: VarBuilder, cfg: &T5Config) -> candle_core::Result<Self> {
        let weight = vb.get(cfg.d_model, "weight")?;
        Ok(Self {
            weight_f32: weight.to_dtype(DType::F32)?,
            dtype: weight.dtype(),
            eps: cfg.layer_norm_epsilon as f32,
        })
    }

    pub(super) fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let xs = xs.to_dtype(DType::F32)?;
        candle_nn::ops::rms_norm(&xs, &self.weight_f32, self.eps)?.to_dtype(self.dtype)
    }
}

/// `x + y` with PyTorch's type promotion: a half-precision operand meets the f32 residual stream
/// (see the documentation of `models::t5`) by being widened.
pub(super) fn residual(xs: &Tensor, ys: &Tensor) -> candle_core::Result<Tensor> {
    if xs.dtype() == ys.dtype() {
        xs + ys
    } else {
        xs.to_dtype(DType::F32)? + ys.to_dtype(DType::F32)?
    }
}

#[derive(Debug, Clone)]
pub(super) struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    d_kv: usize,
}

impl Attention {
    pub(super) fn load(vb: VarBuilder, cfg: &T5Config) -> candle_core::Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        let linear = |name: &str, out: usize, inp: usize| {
            Linear::load_unbiased(inp, out, vb.pp(name), cfg.quantize.as_ref())
        };
        Ok(Self {
            q: linear("q", inner, cfg.d_model)?,
            k: linear("k", inner, cfg.d_model)?,
            v: linear("v", inner, cfg.d_model)?,
            o: linear("o", cfg.d_model, inner)?,
            heads: cfg.num_heads,
            d_kv: cfg.d_kv,
        })
    }

    /// `[b, t, heads * d_kv]` → `[b, heads, t, d_kv]`.
    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        xs.reshape((b, t, self.heads, self.d_kv))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values `[b, heads, t, d_kv]` of `xs`: `[b, t, d_model]`, or only the real
    /// positions where `packing` is given.
    pub(super) fn project_kv(
        &self,
        xs: &Tensor,
        packing: Option<&Packing>,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let k = self.split_heads(&padded(self.k.forward(xs)?, packing)?)?;
        let v = self.split_heads(&padded(self.v.forward(xs)?, packing)?)?;
        Ok((k, v))
    }

    /// Self-attention of an encoder block over `xs`: `[b, t, d_model]`, or only the real
    /// positions where `packing` is given.
    pub(super) fn self_attend(
        &self,
        xs: &Tensor,
        bias: &Tensor,
        packing: Option<&Packing>,
    ) -> candle_core::Result<Tensor> {
        let q = padded(self.q.forward(xs)?, packing)?;
        let (k, v) = self.project_kv(xs, packing)?;
        let context = self.context(&q, &k, &v, Some(bias))?;
        self.o.forward(&packed(context, packing)?)
    }

    /// Attends from `xs` to the given keys/values. `bias` is the position bias and masks already
    /// summed. T5 does not scale the scores by 1/sqrt(d_kv): its initialisation absorbs that.
    pub(super) fn attend(
        &self,
        xs: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let context = self.context(&self.q.forward(xs)?, k, v, bias)?;
        self.o.forward(&context)
    }

    /// Attention's weighted values `[b, t, heads * d_kv]` for projected queries `q`.
    fn context(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = q.dims3()?;
        let q = self.split_heads(q)?;
        if let Some(context) = attention::attend_one(&q, k, v, bias, 1.0)? {
            return Ok(context);
        }
        let (k, v) = (&attention::rows_for(k, b)?, &attention::rows_for(v, b)?);
        let scores = q.matmul(&k.t()?)?;
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        probs
            .matmul(v)?
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.d_kv))
    }
}

#[derive(Debug, Clone)]
pub(super) struct FeedForward {
    /// `wi`, or `wi_0` (through the activation) and `wi_1` (linear) when gated.
    wi: Linear,
    wi_linear: Option<Linear>,
    wo: Linear,
    wo_dtype: DType,
    activation: Activation,
}

impl FeedForward {
    pub(super) fn load(
        vb: VarBuilder,
        cfg: &T5Config,
        kind: FeedForwardKind,
    ) -> candle_core::Result<Self> {
        let (d, ff) = (cfg.d_model, cfg.d_ff);
        let linear = |vb: &VarBuilder, name: &str, out: usize, inp: usize| {
            Linear::load_unbiased(inp, out, vb.pp(name), cfg.quantize.as_ref())
        };
        let (wi, wi_linear) = if kind.gated {
            (
                linear(&vb, "wi_0", ff, d)?,
                Some(linear(&vb, "wi_1", ff, d)?),
            )
        } else {
            (linear(&vb, "wi", ff, d)?, None)
        };
        // transformers keeps `wo` in f32 only when the model is loaded in f16, not in bf16.
        let wo_vb = if vb.dtype() == DType::F16 {
            vb.to_dtype(DType::F32)
        } else {
            vb.clone()
        };
        Ok(Self {
            wi,
            wi_linear,
            wo: linear(&wo_vb, "wo", d, ff)?,
            wo_dtype: wo_vb.dtype(),
            activation: kind.activation,
        })
    }

    pub(super) fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mut hidden = self.activation.apply(&self.wi.forward(xs)?)?;
        if let Some(wi_linear) = &self.wi_linear {
            hidden = (hidden * wi_linear.forward(xs)?)?;
        }
        self.wo.forward(&hidden.to_dtype(self.wo_dtype)?)
    }
}
