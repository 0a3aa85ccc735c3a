//! Model architectures, one module per family, and loading their weights.

pub mod bart;
pub mod gguf;
pub mod kv_cache;
pub mod linear;
pub mod masks;
pub mod packed_gemm;
pub mod t5;

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::generate::{GenerationConfig, Seq2SeqModel};
use crate::hub::ModelFiles;
use crate::{Error, Result};

/// Opens a weights file: safetensors memory-mapped, or a legacy PyTorch `pytorch_model.bin`.
pub fn open_weights(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    let corrupt = |e: candle_core::Error| {
        Error::model(format!(
            "weights file {} is corrupt or incomplete ({e}): delete it and download the model again",
            path.display()
        ))
    };
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if is_safetensors {
        // SAFETY: the file is mapped read-only; tarjama never writes to model files, and the
        // safetensors header is validated against the file size before any tensor is read.
        unsafe { VarBuilder::from_mmaped_safetensors(&[path], dtype, device) }.map_err(corrupt)
    } else {
        VarBuilder::from_pth(path, dtype, device).map_err(corrupt)
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

/// Builds the model `config.json` describes, choosing the family by `model_type`.
pub fn load_seq2seq(
    model_type: &str,
    config: &serde_json::Value,
    vb: VarBuilder<'static>,
) -> Result<LoadedSeq2Seq> {
    let parse_error = |e: serde_json::Error| {
        Error::model(format!(
            "config.json is not a valid {model_type} config ({e})"
        ))
    };
    if bart::MODEL_TYPES.contains(&model_type) {
        let cfg: bart::BartConfig = serde_json::from_value(config.clone()).map_err(parse_error)?;
        let decoder_start_token_id = cfg.decoder_start_token_id;
        return Ok(LoadedSeq2Seq {
            model: Box::new(bart::BartModel::load(&cfg, vb)?),
            decoder_start_token_id,
            summarization_prefix: None,
            translation_prefix: None,
        });
    }
    if T5_MODEL_TYPES.contains(&model_type) {
        let cfg: t5::T5Config = serde_json::from_value(config.clone()).map_err(parse_error)?;
        let prefix = |task: &str| cfg.task_prefix(task).map(str::to_string);
        return Ok(LoadedSeq2Seq {
            summarization_prefix: prefix("summarization"),
            translation_prefix: prefix("translation_ar_to_en"),
            decoder_start_token_id: Some(cfg.decoder_start_id()),
            model: Box::new(t5::T5Model::load(&cfg, vb)?),
        });
    }
    Err(Error::model(format!(
        "model_type {model_type:?} is not an encoder-decoder tarjama runs (supported: {}, {})",
        bart::MODEL_TYPES.join(", "),
        T5_MODEL_TYPES.join(", ")
    )))
}

/// Reads a JSON file of the model directory.
pub fn read_json(files: &ModelFiles, name: &str) -> Result<serde_json::Value> {
    let path = files.file(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::model(format!(
            "cannot read {} of model {}: {e}",
            path.display(),
            files.name
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::model(format!(
            "{} of model {} is not valid JSON ({e}): download the model again",
            path.display(),
            files.name
        ))
    })
}

/// The checkpoint's generation settings, as the reference builds them: `generation_config.json`
/// when present, else the generation keys of `config.json`; then the preset's settings.
pub fn generation_config(
    files: &ModelFiles,
    config: &serde_json::Value,
    start: u32,
    eos: u32,
    pad: u32,
) -> Result<GenerationConfig> {
    let mut generation = GenerationConfig::new(start, eos, pad);
    if files.file("generation_config.json").is_file() {
        generation.apply_json(&read_json(files, "generation_config.json")?);
    } else {
        generation.apply_json(config);
    }
    if let Some(preset) = &files.preset {
        generation.apply_json(&preset.generation_json());
    }
    Ok(generation)
}
