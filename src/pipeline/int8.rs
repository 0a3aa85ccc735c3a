//! `--quantize q8_0` on CPUs where the int8 kernel runs: the linear layers' int8 weights read
//! from the file `tarjama models quantize` saved beside the model's weights when it fits them,
//! else quantized at load; and the making of that file.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};

use super::translate::Seq2Seq;
use crate::device::Precision;
use crate::hub::ModelFiles;
use crate::models::saved_int8::{self, Int8Recorder, SavedInt8, Unusable};
use crate::models::{Int8Store, Quantize};
use crate::{Error, Result};

/// Where the saved int8 weights of `files` are: beside its weights (the snapshot of a model in
/// the Hugging Face cache, so `tarjama models rm` removes them with it).
pub fn saved_path(files: &ModelFiles) -> PathBuf {
    files
        .weights
        .parent()
        .unwrap_or(&files.dir)
        .join(saved_int8::FILE_NAME)
}

/// Whether saved int8 weights serve on this machine's CPU: the int8 kernel runs on it.
pub fn saved_applies() -> bool {
    saved_int8::applies(&Device::Cpu)
}

/// How a load gets its linear layers for `precision`, and a note on where int8 weights came
/// from (`--verbose`). Saved int8 weights that do not fit are not read: a one-line warning
/// says why, and the layers are quantized at load.
pub(super) fn quantization(
    files: &ModelFiles,
    precision: Precision,
    device: &Device,
) -> Result<(Option<Quantize>, Option<String>)> {
    let Some(format) = precision.quantize else {
        return Ok((None, None));
    };
    let at_load = |note: &str| Ok((Some(Quantize::at_load(format)), Some(note.to_string())));
    if !saved_int8::applies(device) || format != GgmlDType::Q8_0 {
        return at_load("int8 quantized at load");
    }
    // Saved weights are quantized from f32 (`make`), which another --dtype does not read.
    if precision.dtype != DType::F32 {
        return at_load("int8 quantized at load (saved int8 weights serve --dtype f32 only)");
    }
    let path = saved_path(files);
    let key = saved_int8::source_key(&files.weight_files()?)?;
    match SavedInt8::open(&path, &key, precision.dtype) {
        Ok(saved) => {
            let quantize = Quantize {
                format,
                int8: Int8Store::Saved(Arc::new(saved)),
            };
            let note = format!("int8 read from {}", path.display());
            Ok((Some(quantize), Some(note)))
        }
        Err(Unusable::Missing) => at_load(&format!(
            "int8 quantized at load (`tarjama models quantize {}` saves it)",
            files.name
        )),
        Err(why) => {
            eprintln!(
                "tarjama: warning: not reading the saved int8 weights {} ({why}); quantizing at load instead (`tarjama models quantize {}` rewrites them)",
                path.display(),
                files.name
            );
            at_load("int8 quantized at load")
        }
    }
}

/// Saved int8 weights made for a model by [`make`], to be written to `path`.
pub struct Int8File {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub layers: usize,
}

/// What `tarjama models quantize` finds beside a model's weights.
pub enum Existing {
    /// Saved int8 weights that fit the weights.
    UpToDate(PathBuf),
    Missing(PathBuf),
    /// Saved int8 weights that do not fit, and why ("stale: …", "corrupt: …").
    Unusable(PathBuf, String),
}

/// Whether the saved int8 weights of `files` fit its weights, from the file's header.
pub fn existing(files: &ModelFiles) -> Result<Existing> {
    let path = saved_path(files);
    let key = saved_int8::source_key(&files.weight_files()?)?;
    Ok(match saved_int8::check(&path, &key, DType::F32) {
        Ok(()) => Existing::UpToDate(path),
        Err(Unusable::Missing) => Existing::Missing(path),
        Err(why) => Existing::Unusable(path, why.to_string()),
    })
}

/// Loads the model of `files` with its linear layers quantized to int8, as `--quantize q8_0`
/// does, and lays out what they became as saved int8 weights. Only on a CPU where the int8
/// kernel runs: elsewhere `--quantize` uses candle's Q8_0 blocks, which nothing saves.
pub fn make(files: &ModelFiles) -> Result<Int8File> {
    let device = Device::Cpu;
    if !saved_applies() {
        return Err(Error::usage(
            "saved int8 weights are for x86-64 CPUs with AVX2 and FMA or AVX-512, and this CPU has neither: `--quantize q8_0` quantizes at load here",
        ));
    }
    let weights = files.weight_files()?;
    let key = saved_int8::source_key(&weights)?;
    let recorder = Arc::new(Int8Recorder::default());
    let quantize = Quantize {
        format: GgmlDType::Q8_0,
        int8: Int8Store::Record(recorder.clone()),
    };
    let precision = Precision {
        dtype: DType::F32,
        quantize: Some(GgmlDType::Q8_0),
    };
    drop(Seq2Seq::load_with(
        files,
        &device,
        precision,
        Some(quantize),
        None,
    )?);
    if saved_int8::source_key(&weights)? != key {
        return Err(Error::model(format!(
            "the weights of {} changed while they were quantized: run the command again",
            files.name
        )));
    }
    if recorder.is_empty() {
        return Err(Error::model(format!(
            "{} has no linear layers to quantize",
            files.name
        )));
    }
    Ok(Int8File {
        path: saved_path(files),
        bytes: recorder.to_bytes(&key, DType::F32)?,
        layers: recorder.len(),
    })
}
