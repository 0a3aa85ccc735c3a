//! Attention, feed-forward and the encoder/decoder layers of the BART family, in both the
//! post-norm (Marian, BART) and pre-norm (mBART, M2M100/NLLB) arrangements.

use candle_core::{Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use super::{Activation, BartConfig};
use crate::models::attention;
use crate::models::f16_guard::clamp_f16;
use crate::models::kv_cache::LayerCache;
use crate::models::linear::Linear;
use crate::models::packing::{self, packed, padded, Packing};

const LAYER_NORM_EPS: f64 = 1e-5;

pub(super) fn layer_norm(vb: VarBuilder, d_model: usize) -> Result<LayerNorm> {
    candle_nn::layer_norm(d_model, LAYER_NORM_EPS, vb)
}

#[derive(Debug, Clone)]
pub(super) struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &BartConfig, heads: usize) -> Result<Self> {
        let d_model = cfg.d_model;
        let head_dim = d_model / heads;
        let linear =
            |name: &str| Linear::load(d_model, d_model, vb.pp(name), cfg.quantize.as_ref());
        Ok(Self {
            q_proj: linear("q_proj")?,
            k_proj: linear("k_proj")?,
            v_proj: linear("v_proj")?,
            out_proj: linear("out_proj")?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// `[b, t, d_model]` → `[b, heads, t, head_dim]`.
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        xs.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values `[b, heads, t, head_dim]` of `xs`: `[b, t, d_model]`, or only the real
    /// positions where `packing` is given.
    pub(super) fn project_kv(
        &self,
        xs: &Tensor,
        packing: Option<&Packing>,
    ) -> Result<(Tensor, Tensor)> {
        let k = self.split_heads(&padded(self.k_proj.forward(xs)?, packing)?)?;
        let v = self.split_heads(&padded(self.v_proj.forward(xs)?, packing)?)?;
        Ok((k, v))
    }

    /// Attends from `xs` to the given keys/values; `mask` is additive and broadcast over heads.
    fn attend(&self, xs: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let context = self.context(&self.q_proj.forward(xs)?, k, v, mask)?;
        self.out_proj.forward(&context)
    }

    /// Self-attention of an encoder layer over `xs`: `[batch, len, d_model]`, or only the real
    /// positions (`[positions, d_model]`) where `packing` says where they are.
    fn self_attend(&self, xs: &Tensor, mask: &Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        let q = self.q_proj.forward(xs)?;
        let (k, v) = (self.k_proj.forward(xs)?, self.v_proj.forward(xs)?);
        let lengths = packing::lengths(xs, packing)?;
        let scale = self.scaling as f32;
        if let Some(context) = attention::attend_within(&q, &k, &v, &lengths, self.heads, scale)? {
            return self.out_proj.forward(&context);
        }
        let q = padded(q, packing)?;
        let k = self.split_heads(&padded(k, packing)?)?;
        let v = self.split_heads(&padded(v, packing)?)?;
        let context = self.context(&q, &k, &v, Some(mask))?;
        self.out_proj.forward(&packed(context, packing)?)
    }

    /// Attention's weighted values `[b, t, d_model]` for projected queries `q` `[b, t, d_model]`.
    fn context(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, _) = q.dims3()?;
        let q = (self.split_heads(q)? * self.scaling)?;
        if let Some(context) = attention::attend_one(&q, k, v, mask, 1.0)? {
            return Ok(context);
        }
        let (k, v) = (&attention::rows_for(k, b)?, &attention::rows_for(v, b)?);
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(v)?;
        context
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))
    }
}

#[derive(Debug, Clone)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(vb: &VarBuilder, cfg: &BartConfig, ffn: usize, activation: Activation) -> Result<Self> {
        let d_model = cfg.d_model;
        Ok(Self {
            fc1: Linear::load(d_model, ffn, vb.pp("fc1"), cfg.quantize.as_ref())?,
            fc2: Linear::load(ffn, d_model, vb.pp("fc2"), cfg.quantize.as_ref())?,
            activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&self.activation.apply(&self.fc1.forward(xs)?)?)
    }
}

/// A residual sub-layer with its layer norm, placed after the residual sum (post-norm) or
/// before the sub-layer (pre-norm).
fn residual(
    xs: &Tensor,
    norm: &LayerNorm,
    pre_norm: bool,
    sublayer: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if pre_norm {
        xs + sublayer(&norm.forward(xs)?)?
    } else {
        norm.forward(&(xs + sublayer(xs)?)?)
    }
}

#[derive(Debug, Clone)]
pub(super) struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
    pre_norm: bool,
}

impl EncoderLayer {
    pub(super) fn load(vb: VarBuilder, cfg: &BartConfig, act: Activation) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::load(vb.pp("self_attn"), cfg, cfg.encoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(vb.pp("self_attn_layer_norm"), cfg.d_model)?,
            ffn: FeedForward::load(&vb, cfg, cfg.encoder_ffn_dim, act)?,
            final_layer_norm: layer_norm(vb.pp("final_layer_norm"), cfg.d_model)?,
            pre_norm: cfg.pre_norm(),
        })
    }

    /// `xs` is `[batch, len, d_model]`, or only the real positions where `packing` is given.
    pub(super) fn forward(
        &self,
        xs: &Tensor,
        mask: &Tensor,
        packing: Option<&Packing>,
    ) -> Result<Tensor> {
        let xs = residual(xs, &self.self_attn_layer_norm, self.pre_norm, |h| {
            self.self_attn.self_attend(h, mask, packing)
        })?;
        let xs = residual(&xs, &self.final_layer_norm, self.pre_norm, |h| {
            self.ffn.forward(h)
        })?;
        clamp_f16(xs)
    }
}

#[derive(Debug, Clone)]
pub(super) struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    pub(super) encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
    pre_norm: bool,
}

impl DecoderLayer {
    pub(super) fn load(vb: VarBuilder, cfg: &BartConfig, act: Activation) -> Result<Self> {
        Ok(Self {
            self_attn: Attention::load(vb.pp("self_attn"), cfg, cfg.decoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(vb.pp("self_attn_layer_norm"), cfg.d_model)?,
            encoder_attn: Attention::load(vb.pp("encoder_attn"), cfg, cfg.decoder_attention_heads)?,
            encoder_attn_layer_norm: layer_norm(vb.pp("encoder_attn_layer_norm"), cfg.d_model)?,
            ffn: FeedForward::load(&vb, cfg, cfg.decoder_ffn_dim, act)?,
            final_layer_norm: layer_norm(vb.pp("final_layer_norm"), cfg.d_model)?,
            pre_norm: cfg.pre_norm(),
        })
    }

    pub(super) fn forward(
        &self,
        xs: &Tensor,
        cache: &mut LayerCache,
        causal_mask: Option<&Tensor>,
        encoder_mask: &Tensor,
    ) -> Result<Tensor> {
        let xs = residual(xs, &self.self_attn_layer_norm, self.pre_norm, |h| {
            let (k_new, v_new) = self.self_attn.project_kv(h, None)?;
            let (k, v) = cache.self_kv.append(&k_new, &v_new)?;
            self.self_attn.attend(h, &k, &v, causal_mask)
        })?;
        let xs = residual(&xs, &self.encoder_attn_layer_norm, self.pre_norm, |h| {
            let (ck, cv) = &cache.cross_kv;
            self.encoder_attn.attend(h, ck, cv, Some(encoder_mask))
        })?;
        residual(&xs, &self.final_layer_norm, self.pre_norm, |h| {
            self.ffn.forward(h)
        })
    }
}
