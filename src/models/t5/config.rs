//! `config.json` of a T5-family checkpoint, with transformers' `T5Config` defaults and the
//! settings it derives (`dense_act_fn`, `is_gated_act`, `scale_decoder_outputs`).

use std::collections::HashMap;

use candle_core::Tensor;
use serde::{Deserialize, Deserializer};

use crate::models::limits::{
    finite, within, MAX_FFN, MAX_HEADS, MAX_HEAD_DIM, MAX_LAYERS, MAX_POSITIONS, MAX_T5_BUCKETS,
    MAX_T5_DISTANCE, MAX_VOCAB, MAX_WIDTH,
};
use crate::models::linear::Quantize;

#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    /// `t5` or `mt5`: the two read the same keys with different rules (see
    /// [`T5Config::scale_decoder_outputs`]) and different class defaults, which
    /// [`T5Config::from_json`] fills in.
    #[serde(default = "defaults::model_type")]
    pub model_type: String,
    /// Not in config.json: how linear layers are quantized, if they are.
    #[serde(skip)]
    pub quantize: Option<Quantize>,
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "defaults::d_model")]
    pub d_model: usize,
    #[serde(default = "defaults::d_kv")]
    pub d_kv: usize,
    #[serde(default = "defaults::d_ff")]
    pub d_ff: usize,
    #[serde(default = "defaults::num_layers")]
    pub num_layers: usize,
    /// Defaults to `num_layers`.
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    #[serde(default = "defaults::num_heads")]
    pub num_heads: usize,
    #[serde(default = "defaults::num_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "defaults::max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "defaults::layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// `"relu"` (T5 v1.0), `"gated-gelu"` (v1.1, flan-t5, mT5), or `[gated-]<activation>`.
    #[serde(default = "defaults::feed_forward_proj")]
    pub feed_forward_proj: String,
    /// Only decides the output rescale, and only when `scale_decoder_outputs` is absent:
    /// transformers ties the head whatever this says (see [`T5Config::scale_decoder_outputs`]).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Written by transformers 5's `save_pretrained` (false for v1.1 / flan-T5 checkpoints).
    /// `Some(None)` is an explicit `null`, which transformers keeps as a falsy `None`.
    #[serde(default, deserialize_with = "present")]
    pub scale_decoder_outputs: Option<Option<bool>>,
    /// What `feed_forward_proj` implies, unless config.json stores them (transformers derives
    /// them in `__post_init__`, then the stored keys overwrite them; Hub and saved configs agree).
    #[serde(default)]
    pub dense_act_fn: Option<String>,
    #[serde(default)]
    pub is_gated_act: Option<bool>,
    #[serde(default, deserialize_with = "first_id")]
    pub pad_token_id: Option<u32>,
    #[serde(default, deserialize_with = "first_id")]
    pub eos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "first_id")]
    pub decoder_start_token_id: Option<u32>,
    /// The length the checkpoint was trained on, when the config records it.
    #[serde(default)]
    pub n_positions: Option<usize>,
    /// Per-task settings, e.g. `{"summarization": {"prefix": "summarize: ", ...}}`.
    #[serde(default)]
    pub task_specific_params: Option<HashMap<String, serde_json::Value>>,
}

mod defaults {
    pub fn model_type() -> String {
        "t5".into()
    }
    pub fn vocab_size() -> usize {
        32128
    }
    pub fn d_model() -> usize {
        512
    }
    pub fn d_kv() -> usize {
        64
    }
    pub fn d_ff() -> usize {
        2048
    }
    pub fn num_layers() -> usize {
        6
    }
    pub fn num_heads() -> usize {
        8
    }
    pub fn num_buckets() -> usize {
        32
    }
    pub fn max_distance() -> usize {
        128
    }
    pub fn layer_norm_epsilon() -> f64 {
        1e-6
    }
    pub fn feed_forward_proj() -> String {
        "relu".into()
    }
}

/// A key that is present, possibly as `null` (serde's `Option` alone cannot tell).
fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(de).map(Some)
}

/// An id that some configs write as a list (several end tokens): the first one counts.
fn first_id<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match Option::<Id>::deserialize(de)? {
        Some(Id::One(id)) => Some(id),
        Some(Id::Many(ids)) => ids.first().copied(),
        None => None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Activation {
    Relu,
    /// The tanh approximation (`gelu_new`), what `gated-gelu` means.
    GeluTanh,
    /// The exact, erf-based GELU (`gelu`).
    Gelu,
    Silu,
}

impl Activation {
    pub(super) fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Relu => xs.relu(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Gelu => xs.gelu_erf(),
            Activation::Silu => candle_nn::ops::silu(xs),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FeedForwardKind {
    pub gated: bool,
    pub activation: Activation,
}

/// Where `MT5Config`'s defaults differ from `T5Config`'s (transformers 5.24,
/// `models/mt5/configuration_mt5.py`); `num_decoder_layers` follows `num_layers` in both.
fn mt5_defaults() -> [(&'static str, serde_json::Value); 5] {
    [
        ("vocab_size", 250112.into()),
        ("d_ff", 1024.into()),
        ("num_layers", 8.into()),
        ("num_heads", 6.into()),
        ("feed_forward_proj", "gated-gelu".into()),
    ]
}

impl T5Config {
    /// Reads `config.json`, with the class defaults of its `model_type` for absent keys.
    pub fn from_json(config: &serde_json::Value) -> serde_json::Result<Self> {
        let mut config = config.clone();
        if let Some(keys) = config.as_object_mut() {
            if keys.get("model_type").and_then(|t| t.as_str()) == Some("mt5") {
                for (key, default) in mt5_defaults() {
                    keys.entry(key).or_insert(default);
                }
            }
        }
        serde_json::from_value(config)
    }

    /// Checks every value that sizes memory or divides before anything is built from it (the
    /// bounds and why: [`crate::models::limits`]); the error names the key. Called by
    /// [`super::T5Model::load`]. Heads have their own width (`d_kv`), so `d_model` need not be a
    /// multiple of `num_heads`; tensor shapes are checked as the weights load.
    pub fn validate(&self) -> crate::Result<()> {
        self.check().map_err(|why| {
            crate::Error::model(format!(
                "config.json is not a usable {} config: {why}; correct it or download the model again",
                self.model_type
            ))
        })
    }

    fn check(&self) -> Result<(), String> {
        within("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        within("d_model", self.d_model, 1, MAX_WIDTH)?;
        within("d_kv", self.d_kv, 1, MAX_HEAD_DIM)?;
        within("d_ff", self.d_ff, 1, MAX_FFN)?;
        within("num_layers", self.num_layers, 1, MAX_LAYERS)?;
        within("num_decoder_layers", self.decoder_layers(), 1, MAX_LAYERS)?;
        within("num_heads", self.num_heads, 1, MAX_HEADS)?;
        // The encoder splits the buckets between the two directions, so each needs one.
        within(
            "relative_attention_num_buckets",
            self.relative_attention_num_buckets,
            2,
            MAX_T5_BUCKETS,
        )?;
        within(
            "relative_attention_max_distance",
            self.relative_attention_max_distance,
            1,
            MAX_T5_DISTANCE,
        )?;
        if let Some(n) = self.n_positions {
            within("n_positions", n, 1, MAX_POSITIONS)?;
        }
        finite("layer_norm_epsilon", self.layer_norm_epsilon, false)?;
        // The ids in effect, defaults included: each is a row of the embedding table.
        for (key, id) in [
            ("pad_token_id", self.pad_id()),
            ("eos_token_id", self.eos_id()),
            ("decoder_start_token_id", self.decoder_start_id()),
        ] {
            if id as usize >= self.vocab_size {
                return Err(format!(
                    "{key} is {id}, outside the vocabulary of {} tokens",
                    self.vocab_size
                ));
            }
        }
        Ok(())
    }

    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_token_id.unwrap_or(0)
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_token_id.unwrap_or(1)
    }

    /// T5 starts decoding from the pad token.
    pub fn decoder_start_id(&self) -> u32 {
        self.decoder_start_token_id.unwrap_or(self.pad_id())
    }

    /// Whether the decoder output is rescaled by `d_model**-0.5` before the LM head, as
    /// transformers 5.24 decides it (followed where 4.x differs):
    /// - `t5`: `T5Config.__post_init__` derives `scale_decoder_outputs` from
    ///   `tie_word_embeddings` (anything but an explicit `false` rescales), then the stored
    ///   `scale_decoder_outputs` key overrides it. 5.x's `save_pretrained` always writes
    ///   `tie_word_embeddings: true` and, for v1.1 / flan-T5, `scale_decoder_outputs: false`.
    /// - `mt5`: never (`MT5ForConditionalGeneration.forward` has no rescale in 5.x; 4.x rescaled
    ///   when `tie_word_embeddings` was true).
    pub fn scale_decoder_outputs(&self) -> bool {
        match self.model_type.as_str() {
            "mt5" => false,
            _ => match self.scale_decoder_outputs {
                Some(stored) => stored == Some(true),
                None => self.tie_word_embeddings != Some(false),
            },
        }
    }

    /// `task_specific_params.<task>.prefix`, e.g. "summarize: " for `summarization`.
    pub fn task_prefix(&self, task: &str) -> Option<&str> {
        self.task_specific_params
            .as_ref()?
            .get(task)?
            .get("prefix")?
            .as_str()
    }

    /// The feed-forward as transformers' T5 builds it: `is_gated_act` and `ACT2FN[dense_act_fn]`,
    /// derived from `feed_forward_proj` (`[gated-]<activation>`, where `gated-gelu` means the
    /// tanh approximation) unless config.json stores them.
    pub(super) fn feed_forward_kind(&self) -> crate::Result<FeedForwardKind> {
        let proj = self.feed_forward_proj.as_str();
        let parts: Vec<&str> = proj.split('-').collect();
        let unsupported = |what: &str, value: &str| {
            crate::Error::model(format!(
                "config.json has {what} {value:?}, which tarjama does not implement \
                 (supported: [gated-]relu, gelu, gelu_new, gelu_pytorch_tanh, silu)"
            ))
        };
        let (gated, name) = match parts.as_slice() {
            [name] => (false, *name),
            ["gated", name] => (true, *name),
            _ => return Err(unsupported("feed_forward_proj", proj)),
        };
        let derived = if proj == "gated-gelu" {
            "gelu_new"
        } else {
            name
        };
        let (what, value, name) = match &self.dense_act_fn {
            Some(stored) => ("dense_act_fn", stored.as_str(), stored.as_str()),
            None => ("feed_forward_proj", proj, derived),
        };
        let activation = match name {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            _ => return Err(unsupported(what, value)),
        };
        Ok(FeedForwardKind {
            gated: self.is_gated_act.unwrap_or(gated),
            activation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> T5Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn derives_the_feed_forward_like_transformers() {
        let kind = |proj: &str| config(&format!(r#"{{"feed_forward_proj": "{proj}"}}"#));
        let relu = kind("relu").feed_forward_kind().unwrap();
        assert_eq!((relu.gated, relu.activation), (false, Activation::Relu));
        let gated = kind("gated-gelu").feed_forward_kind().unwrap();
        assert_eq!(
            (gated.gated, gated.activation),
            (true, Activation::GeluTanh)
        );
        let plain = kind("gelu").feed_forward_kind().unwrap();
        assert_eq!((plain.gated, plain.activation), (false, Activation::Gelu));
        for bad in ["gated-gelu-new", "relu-gated", "tanh"] {
            let err = kind(bad).feed_forward_kind().unwrap_err().to_string();
            assert!(err.contains(bad) && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn defaults_ids_and_prefixes() {
        let c = config(
            r#"{"eos_token_id": [1, 5], "tie_word_embeddings": false,
                "task_specific_params": {"summarization": {"prefix": "summarize: "}}}"#,
        );
        assert_eq!((c.pad_id(), c.eos_id(), c.decoder_start_id()), (0, 1, 0));
        assert_eq!(c.decoder_layers(), 6);
        assert!(!c.scale_decoder_outputs());
        assert_eq!(c.task_prefix("summarization"), Some("summarize: "));
        assert_eq!(c.task_prefix("translation_en_to_de"), None);
        assert!(config("{}").scale_decoder_outputs());
    }

    /// The forms transformers 5 writes and reads (`T5Config.__post_init__`): the stored
    /// `scale_decoder_outputs` wins over the `tie_word_embeddings` rule; mT5 never rescales.
    #[test]
    fn decides_the_output_rescale_like_transformers_5() {
        let scales = |json: &str| config(json).scale_decoder_outputs();
        // flan-T5 as save_pretrained writes it, and as the Hub has it
        assert!(!scales(
            r#"{"tie_word_embeddings": true, "scale_decoder_outputs": false}"#
        ));
        assert!(!scales(r#"{"tie_word_embeddings": false}"#));
        // T5 v1.0, both forms
        assert!(scales(
            r#"{"tie_word_embeddings": true, "scale_decoder_outputs": true}"#
        ));
        assert!(scales(r#"{"tie_word_embeddings": true}"#));
        assert!(scales(
            r#"{"tie_word_embeddings": false, "scale_decoder_outputs": true}"#
        ));
        // mT5: never, whatever the keys say
        for json in [
            r#"{"model_type": "mt5"}"#,
            r#"{"model_type": "mt5", "tie_word_embeddings": true}"#,
            r#"{"model_type": "mt5", "tie_word_embeddings": false}"#,
            r#"{"model_type": "mt5", "scale_decoder_outputs": true}"#,
        ] {
            assert!(!scales(json), "{json}");
        }
    }

    #[test]
    fn stored_activation_keys_override_feed_forward_proj() {
        let kind = |json: &str| config(json).feed_forward_kind().unwrap();
        let k = kind(
            r#"{"feed_forward_proj": "relu", "dense_act_fn": "gelu_new", "is_gated_act": true}"#,
        );
        assert_eq!((k.gated, k.activation), (true, Activation::GeluTanh));
        // flan-T5's config.json: consistent keys
        let k = kind(
            r#"{"feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu_new", "is_gated_act": true}"#,
        );
        assert_eq!((k.gated, k.activation), (true, Activation::GeluTanh));
        let k = kind(r#"{"feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu"}"#);
        assert_eq!((k.gated, k.activation), (true, Activation::Gelu));
        let err = config(r#"{"dense_act_fn": "tanh"}"#)
            .feed_forward_kind()
            .unwrap_err();
        assert!(err.to_string().contains("dense_act_fn \"tanh\""), "{err}");
    }

    #[test]
    fn explicit_null_scale_is_false() {
        assert!(
            !config(r#"{"tie_word_embeddings": true, "scale_decoder_outputs": null}"#)
                .scale_decoder_outputs()
        );
    }

    #[test]
    fn fills_in_mt5_class_defaults() {
        let read = |json: &str| T5Config::from_json(&serde_json::from_str(json).unwrap()).unwrap();
        let mt5 = read(r#"{"model_type": "mt5", "d_ff": 2048}"#);
        assert_eq!(
            (
                mt5.vocab_size,
                mt5.d_ff,
                mt5.num_layers,
                mt5.decoder_layers(),
                mt5.num_heads
            ),
            (250112, 2048, 8, 8, 6)
        );
        assert_eq!(mt5.feed_forward_proj, "gated-gelu");
        let t5 = read(r#"{"model_type": "t5"}"#);
        assert_eq!((t5.vocab_size, t5.d_ff, t5.num_layers), (32128, 2048, 6));
        assert_eq!(t5.feed_forward_proj, "relu");
    }
}
