//! `config.json` of a T5-family checkpoint, with transformers' `T5Config` defaults and the
//! settings it derives (`dense_act_fn`, `is_gated_act`, `scale_decoder_outputs`).

use std::collections::HashMap;

use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    /// Not in config.json: the format linear layers are quantized to at load time, if any.
    #[serde(skip)]
    pub quantize: Option<GgmlDType>,
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
    /// Only decides the output rescale: transformers ties the head whatever this says (see
    /// [`T5Config::scale_decoder_outputs`]).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
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

impl T5Config {
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

    /// transformers rescales the decoder output by `d_model**-0.5` unless the config says
    /// `tie_word_embeddings: false` (v1.1 and later set it).
    pub fn scale_decoder_outputs(&self) -> bool {
        self.tie_word_embeddings != Some(false)
    }

    /// `task_specific_params.<task>.prefix`, e.g. "summarize: " for `summarization`.
    pub fn task_prefix(&self, task: &str) -> Option<&str> {
        self.task_specific_params
            .as_ref()?
            .get(task)?
            .get("prefix")?
            .as_str()
    }

    /// `feed_forward_proj` as transformers' `T5Config` reads it: `[gated-]<activation>`, where
    /// `gated-gelu` means the tanh approximation.
    pub(super) fn feed_forward_kind(&self) -> crate::Result<FeedForwardKind> {
        let proj = self.feed_forward_proj.as_str();
        let parts: Vec<&str> = proj.split('-').collect();
        let unsupported = || {
            crate::Error::model(format!(
                "config.json has feed_forward_proj {proj:?}, which tarjama does not implement \
                 (supported: [gated-]relu, gelu, gelu_new, gelu_pytorch_tanh, silu)"
            ))
        };
        let (gated, name) = match parts.as_slice() {
            [name] => (false, *name),
            ["gated", name] => (true, *name),
            _ => return Err(unsupported()),
        };
        let activation = match name {
            "gelu" if gated => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            _ => return Err(unsupported()),
        };
        Ok(FeedForwardKind { gated, activation })
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
}
