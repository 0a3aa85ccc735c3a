//! Model architectures, one module per family, and loading their weights.

pub mod attention;
pub mod bart;
pub mod f16_guard;
pub mod gguf;
pub mod kv_cache;
pub mod limits;
pub mod linear;
pub mod masks;
pub mod packing;
pub mod t5;

use std::path::Path;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::generate::{GenerationConfig, Seq2SeqModel};
use crate::hub::ModelFiles;
use crate::{Error, Result};

/// Opens a weights file: safetensors memory-mapped (one file, or the shards a
/// `model.safetensors.index.json` names), or a legacy PyTorch `pytorch_model.bin`.
pub fn open_weights(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    let corrupt = |e: candle_core::Error| {
        Error::model(format!(
            "weights file {} is corrupt or incomplete ({e}): delete it and download the model again",
            path.display()
        ))
    };
    if path.ends_with(crate::hub::SHARD_INDEX) {
        let dir = path.parent().unwrap_or(Path::new("."));
        let shards: Vec<std::path::PathBuf> = shard_names(path)?
            .iter()
            .map(|name| dir.join(name))
            .collect();
        if let Some(missing) = shards.iter().find(|p| !p.is_file()) {
            return Err(Error::model(format!(
                "{} names the shard {}, which is missing: download the complete model",
                path.display(),
                missing.display()
            )));
        }
        return crate::kernels::mmap::safetensors(&shards, dtype, device).map_err(corrupt);
    }
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if is_safetensors {
        crate::kernels::mmap::safetensors(&[path], dtype, device).map_err(corrupt)
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

/// Builds the model `config.json` describes, choosing the family by `model_type`, with its linear
/// layers quantized to `quantize` if given.
pub fn load_seq2seq(
    model_type: &str,
    config: &serde_json::Value,
    vb: VarBuilder<'static>,
    quantize: Option<GgmlDType>,
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

/// The shard files a `model.safetensors.index.json` maps tensors to, each once, in order.
pub fn shard_names(index: &Path) -> Result<Vec<String>> {
    let bad = |why: String| {
        Error::model(format!(
            "{} is not a valid shard index ({why}): download the model again",
            index.display()
        ))
    };
    let text = std::fs::read_to_string(index).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no weight_map".into()))?;
    let mut names: Vec<String> = Vec::new();
    for file in map.values() {
        let file = file
            .as_str()
            .ok_or_else(|| bad("a shard name is not a string".into()))?;
        // Shard names are plain file names; anything else could reach outside the model.
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(bad(format!("shard name {file:?}")));
        }
        if !names.iter().any(|n| n == file) {
            names.push(file.to_string());
        }
    }
    if names.is_empty() {
        return Err(bad("no shards".into()));
    }
    Ok(names)
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
    let (name, json) = if files.file("generation_config.json").is_file() {
        let json = read_json(files, "generation_config.json")?;
        ("generation_config.json", json)
    } else {
        ("config.json", config.clone())
    };
    refuse_unsupported_generation(name, &json)?;
    generation.apply_json(&json);
    if let Some(preset) = &files.preset {
        generation.apply_json(&preset.generation_json());
    }
    Ok(generation)
}

/// Generation keys that change transformers' output and that tarjama's encoder-decoder search
/// does not implement, each with the values that leave the output as it is.
const UNSUPPORTED_GENERATION: &[(&str, &[&str])] = &[
    ("encoder_no_repeat_ngram_size", &["0"]),
    ("encoder_repetition_penalty", &["1", "1.0"]),
    ("exponential_decay_length_penalty", &[]),
    ("suppress_tokens", &["[]"]),
    ("begin_suppress_tokens", &["[]"]),
    ("sequence_bias", &["{}", "[]"]),
    ("guidance_scale", &["1", "1.0"]),
    ("stop_strings", &["[]"]),
    ("num_beam_groups", &["1"]),
    ("diversity_penalty", &["0", "0.0"]),
    ("constraints", &["[]"]),
    ("force_words_ids", &["[]"]),
    ("penalty_alpha", &[]),
    ("dola_layers", &[]),
];

/// Refuses generation settings that transformers would follow and tarjama cannot: several end
/// tokens (transformers stops at any of them, tarjama's searches at one) and the keys above.
fn refuse_unsupported_generation(file: &str, json: &serde_json::Value) -> Result<()> {
    if let Some(serde_json::Value::Array(ids)) = json.get("eos_token_id") {
        if ids.iter().any(|id| Some(id) != ids.first()) {
            return Err(Error::model(format!(
                "{file} lists several end tokens (eos_token_id {}), and tarjama's \
                 encoder-decoder search stops at one: keep only the one the model ends its \
                 output with",
                serde_json::Value::Array(ids.clone())
            )));
        }
    }
    for (key, neutral) in UNSUPPORTED_GENERATION {
        let Some(value) = json.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        if !neutral.contains(&value.to_string().as_str()) {
            return Err(Error::model(format!(
                "{file} sets {key} to {value}, which tarjama does not implement: remove the key \
                 (or set it to null) to decode without it"
            )));
        }
    }
    Ok(())
}

/// The largest absolute difference between two tensors of the same shape, for tests.
#[cfg(test)]
pub(crate) fn max_abs_diff(
    a: &candle_core::Tensor,
    b: &candle_core::Tensor,
) -> candle_core::Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}
