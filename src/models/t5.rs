//! T5 encoder-decoders, built from `config.json`: T5 v1.0 (ReLU feed-forward, tied embeddings)
//! and the v1.1 family (flan-t5, mT5, MADLAD-400: gated-GELU feed-forward, untied LM head).
//!
//! Written here rather than taken from candle-transformers: its `t5` module has no padding mask
//! and keeps its cache inside the layers, so neither batching nor beam search can be built on it.
//! This module keeps the cache in a [`DecoderCache`] owned by the decoding loop.
//!
//! In f16 it computes what transformers computes with `dtype=torch.float16`, so that half
//! precision gives the reference's numbers: the feed-forward output projections (`wo`, T5's
//! `_keep_in_fp32_modules`) stay in f32, which widens the residual stream to f32 from the first
//! feed-forward on, and hidden states still in f16 are clamped where they overflowed
//! (transformers' `clamp_value`).

mod config;
mod layers;
mod position;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, VarBuilder};

use config::FeedForwardKind;
pub use config::T5Config;
use layers::{residual, Attention, FeedForward, RmsNorm};
use position::RelativeBuckets;

use super::f16_guard::clamp_f16;
use super::kv_cache::{DecoderCache, LayerCache};
use super::linear::Linear;
use super::masks;
use super::packing::{packed, padded, Packing};
use crate::models::Seq2SeqModel;

/// The bucket of a relative position (`key - query`) as transformers'
/// `_relative_position_bucket` computes it: bidirectional in the encoder, causal in the decoder.
pub fn relative_position_bucket(config: &T5Config, relative: i64, bidirectional: bool) -> u32 {
    let buckets = RelativeBuckets::new(config, bidirectional);
    let distance = relative.unsigned_abs() as usize;
    if relative >= 0 {
        buckets.bucket(0, distance)
    } else {
        buckets.bucket(distance, 0)
    }
}

/// One block: pre-norm sub-layers (self-attention, cross-attention in the decoder, feed-forward),
/// each added back to the residual stream.
#[derive(Debug, Clone)]
struct Block {
    self_attn: Attention,
    self_attn_norm: RmsNorm,
    /// Decoder blocks only.
    cross_attn: Option<(Attention, RmsNorm)>,
    ff: FeedForward,
    ff_norm: RmsNorm,
}

impl Block {
    fn load(
        vb: VarBuilder,
        cfg: &T5Config,
        kind: FeedForwardKind,
        decoder: bool,
    ) -> candle_core::Result<Self> {
        let layer = vb.pp("layer");
        let self_layer = layer.pp(0);
        let cross_attn = if decoder {
            let cross = layer.pp(1);
            Some((
                Attention::load(cross.pp("EncDecAttention"), cfg)?,
                RmsNorm::load(cross.pp("layer_norm"), cfg)?,
            ))
        } else {
            None
        };
        let ff_layer = layer.pp(if decoder { 2 } else { 1 });
        Ok(Self {
            self_attn: Attention::load(self_layer.pp("SelfAttention"), cfg)?,
            self_attn_norm: RmsNorm::load(self_layer.pp("layer_norm"), cfg)?,
            cross_attn,
            ff: FeedForward::load(ff_layer.pp("DenseReluDense"), cfg, kind)?,
            ff_norm: RmsNorm::load(ff_layer.pp("layer_norm"), cfg)?,
        })
    }

    fn feed_forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let ff = self.ff.forward(&self.ff_norm.forward(xs)?)?;
        clamp_f16(residual(xs, &ff)?)
    }

    /// `xs` is `[batch, len, d_model]`, or only the real positions where `packing` is given.
    fn encode(
        &self,
        xs: &Tensor,
        bias: &Tensor,
        packing: Option<&Packing>,
    ) -> candle_core::Result<Tensor> {
        let normed = self.self_attn_norm.forward(xs)?;
        let attn = self.self_attn.self_attend(&normed, bias, packing)?;
        let xs = clamp_f16(residual(xs, &attn)?)?;
        self.feed_forward(&xs)
    }

    fn decode(
        &self,
        xs: &Tensor,
        cache: &mut LayerCache,
        self_bias: &Tensor,
        encoder_mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let normed = self.self_attn_norm.forward(xs)?;
        let (k_new, v_new) = self.self_attn.project_kv(&normed, None)?;
        let (k, v) = cache.self_kv.append(&k_new, &v_new)?;
        let attn = self.self_attn.attend(&normed, &k, &v, Some(self_bias))?;
        let mut xs = clamp_f16(residual(xs, &attn)?)?;

        if let Some((cross_attn, cross_norm)) = &self.cross_attn {
            let normed = cross_norm.forward(&xs)?;
            let (ck, cv) = &cache.cross_kv;
            let cross = cross_attn.attend(&normed, ck, cv, Some(encoder_mask))?;
            xs = clamp_f16(residual(&xs, &cross)?)?;
        }
        self.feed_forward(&xs)
    }
}

/// A T5 encoder-decoder with its language-model head.
#[derive(Debug, Clone)]
pub struct T5Model {
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    /// Relative position bias tables `[num_buckets, heads]` of the first block of each stack;
    /// the other blocks reuse the first block's bias.
    encoder_bias: Tensor,
    decoder_bias: Tensor,
    encoder_buckets: RelativeBuckets,
    decoder_buckets: RelativeBuckets,
    encoder: Vec<Block>,
    decoder: Vec<Block>,
    encoder_norm: RmsNorm,
    decoder_norm: RmsNorm,
    lm_head: Linear,
    /// `d_model**-0.5` where the config asks for it ([`T5Config::scale_decoder_outputs`]): T5 v1.0
    /// rescales the decoder output before reusing the (unit-scale) embeddings as the head.
    output_scale: Option<f64>,
    dtype: DType,
    device: Device,
    pub config: T5Config,
}

impl T5Model {
    pub fn load(config: &T5Config, vb: VarBuilder) -> crate::Result<Self> {
        config.validate()?;
        let kind = config.feed_forward_kind()?;
        Ok(Self::load_tensors(config, vb, kind)?)
    }

    fn load_tensors(
        cfg: &T5Config,
        vb: VarBuilder,
        kind: FeedForwardKind,
    ) -> candle_core::Result<Self> {
        let (vocab, d) = (cfg.vocab_size, cfg.d_model);
        // Checkpoints store the embeddings under any of these names, once or several times. Like
        // transformers, each use takes its own name when present, else the copy it is tied to.
        let (shared, enc, dec) = (
            "shared.weight",
            "encoder.embed_tokens.weight",
            "decoder.embed_tokens.weight",
        );
        let table = |names: &[&str]| -> candle_core::Result<Tensor> {
            let name = names
                .iter()
                .find(|n| vb.contains_tensor(n))
                .unwrap_or(&shared);
            vb.get((vocab, d), name)
        };
        let encoder_embed = Embedding::new(table(&[enc, shared, dec])?, d);
        let decoder_embed = Embedding::new(table(&[dec, shared, enc])?, d);
        // transformers 5 ties `lm_head` to `shared` whatever `tie_word_embeddings` says, unless
        // the checkpoint stores a different `lm_head.weight`.
        let lm_head = Linear::named(
            "lm_head.weight",
            (vocab, d),
            || table(&["lm_head.weight", shared, enc, dec]),
            None,
            cfg.quantize.as_ref(),
        )?;

        let bias_table = |stack: &str| {
            vb.get(
                (cfg.relative_attention_num_buckets, cfg.num_heads),
                &format!("{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            )
        };
        let blocks = |stack: &str, n: usize, decoder: bool| {
            (0..n)
                .map(|i| Block::load(vb.pp(format!("{stack}.block.{i}")), cfg, kind, decoder))
                .collect::<candle_core::Result<Vec<_>>>()
        };
        Ok(Self {
            encoder_embed,
            decoder_embed,
            encoder_bias: bias_table("encoder")?,
            decoder_bias: bias_table("decoder")?,
            encoder_buckets: RelativeBuckets::new(cfg, true),
            decoder_buckets: RelativeBuckets::new(cfg, false),
            encoder: blocks("encoder", cfg.num_layers, false)?,
            decoder: blocks("decoder", cfg.decoder_layers(), true)?,
            encoder_norm: RmsNorm::load(vb.pp("encoder.final_layer_norm"), cfg)?,
            decoder_norm: RmsNorm::load(vb.pp("decoder.final_layer_norm"), cfg)?,
            lm_head,
            output_scale: cfg.scale_decoder_outputs().then(|| (d as f64).powf(-0.5)),
            dtype: vb.dtype(),
            device: vb.device().clone(),
            config: cfg.clone(),
        })
    }

    /// The prompt prefix the checkpoint was trained with for `task` (e.g. "summarize: ").
    pub fn task_prefix(&self, task: &str) -> Option<&str> {
        self.config.task_prefix(task)
    }

    /// The most negative value of the model's dtype: what the reference adds at masked keys.
    /// The decoder's self-attention bias for queries `past..past + len` against keys
    /// `0..past + len`, with the causal mask folded in: `[1, heads, len, past + len]`. Computed
    /// once per step and shared by all blocks.
    fn decoder_self_bias(&self, len: usize, past: usize) -> candle_core::Result<Tensor> {
        let bias = self
            .decoder_buckets
            .bias(&self.decoder_bias, len, past + len, past)?;
        match masks::causal_mask(len, past, self.dtype, &self.device)? {
            Some(mask) => bias.broadcast_add(&mask),
            None => Ok(bias),
        }
    }
}

impl Seq2SeqModel for T5Model {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let len = input_ids.dim(1)?;
        // Position bias and padding mask summed once, `[batch, heads, len, len]`, for all blocks.
        let bias = self
            .encoder_buckets
            .bias(&self.encoder_bias, len, len, 0)?
            .broadcast_add(&masks::padding_mask(attention_mask, self.dtype)?)?;
        let packing = Packing::new(attention_mask)?;
        let mut xs = packed(self.encoder_embed.forward(input_ids)?, packing.as_ref())?;
        for block in &self.encoder {
            xs = block.encode(&xs, &bias, packing.as_ref())?;
        }
        padded(self.encoder_norm.forward(&xs)?, packing.as_ref())
    }

    fn start_decoder(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<DecoderCache> {
        // The projections need only the real positions, as in the encoder.
        let packing = Packing::new(attention_mask)?;
        let hidden = packed(encoder_hidden.clone(), packing.as_ref())?;
        let cross_kv = self
            .decoder
            .iter()
            .map(|block| {
                let (cross_attn, _) = block
                    .cross_attn
                    .as_ref()
                    .expect("decoder blocks have cross-attention");
                cross_attn.project_kv(&hidden, packing.as_ref())
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(DecoderCache::start(
            cross_kv,
            masks::padding_mask(attention_mask, self.dtype)?,
        ))
    }

    fn decode(&self, ids: &Tensor, cache: &mut DecoderCache) -> candle_core::Result<Tensor> {
        let len = ids.dim(1)?;
        let self_bias = self.decoder_self_bias(len, cache.past_len)?;
        let mut xs = self.decoder_embed.forward(ids)?;
        for (block, layer_cache) in self.decoder.iter().zip(cache.layers.iter_mut()) {
            xs = block.decode(&xs, layer_cache, &self_bias, &cache.encoder_mask)?;
        }
        cache.past_len += len;
        let mut xs = self.decoder_norm.forward(&xs)?;
        if let Some(scale) = self.output_scale {
            xs = (xs * scale)?;
        }
        self.lm_head.forward(&xs)?.to_dtype(DType::F32)
    }

    /// Relative positions set no hard limit. `n_positions`, when the config has it, is the
    /// length the checkpoint was trained on (512 for the original T5s): the pipeline splits longer
    /// sentences there rather than feed the model lengths it never saw. Without it, no limit.
    fn max_positions(&self) -> usize {
        self.config.n_positions.unwrap_or(usize::MAX)
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
