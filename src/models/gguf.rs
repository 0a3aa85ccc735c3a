//! Quantized chat models from GGUF files, run with candle-transformers' quantized model files.
//! The architecture comes from the file's `general.architecture`.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3,
};

use crate::{Error, Result};

/// Architectures tarjama can run, as GGUF names them.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["qwen2", "qwen3", "llama", "gemma3"];

enum Weights {
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Llama(quantized_llama::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

/// A decoder-only chat model with its own key/value cache.
pub struct ChatModel {
    weights: Weights,
    pub architecture: String,
    /// The context the model was trained for (`<arch>.context_length`).
    pub context_length: usize,
    device: Device,
    /// Positions already in the cache.
    position: usize,
}

/// Reads a GGUF header (metadata and tensor index, no tensor data) and checks that the file
/// holds all the tensor data the header announces.
pub fn read_header(path: &Path) -> Result<(gguf_file::Content, File)> {
    let mut file = File::open(path)
        .map_err(|e| Error::model(format!("cannot open GGUF file {}: {e}", path.display())))?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| {
        Error::model(format!(
            "{} is not a readable GGUF file ({e}): download it again",
            path.display()
        ))
    })?;
    check_complete(&content, &mut file, path)?;
    Ok((content, file))
}

/// A truncated download still has a valid header; the last tensor then ends past the file end.
fn check_complete<R: Seek>(content: &gguf_file::Content, file: &mut R, path: &Path) -> Result<()> {
    let file_len = file
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| Error::model(format!("cannot read {}: {e}", path.display())))?;
    let data_end = content
        .tensor_infos
        .values()
        .map(|info| {
            let elements = info.shape.elem_count() as u64;
            let block = info.ggml_dtype.block_size() as u64;
            info.offset + elements / block * info.ggml_dtype.type_size() as u64
        })
        .max()
        .unwrap_or(0)
        + content.tensor_data_offset;
    if data_end > file_len {
        return Err(Error::model(format!(
            "GGUF file {} is truncated: its tensors need {data_end} bytes but the file has {file_len}; download it again",
            path.display()
        )));
    }
    Ok(())
}

/// A metadata value as an unsigned integer.
fn metadata_usize(content: &gguf_file::Content, key: &str) -> Option<usize> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_u64().ok().or_else(|| v.to_u32().ok().map(u64::from)))
        .map(|v| v as usize)
}

pub fn architecture(content: &gguf_file::Content) -> Result<String> {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| {
            Error::model("the GGUF file has no general.architecture: it is not a model file")
        })
}

/// Fails, naming the supported architectures, unless tarjama can run this file's model.
pub fn check_supported(content: &gguf_file::Content) -> Result<()> {
    let arch = architecture(content)?;
    if SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        Ok(())
    } else {
        Err(unsupported(&arch))
    }
}

fn unsupported(arch: &str) -> Error {
    Error::model(format!(
        "GGUF architecture {arch:?} is not supported; supported: {}",
        SUPPORTED_ARCHITECTURES.join(", ")
    ))
}

impl ChatModel {
    /// Loads the weights of a GGUF file whose header was read by [`read_header`].
    pub fn load<R: Read + Seek>(
        content: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let arch = architecture(&content)?;
        let context_length =
            metadata_usize(&content, &format!("{arch}.context_length")).unwrap_or(4096);
        let load_error = |e: candle_core::Error| {
            Error::model(format!(
                "cannot load the {arch} weights of the GGUF file: {e}"
            ))
        };
        let weights = match arch.as_str() {
            "qwen2" => Weights::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(content, reader, device)
                    .map_err(load_error)?,
            ),
            "qwen3" => Weights::Qwen3(
                quantized_qwen3::ModelWeights::from_gguf(content, reader, device)
                    .map_err(load_error)?,
            ),
            "llama" => Weights::Llama(
                quantized_llama::ModelWeights::from_gguf(content, reader, device)
                    .map_err(load_error)?,
            ),
            "gemma3" => Weights::Gemma3(
                quantized_gemma3::ModelWeights::from_gguf(content, reader, device)
                    .map_err(load_error)?,
            ),
            other => return Err(unsupported(other)),
        };
        Ok(Self {
            weights,
            architecture: arch,
            context_length,
            device: device.clone(),
            position: 0,
        })
    }

    pub fn position(&self) -> usize {
        self.position
    }

    /// Forgets the cache: the next tokens start a new sequence.
    pub fn reset(&mut self) {
        match &mut self.weights {
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            Weights::Llama(m) => m.clear_kv_cache(),
            // Gemma 3's cache has no clear method; it restarts when fed position 0.
            Weights::Gemma3(_) => {}
        }
        self.position = 0;
    }

    /// Feeds `tokens` after what is cached and returns the next-token logits (f32, `[vocab]`).
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let pos = self.position;
        let logits = match &mut self.weights {
            Weights::Qwen2(m) => m.forward(&input, pos)?,
            Weights::Qwen3(m) => m.forward(&input, pos)?,
            Weights::Llama(m) => m.forward(&input, pos)?,
            Weights::Gemma3(m) => m.forward(&input, pos)?,
        };
        self.position += tokens.len();
        // Some architectures return `[1, vocab]`, others `[1, 1, vocab]`.
        Ok(logits
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_gguf_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        std::fs::write(&path, b"definitely not gguf").unwrap();
        let err = read_header(&path).err().unwrap();
        assert!(err.to_string().contains("not a readable GGUF"), "{err}");
        assert_eq!(err.exit_code(), 3);
    }
}
