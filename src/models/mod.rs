//! Model architectures, one module per family, the traits decoding runs them through
//! ([`Seq2SeqModel`], [`CausalLm`]), and loading their weights from paths.

pub mod attention;
pub mod bart;
pub mod f16_guard;
pub mod gguf;
pub mod kv_cache;
pub mod limits;
pub mod linear;
pub mod masks;
pub mod packing;
pub mod saved_int8;
pub mod t5;
mod traits;

pub use kv_cache::DecoderCache;
pub use linear::{Int8Store, Quantize};
pub use traits::{CausalLm, Seq2SeqModel};

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::{Error, Result};

/// Opens one weights file: safetensors memory-mapped, or a legacy PyTorch `pytorch_model.bin`.
pub fn open_weights(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    open_weight_files(&[path.to_path_buf()], dtype, device)
}

/// Opens a checkpoint's weights: one file as [`open_weights`] does, or the safetensors shards
/// of a checkpoint split over several files (all memory-mapped, as one). The caller finds the
/// files (`hub::ModelFiles::weight_files` expands a shard index); errors name the first.
pub fn open_weight_files(
    paths: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let Some(first) = paths.first() else {
        return Err(Error::model("the model has no weights files"));
    };
    let corrupt = |e: candle_core::Error| {
        Error::model(format!(
            "weights file {} is corrupt or incomplete ({e}): delete it and download the model again",
            first.display()
        ))
    };
    let is_safetensors = |p: &PathBuf| p.extension().is_some_and(|e| e == "safetensors");
    if paths.len() > 1 || is_safetensors(first) {
        crate::kernels::mmap::safetensors(paths, dtype, device).map_err(corrupt)
    } else {
        VarBuilder::from_pth(first, dtype, device).map_err(corrupt)
    }
}

/// `model_type` values of the T5 family (MADLAD-400 and flan-t5 say `t5`).
const T5_MODEL_TYPES: &[&str] = &["t5", "mt5"];

/// An encoder-decoder model loaded by [`load_seq2seq`], with what its config says about input.
pub struct LoadedSeq2Seq {
    pub model: Box<dyn Seq2SeqModel>,
    pub decoder_start_token_id: Option<u32>,
    /// Task prefixes the model expects before its input (T5's `task_specific_params`).
    pub summarization_prefix: Option<String>,
    pub translation_prefix: Option<String>,
}

/// Builds the model `config.json` describes, choosing the family by `model_type`, with its linear
/// layers quantized as `quantize` says if given.
pub fn load_seq2seq(
    model_type: &str,
    config: &serde_json::Value,
    vb: VarBuilder<'static>,
    quantize: Option<Quantize>,
) -> Result<LoadedSeq2Seq> {
    let parse_error = |e: serde_json::Error| {
        Error::model(format!(
            "config.json is not a valid {model_type} config ({e})"
        ))
    };
    if bart::MODEL_TYPES.contains(&model_type) {
        let mut cfg: bart::BartConfig =
            serde_json::from_value(config.clone()).map_err(parse_error)?;
        cfg.quantize = quantize;
        let decoder_start_token_id = cfg.decoder_start_token_id;
        return Ok(LoadedSeq2Seq {
            model: Box::new(bart::BartModel::load(&cfg, vb)?),
            decoder_start_token_id,
            summarization_prefix: None,
            translation_prefix: None,
        });
    }
    if T5_MODEL_TYPES.contains(&model_type) {
        let mut cfg = t5::T5Config::from_json(config).map_err(parse_error)?;
        cfg.quantize = quantize;
        let prefix = |task: &str| cfg.task_prefix(task).map(str::to_string);
        return Ok(LoadedSeq2Seq {
            summarization_prefix: prefix("summarization"),
            translation_prefix: prefix("translation_ar_to_en"),
            decoder_start_token_id: cfg.decoder_start_token_id,
            model: Box::new(t5::T5Model::load(&cfg, vb)?),
        });
    }
    Err(Error::model(format!(
        "model_type {model_type:?} is not an encoder-decoder tarjama runs (supported: {}, {})",
        bart::MODEL_TYPES.join(", "),
        T5_MODEL_TYPES.join(", ")
    )))
}

/// The largest absolute difference between two tensors of the same shape, for tests.
#[cfg(test)]
pub(crate) fn max_abs_diff(
    a: &candle_core::Tensor,
    b: &candle_core::Tensor,
) -> candle_core::Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}
