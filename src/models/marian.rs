//! Marian (the architecture of Helsinki-NLP's OPUS-MT models), built from `config.json`.
//!
//! Written here rather than taken from candle-transformers: its `marian` module has no padding
//! masks, recomputes cross-attention keys/values at every step and keeps its cache inside the
//! layers, so neither batching nor beam search can be built on it. This module keeps the cache in
//! a [`DecoderCache`] owned by the decoding loop.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use super::kv_cache::{DecoderCache, LayerCache};
use super::linear::Linear;
use crate::generate::Seq2SeqModel;

const LAYER_NORM_EPS: f64 = 1e-5;

#[derive(Debug, Clone, Deserialize)]
pub struct MarianConfig {
    pub vocab_size: usize,
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    pub max_position_embeddings: usize,
    #[serde(default = "yes")]
    pub scale_embedding: bool,
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
}

fn default_activation() -> String {
    "swish".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    Silu,
    Gelu,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> crate::Result<Self> {
        match name {
            "swish" | "silu" => Ok(Activation::Silu),
            "gelu" => Ok(Activation::Gelu),
            "relu" => Ok(Activation::Relu),
            other => Err(crate::Error::model(format!(
                "config.json asks for activation {other:?}, which tarjama does not implement (supported: swish, gelu, relu)"
            ))),
        }
    }

    fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Silu => candle_nn::ops::silu(xs),
            Activation::Gelu => xs.gelu_erf(),
            Activation::Relu => xs.relu(),
        }
    }
}

/// Sinusoidal positions in Marian's layout: sines in the first half of the dimensions, cosines in
/// the second. Computed in f64 like the reference, then cast.
fn sinusoidal_positions(n_pos: usize, dim: usize, device: &Device) -> candle_core::Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; n_pos * dim];
    for pos in 0..n_pos {
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for (j, value) in row.iter_mut().enumerate() {
            // Column j of the interleaved table has frequency index j / 2; sines come from the even
            // columns, cosines from the odd ones.
            let (src, f): (usize, fn(f64) -> f64) = if j < half {
                (2 * j, f64::sin)
            } else {
                (2 * (j - half) + 1, f64::cos)
            };
            let angle = pos as f64 / 10000f64.powf((2 * (src / 2)) as f64 / dim as f64);
            *value = f(angle) as f32;
        }
    }
    Tensor::from_vec(table, (n_pos, dim), device)
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    fn load(vb: VarBuilder, d_model: usize, heads: usize) -> candle_core::Result<Self> {
        let head_dim = d_model / heads;
        Ok(Self {
            q_proj: Linear::load(d_model, d_model, vb.pp("q_proj"))?,
            k_proj: Linear::load(d_model, d_model, vb.pp("k_proj"))?,
            v_proj: Linear::load(d_model, d_model, vb.pp("v_proj"))?,
            out_proj: Linear::load(d_model, d_model, vb.pp("out_proj"))?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// `[b, t, d_model]` → `[b, heads, t, head_dim]`.
    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        xs.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn project_kv(&self, xs: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let k = self.split_heads(&self.k_proj.forward(xs)?)?;
        let v = self.split_heads(&self.v_proj.forward(xs)?)?;
        Ok((k, v))
    }

    /// Attends from `xs` to the given keys/values; `mask` is additive and broadcast over heads.
    fn attend(
        &self,
        xs: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        let q = (self.split_heads(&self.q_proj.forward(xs)?)? * self.scaling)?;
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(v)?;
        let context = context
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.out_proj.forward(&context)
    }
}

#[derive(Debug, Clone)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(
        vb: &VarBuilder,
        d_model: usize,
        ffn: usize,
        activation: Activation,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: Linear::load(d_model, ffn, vb.pp("fc1"))?,
            fc2: Linear::load(ffn, d_model, vb.pp("fc2"))?,
            activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2
            .forward(&self.activation.apply(&self.fc1.forward(xs)?)?)
    }
}

fn layer_norm(vb: VarBuilder, d_model: usize) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(d_model, LAYER_NORM_EPS, vb)
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(vb: VarBuilder, cfg: &MarianConfig, act: Activation) -> candle_core::Result<Self> {
        Ok(Self {
            self_attn: Attention::load(
                vb.pp("self_attn"),
                cfg.d_model,
                cfg.encoder_attention_heads,
            )?,
            self_attn_layer_norm: layer_norm(vb.pp("self_attn_layer_norm"), cfg.d_model)?,
            ffn: FeedForward::load(&vb, cfg.d_model, cfg.encoder_ffn_dim, act)?,
            final_layer_norm: layer_norm(vb.pp("final_layer_norm"), cfg.d_model)?,
        })
    }

    // Post-norm: each sub-layer's output is added to its input, then normalised.
    fn forward(&self, xs: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (k, v) = self.self_attn.project_kv(xs)?;
        let attn = self.self_attn.attend(xs, &k, &v, Some(mask))?;
        let xs = self.self_attn_layer_norm.forward(&(xs + attn)?)?;
        let ffn = self.ffn.forward(&xs)?;
        self.final_layer_norm.forward(&(xs + ffn)?)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn load(vb: VarBuilder, cfg: &MarianConfig, act: Activation) -> candle_core::Result<Self> {
        Ok(Self {
            self_attn: Attention::load(
                vb.pp("self_attn"),
                cfg.d_model,
                cfg.decoder_attention_heads,
            )?,
            self_attn_layer_norm: layer_norm(vb.pp("self_attn_layer_norm"), cfg.d_model)?,
            encoder_attn: Attention::load(
                vb.pp("encoder_attn"),
                cfg.d_model,
                cfg.decoder_attention_heads,
            )?,
            encoder_attn_layer_norm: layer_norm(vb.pp("encoder_attn_layer_norm"), cfg.d_model)?,
            ffn: FeedForward::load(&vb, cfg.d_model, cfg.decoder_ffn_dim, act)?,
            final_layer_norm: layer_norm(vb.pp("final_layer_norm"), cfg.d_model)?,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        cache: &mut LayerCache,
        causal_mask: Option<&Tensor>,
        encoder_mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (k_new, v_new) = self.self_attn.project_kv(xs)?;
        let (k, v) = match cache.self_kv.take() {
            Some((k, v)) => (
                Tensor::cat(&[&k, &k_new], 2)?,
                Tensor::cat(&[&v, &v_new], 2)?,
            ),
            None => (k_new, v_new),
        };
        let attn = self.self_attn.attend(xs, &k, &v, causal_mask)?;
        cache.self_kv = Some((k, v));
        let xs = self.self_attn_layer_norm.forward(&(xs + attn)?)?;

        let (ck, cv) = &cache.cross_kv;
        let cross = self.encoder_attn.attend(&xs, ck, cv, Some(encoder_mask))?;
        let xs = self.encoder_attn_layer_norm.forward(&(xs + cross)?)?;

        let ffn = self.ffn.forward(&xs)?;
        self.final_layer_norm.forward(&(xs + ffn)?)
    }
}

/// A Marian encoder-decoder with its language-model head.
#[derive(Debug, Clone)]
pub struct MarianModel {
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    positions: Tensor,
    embed_scale: f64,
    encoder_layers: Vec<EncoderLayer>,
    decoder_layers: Vec<DecoderLayer>,
    /// Output projection (the decoder embeddings unless stored separately).
    lm_head: Linear,
    final_logits_bias: Tensor,
    dtype: DType,
    device: Device,
    pub config: MarianConfig,
}

impl MarianModel {
    pub fn load(cfg: &MarianConfig, vb: VarBuilder) -> crate::Result<Self> {
        let activation = Activation::from_name(&cfg.activation_function)?;
        Ok(Self::load_tensors(cfg, vb, activation)?)
    }

    fn load_tensors(
        cfg: &MarianConfig,
        vb: VarBuilder,
        act: Activation,
    ) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        let target_vocab = cfg.decoder_vocab_size.unwrap_or(cfg.vocab_size);
        let model = vb.pp("model");
        // Checkpoints written with tied weights store only one copy, under any of these names.
        let embedding = |names: &[&str], vocab: usize| -> candle_core::Result<Embedding> {
            for name in names {
                if model.contains_tensor(&format!("{name}.weight")) {
                    return candle_nn::embedding(vocab, d, model.pp(name));
                }
            }
            candle_nn::embedding(vocab, d, model.pp(names[0]))
        };
        let encoder_embed = embedding(&["shared", "encoder.embed_tokens"], cfg.vocab_size)?;
        let decoder_embed = if cfg.share_encoder_decoder_embeddings {
            encoder_embed.clone()
        } else {
            embedding(&["decoder.embed_tokens"], target_vocab)?
        };
        let lm_head = if !cfg.tie_word_embeddings && vb.contains_tensor("lm_head.weight") {
            Linear::new(vb.get((target_vocab, d), "lm_head.weight")?, None)?
        } else {
            Linear::new(decoder_embed.embeddings().clone(), None)?
        };
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            vb.get((1, target_vocab), "final_logits_bias")?
        } else {
            Tensor::zeros((1, target_vocab), vb.dtype(), vb.device())?
        };
        let encoder_layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(model.pp(format!("encoder.layers.{i}")), cfg, act))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let decoder_layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(model.pp(format!("decoder.layers.{i}")), cfg, act))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let positions = sinusoidal_positions(cfg.max_position_embeddings, d, vb.device())?
            .to_dtype(vb.dtype())?;
        Ok(Self {
            encoder_embed,
            decoder_embed,
            positions,
            embed_scale: if cfg.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            encoder_layers,
            decoder_layers,
            lm_head,
            final_logits_bias,
            dtype: vb.dtype(),
            device: vb.device().clone(),
            config: cfg.clone(),
        })
    }

    fn embed(&self, table: &Embedding, ids: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        let len = ids.dim(1)?;
        if offset + len > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} tokens exceeds the model's {} positions",
                offset + len,
                self.config.max_position_embeddings
            );
        }
        let tokens = (table.forward(ids)? * self.embed_scale)?;
        tokens.broadcast_add(&self.positions.narrow(0, offset, len)?)
    }

    /// Additive mask `[rows, 1, 1, len]` from a `[rows, len]` 0/1 attention mask.
    fn additive_mask(&self, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let (rows, len) = attention_mask.dims2()?;
        let keep = attention_mask.to_dtype(DType::F32)?;
        // (1 - mask) * min: masked keys get the most negative value, like the reference.
        let mask = ((keep - 1.0)? * (-f32::MIN as f64))?;
        mask.reshape((rows, 1, 1, len))?.to_dtype(self.dtype)
    }

    fn causal_mask(&self, len: usize, past: usize) -> candle_core::Result<Option<Tensor>> {
        if len == 1 {
            return Ok(None);
        }
        let total = past + len;
        let mask: Vec<f32> = (0..len)
            .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::MIN } else { 0.0 }))
            .collect();
        Ok(Some(
            Tensor::from_vec(mask, (1, 1, len, total), &self.device)?.to_dtype(self.dtype)?,
        ))
    }

    /// Runs the decoder over `ids` (`[rows, len]`), extending `cache`, and returns logits
    /// `[rows, len, vocab]` in f32.
    pub fn decode(&self, ids: &Tensor, cache: &mut DecoderCache) -> candle_core::Result<Tensor> {
        let len = ids.dim(1)?;
        let mut xs = self.embed(&self.decoder_embed, ids, cache.past_len)?;
        let causal = self.causal_mask(len, cache.past_len)?;
        for (layer, layer_cache) in self.decoder_layers.iter().zip(cache.layers.iter_mut()) {
            xs = layer.forward(&xs, layer_cache, causal.as_ref(), &cache.encoder_mask)?;
        }
        cache.past_len += len;
        let logits = self
            .lm_head
            .forward(&xs)?
            .broadcast_add(&self.final_logits_bias)?;
        logits.to_dtype(DType::F32)
    }
}

impl Seq2SeqModel for MarianModel {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let mask = self.additive_mask(attention_mask)?;
        let mut xs = self.embed(&self.encoder_embed, input_ids, 0)?;
        for layer in &self.encoder_layers {
            xs = layer.forward(&xs, &mask)?;
        }
        Ok(xs)
    }

    fn start_decoder(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<DecoderCache> {
        let layers = self
            .decoder_layers
            .iter()
            .map(|layer| {
                Ok(LayerCache {
                    self_kv: None,
                    cross_kv: layer.encoder_attn.project_kv(encoder_hidden)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(DecoderCache {
            layers,
            encoder_mask: self.additive_mask(attention_mask)?,
            past_len: 0,
        })
    }

    fn decode_step(
        &self,
        tokens: &Tensor,
        cache: &mut DecoderCache,
    ) -> candle_core::Result<Tensor> {
        let rows = tokens.dim(0)?;
        let logits = self.decode(&tokens.reshape((rows, 1))?, cache)?;
        logits.squeeze(1)
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
