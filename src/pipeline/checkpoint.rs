//! From a model's files to what the layers below take: the weights as paths, the generation
//! settings as JSON.

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::generate::{self, GenerationConfig};
use crate::hub::ModelFiles;
use crate::{models, Result};

/// Opens the checkpoint's weights, all its shards if it has several.
pub(super) fn open_weights(
    files: &ModelFiles,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    models::open_weight_files(&files.weight_files()?, dtype, device)
}

/// The checkpoint's generation settings, as the reference builds them: `generation_config.json`
/// when present, else the generation keys of `config.json`; then the preset's settings.
pub(super) fn generation_config(
    files: &ModelFiles,
    config: &serde_json::Value,
    start: u32,
    eos: u32,
    pad: u32,
) -> Result<GenerationConfig> {
    let mut generation = GenerationConfig::new(start, eos, pad);
    let (name, json) = if files.file("generation_config.json").is_file() {
        let json = files.read_json("generation_config.json")?;
        ("generation_config.json", json)
    } else {
        ("config.json", config.clone())
    };
    generate::refuse_unsupported_generation(name, &json)?;
    generation.apply_json(&json);
    if let Some(preset) = &files.preset {
        generation.apply_json(&preset.generation_json());
    }
    Ok(generation)
}
