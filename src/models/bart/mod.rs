//! The BART family of encoder-decoder models, configured by `config.json` alone: Marian
//! (OPUS-MT), BART and DistilBART, mBART, and M2M100/NLLB-200.
//!
//! Written here rather than taken from candle-transformers: its `marian` and `bart`-like modules
//! have no padding masks, recompute cross-attention keys/values at every step and keep their
//! cache inside the layers, so neither batching nor beam search can be built on them. This
//! module keeps the cache in a [`DecoderCache`] owned by the decoding loop.
//!
//! The members differ in a handful of switches. As in transformers 5 (`modeling_bart.py`,
//! `modeling_mbart.py`, `modeling_m2m_100.py`, `modeling_marian.py`), the architecture comes from
//! `model_type` alone: legacy keys such as `normalize_before`, `add_final_layer_norm` or
//! `normalize_embedding`, which fairseq-era configs still carry, are not read (transformers
//! ignores them too), and neither is the presence of extra tensors in the checkpoint.
//!
//! | | positions | norm | `layernorm_embedding` | final layer norms |
//! |---|---|---|---|---|
//! | Marian | sinusoids from 0 | post | no | no |
//! | BART | learned, offset 2 | post | yes | no |
//! | mBART | learned, offset 2 | pre | yes | yes |
//! | M2M100, NLLB | fairseq sinusoids, offset 2 | pre | no | yes |
//!
//! The survey of every config key transformers reads for these families, and what tarjama does
//! with each, is in `src/models/config-keys.md`.

mod layers;
mod positions;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use self::layers::{layer_norm, DecoderLayer, EncoderLayer};
use self::positions::Positions;
use super::kv_cache::DecoderCache;
use super::limits::{
    divides, within, MAX_FFN, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_POSITION_TABLE, MAX_VOCAB,
    MAX_WIDTH,
};
use super::linear::{Linear, Quantize};
use super::masks;
use super::packing::{packed, padded, Packing};
use crate::models::Seq2SeqModel;

/// `model_type` values this module runs.
pub const MODEL_TYPES: &[&str] = &["marian", "bart", "mbart", "m2m_100"];

/// Which member of the family a config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Marian,
    Bart,
    MBart,
    M2M100,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BartConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Not in config.json: how linear layers are quantized, if they are.
    #[serde(skip)]
    pub quantize: Option<Quantize>,
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
    /// The default depends on the family.
    #[serde(default)]
    pub activation_function: Option<String>,
    pub max_position_embeddings: usize,
    /// Multiply token embeddings by √d_model; the default depends on the family.
    #[serde(default)]
    pub scale_embedding: Option<bool>,
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
}

fn default_model_type() -> String {
    // OPUS-MT configs predate the key in some conversions.
    "marian".into()
}

fn yes() -> bool {
    true
}

impl BartConfig {
    pub fn family(&self) -> crate::Result<Family> {
        match self.model_type.as_str() {
            "marian" => Ok(Family::Marian),
            "bart" => Ok(Family::Bart),
            "mbart" => Ok(Family::MBart),
            "m2m_100" => Ok(Family::M2M100),
            other => Err(crate::Error::model(format!(
                "model_type {other:?} is not in the BART family (supported: {})",
                MODEL_TYPES.join(", ")
            ))),
        }
    }

    fn pre_norm(&self) -> bool {
        matches!(self.family(), Ok(f) if f.pre_norm())
    }

    fn scales_embedding(&self) -> bool {
        // The class defaults of transformers 5: only M2M100Config scales unless told otherwise
        // (MarianConfig's default is false; the OPUS-MT configs all say true).
        self.scale_embedding
            .unwrap_or(matches!(self.family(), Ok(Family::M2M100)))
    }

    /// The vocabulary the decoder reads and the head writes: Marian's own target vocabulary when
    /// it keeps the two apart (only MarianConfig has `decoder_vocab_size`, and MarianMTModel
    /// sizes its head by it only then, `modeling_marian.py`), else the shared one.
    fn target_vocab(&self, family: Family) -> usize {
        if family != Family::Marian || self.share_encoder_decoder_embeddings {
            self.vocab_size
        } else {
            self.decoder_vocab_size.unwrap_or(self.vocab_size)
        }
    }

    /// Checks every value that sizes memory or divides before anything is built from it (the
    /// bounds and why: [`crate::models::limits`]); the error names the key. Called by
    /// [`BartModel::load`]. Tensor shapes are checked against these values as the weights load.
    pub fn validate(&self) -> crate::Result<()> {
        let family = self.family()?;
        self.check(family).map_err(|why| {
            crate::Error::model(format!(
                "config.json is not a usable {} config: {why}; correct it or download the model again",
                self.model_type
            ))
        })
    }

    fn check(&self, family: Family) -> Result<(), String> {
        let d = self.d_model;
        within("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        if let Some(n) = self.decoder_vocab_size {
            within("decoder_vocab_size", n, 1, MAX_VOCAB)?;
        }
        within("d_model", d, 1, MAX_WIDTH)?;
        for (key, layers) in [
            ("encoder_layers", self.encoder_layers),
            ("decoder_layers", self.decoder_layers),
        ] {
            within(key, layers, 1, MAX_LAYERS)?;
        }
        for (key, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            within(key, heads, 1, MAX_HEADS)?;
            divides(("d_model", d), (key, heads))?;
        }
        for (key, ffn) in [
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
        ] {
            within(key, ffn, 1, MAX_FFN)?;
        }
        let positions = self.max_position_embeddings;
        within("max_position_embeddings", positions, 1, MAX_POSITIONS)?;
        // Marian and M2M100 compute this table at load; BART and mBART read it (plus two unused
        // rows either way, counted here for all).
        let table = (positions + 2).saturating_mul(d);
        if table > MAX_POSITION_TABLE {
            return Err(format!(
                "max_position_embeddings ({positions}) × d_model ({d}) makes a position table of                  {table} values, beyond {MAX_POSITION_TABLE}"
            ));
        }
        // Ids are rows of the embedding tables: padding goes through both stacks, the end and
        // start tokens through the decoder.
        let (source, target) = (self.vocab_size, self.target_vocab(family));
        let ids = [
            ("pad_token_id", Some(self.pad_token_id), source.min(target)),
            ("eos_token_id", Some(self.eos_token_id), target),
            (
                "decoder_start_token_id",
                self.decoder_start_token_id,
                target,
            ),
        ];
        for (key, id, vocab) in ids {
            match id {
                Some(id) if id as usize >= vocab => {
                    return Err(format!(
                        "{key} is {id}, outside the vocabulary of {vocab} tokens"
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `activation_function`, or the family's default in transformers 5 (M2M100Config: relu;
    /// BartConfig, MBartConfig, MarianConfig: gelu).
    fn activation_name(&self) -> &str {
        match (&self.activation_function, self.family()) {
            (Some(name), _) => name,
            (None, Ok(Family::M2M100)) => "relu",
            (None, _) => "gelu",
        }
    }
}

impl Family {
    /// mBART and M2M100 normalise before each sub-layer, BART and Marian after it.
    fn pre_norm(self) -> bool {
        matches!(self, Family::MBart | Family::M2M100)
    }

    /// BART and mBART normalise the summed token and position embeddings.
    fn has_layernorm_embedding(self) -> bool {
        matches!(self, Family::Bart | Family::MBart)
    }

    /// The pre-norm members normalise each stack's output.
    fn has_final_layer_norms(self) -> bool {
        self.pre_norm()
    }
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

/// An encoder stack or a decoder stack's embedding side: token table, positions and the
/// optional layer norms around the layers.
#[derive(Debug, Clone)]
struct Stack {
    embed_tokens: Embedding,
    positions: Positions,
    /// BART and mBART normalise the embeddings before the first layer.
    layernorm_embedding: Option<LayerNorm>,
    /// Pre-norm models (mBART, M2M100) normalise after the last layer.
    final_layer_norm: Option<LayerNorm>,
}

impl Stack {
    fn load(
        vb: &VarBuilder,
        embed_tokens: Embedding,
        cfg: &BartConfig,
        family: Family,
    ) -> candle_core::Result<Self> {
        let (n_pos, d) = (cfg.max_position_embeddings, cfg.d_model);
        let positions = match family {
            Family::Marian => Positions::marian(n_pos, d, vb.device(), vb.dtype())?,
            Family::Bart | Family::MBart => Positions::learned(vb.pp("embed_positions"), n_pos, d)?,
            Family::M2M100 => {
                Positions::fairseq(n_pos, d, cfg.pad_token_id, vb.device(), vb.dtype())?
            }
        };
        let norm_if = |present: bool, name: &str| -> candle_core::Result<Option<LayerNorm>> {
            present.then(|| layer_norm(vb.pp(name), d)).transpose()
        };
        Ok(Self {
            embed_tokens,
            positions,
            layernorm_embedding: norm_if(family.has_layernorm_embedding(), "layernorm_embedding")?,
            final_layer_norm: norm_if(family.has_final_layer_norms(), "layer_norm")?,
        })
    }

    fn embed(&self, ids: &Tensor, past: usize, scale: f64) -> candle_core::Result<Tensor> {
        let tokens = (self.embed_tokens.forward(ids)? * scale)?;
        let xs = tokens.broadcast_add(&self.positions.embed(ids, past)?)?;
        match &self.layernorm_embedding {
            Some(norm) => norm.forward(&xs),
            None => Ok(xs),
        }
    }

    fn finish(&self, xs: Tensor) -> candle_core::Result<Tensor> {
        match &self.final_layer_norm {
            Some(norm) => norm.forward(&xs),
            None => Ok(xs),
        }
    }
}

/// An encoder-decoder of the BART family with its language-model head.
#[derive(Debug, Clone)]
pub struct BartModel {
    encoder: Stack,
    decoder: Stack,
    embed_scale: f64,
    encoder_layers: Vec<EncoderLayer>,
    decoder_layers: Vec<DecoderLayer>,
    /// Output projection (the decoder embeddings unless stored separately).
    lm_head: Linear,
    final_logits_bias: Option<Tensor>,
    dtype: DType,
    device: Device,
    pub config: BartConfig,
}

impl BartModel {
    pub fn load(cfg: &BartConfig, vb: VarBuilder) -> crate::Result<Self> {
        cfg.validate()?;
        let family = cfg.family()?;
        let activation = Activation::from_name(cfg.activation_name())?;
        Ok(Self::load_tensors(cfg, family, vb, activation)?)
    }

    fn load_tensors(
        cfg: &BartConfig,
        family: Family,
        vb: VarBuilder,
        act: Activation,
    ) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        let model = vb.pp("model");
        let shares_embeddings = family != Family::Marian || cfg.share_encoder_decoder_embeddings;
        let target_vocab = cfg.target_vocab(family);
        let encoder_embed = tied_table(
            &vb,
            &[
                "model.encoder.embed_tokens.weight",
                "model.shared.weight",
                "model.decoder.embed_tokens.weight",
            ],
            (cfg.vocab_size, d),
        )?;
        let decoder_embed = if shares_embeddings {
            tied_table(
                &vb,
                &[
                    "model.decoder.embed_tokens.weight",
                    "model.shared.weight",
                    "model.encoder.embed_tokens.weight",
                ],
                (cfg.vocab_size, d),
            )?
        } else {
            // Marian with its own target vocabulary: nothing is tied to the decoder's table.
            vb.get((target_vocab, d), "model.decoder.embed_tokens.weight")?
        };
        let lm_head = {
            // transformers ties the head to `model.shared`, or to the decoder's own table when
            // Marian keeps the vocabularies apart.
            let names: &[&str] = if shares_embeddings {
                &[
                    "lm_head.weight",
                    "model.shared.weight",
                    "model.decoder.embed_tokens.weight",
                    "model.encoder.embed_tokens.weight",
                ]
            } else {
                &["lm_head.weight", "model.decoder.embed_tokens.weight"]
            };
            // Saved int8 weights key it by its role, whichever table it is tied to.
            Linear::named(
                "lm_head.weight",
                (target_vocab, d),
                || tied_table(&vb, names, (target_vocab, d)),
                None,
                cfg.quantize.as_ref(),
            )?
        };
        let (encoder_embed, decoder_embed) = (
            Embedding::new(encoder_embed, d),
            Embedding::new(decoder_embed, d),
        );
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            Some(vb.get((1, target_vocab), "final_logits_bias")?)
        } else {
            None
        };
        let encoder_layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(model.pp(format!("encoder.layers.{i}")), cfg, act))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let decoder_layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(model.pp(format!("decoder.layers.{i}")), cfg, act))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            encoder: Stack::load(&model.pp("encoder"), encoder_embed, cfg, family)?,
            decoder: Stack::load(&model.pp("decoder"), decoder_embed, cfg, family)?,
            embed_scale: if cfg.scales_embedding() {
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
}

/// The table a use of the embeddings reads (`names[0]`), as transformers 5 ties weights at load
/// (`PreTrainedModel.tie_weights` in `modeling_utils.py`): a use takes its own tensor when the
/// checkpoint stores it (stored tensors that differ are not tied), else the first stored one it
/// is tied to. transformers leaves a missing untied table randomly initialised
/// (`tie_word_embeddings: false` with no `lm_head.weight`); tarjama takes the tied table then,
/// the only reading that gives a working model.
fn tied_table(
    vb: &VarBuilder,
    names: &[&str],
    shape: (usize, usize),
) -> candle_core::Result<Tensor> {
    let name = names
        .iter()
        .find(|name| vb.contains_tensor(name))
        .unwrap_or(&names[0]);
    vb.get(shape, name)
}

impl Seq2SeqModel for BartModel {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let mask = masks::padding_mask(attention_mask, self.dtype)?;
        let packing = Packing::new(attention_mask)?;
        let embedded = self.encoder.embed(input_ids, 0, self.embed_scale)?;
        let mut xs = packed(embedded, packing.as_ref())?;
        for layer in &self.encoder_layers {
            xs = layer.forward(&xs, &mask, packing.as_ref())?;
        }
        padded(self.encoder.finish(xs)?, packing.as_ref())
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
            .decoder_layers
            .iter()
            .map(|layer| layer.encoder_attn.project_kv(&hidden, packing.as_ref()))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(DecoderCache::start(
            cross_kv,
            masks::padding_mask(attention_mask, self.dtype)?,
        ))
    }

    fn decode(&self, ids: &Tensor, cache: &mut DecoderCache) -> candle_core::Result<Tensor> {
        let len = ids.dim(1)?;
        let mut xs = self.decoder.embed(ids, cache.past_len, self.embed_scale)?;
        let causal = masks::causal_mask(len, cache.past_len, self.dtype, &self.device)?;
        for (layer, layer_cache) in self.decoder_layers.iter().zip(cache.layers.iter_mut()) {
            xs = layer.forward(&xs, layer_cache, causal.as_ref(), &cache.encoder_mask)?;
        }
        let xs = self.decoder.finish(xs)?;
        cache.past_len += len;
        let mut logits = self.lm_head.forward(&xs)?;
        if let Some(bias) = &self.final_logits_bias {
            logits = logits.broadcast_add(bias)?;
        }
        logits.to_dtype(DType::F32)
    }

    fn max_positions(&self) -> usize {
        self.encoder.positions.capacity()
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
