//! Model architectures, one module per family, and loading their weights.

pub mod gguf;
pub mod kv_cache;
pub mod linear;
pub mod marian;
pub mod packed_gemm;
pub mod t5;

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::generate::GenerationConfig;
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
