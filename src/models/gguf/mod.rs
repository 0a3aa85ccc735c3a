//! Quantized chat models from GGUF files. The architecture comes from the file's
//! `general.architecture`: Llama, Qwen2 and Qwen3 run on [`decoder::Decoder`], whose cache can
//! keep a shared prompt prefix; Gemma 3 runs on candle-transformers' model file.

mod decoder;
mod hparams;
mod validate;

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_gemma3;

use decoder::Decoder;
use hparams::Hyperparameters;

use crate::{Error, Result};

pub use validate::validate_gguf;

/// Architectures tarjama can run, as GGUF names them.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["qwen2", "qwen3", "llama", "gemma3"];

enum Weights {
    Decoder(Decoder),
    Gemma3(quantized_gemma3::ModelWeights),
}

/// A decoder-only chat model with its own key/value cache.
pub struct ChatModel {
    weights: Weights,
    pub architecture: String,
    /// The context the model was trained for (`<arch>.context_length`).
    pub context_length: usize,
    device: Device,
    /// The tokens whose keys and values are cached, in order.
    cached: Vec<u32>,
}

/// A GGUF file being read. candle's quantized tensors own their data, so each tensor is
/// copied into memory once; reading the file (rather than mapping it, as before) keeps its pages
/// out of the process's resident memory, where a mapped file counted a second time.
pub type GgufFile = BufReader<File>;

/// Reads a GGUF header (metadata and tensor index, no tensor data) and checks that the file
/// holds all the tensor data the header announces.
pub fn read_header(path: &Path) -> Result<(gguf_file::Content, GgufFile)> {
    let file = File::open(path)
        .map_err(|e| Error::model(format!("cannot open GGUF file {}: {e}", path.display())))?;
    let mut file = BufReader::new(file);
    let content = read_content(&mut file, path)?;
    check_complete(&content, &mut file, path)?;
    Ok((content, file))
}

/// Reads the header, metadata and tensor index of the GGUF file `reader` is at the start of,
/// after [`validate_gguf`] has checked that candle can do so without absurd allocations or a
/// panic (candle trusts the file's length fields more than a damaged download deserves). The
/// reader is left after the tensor index; `path` names the file in errors.
pub fn read_content<R: Read + Seek>(reader: &mut R, path: &Path) -> Result<gguf_file::Content> {
    let unreadable = |why: &dyn std::fmt::Display| {
        Error::model(format!(
            "{} is not a readable GGUF file ({why}): it is damaged, truncated or not a GGUF \
             model; download it again",
            path.display()
        ))
    };
    let io = |e: std::io::Error| unreadable(&e);
    let start = reader.stream_position().map_err(io)?;
    let end = reader.seek(std::io::SeekFrom::End(0)).map_err(io)?;
    reader.seek(std::io::SeekFrom::Start(start)).map_err(io)?;
    validate_gguf(&mut *reader, end.saturating_sub(start)).map_err(|why| unreadable(&why))?;
    reader.seek(std::io::SeekFrom::Start(start)).map_err(io)?;
    gguf_file::Content::read(reader).map_err(|e| unreadable(&crate::tokenizer::gguf::one_line(&e)))
}

/// A truncated download still has a valid header; the last tensor then ends past the file end.
/// The sizes cannot overflow: [`validate_gguf`] has bounded them.
pub(crate) fn check_complete<R: Seek>(
    content: &gguf_file::Content,
    file: &mut R,
    path: &Path,
) -> Result<()> {
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
        if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
            return Err(unsupported(&arch));
        }
        // Checked for every architecture, candle's Gemma 3 included, before a tensor is read.
        let hp = Hyperparameters::read(&content, &arch)?;
        let weights = match arch.as_str() {
            "qwen2" | "qwen3" | "llama" => {
                Weights::Decoder(Decoder::from_gguf(&content, &hp, &arch, reader, device)?)
            }
            "gemma3" => Weights::Gemma3(
                quantized_gemma3::ModelWeights::from_gguf(content, reader, device).map_err(
                    |e| {
                        Error::model(format!(
                            "cannot load the gemma3 weights of the GGUF file: {e}"
                        ))
                    },
                )?,
            ),
            other => return Err(unsupported(other)),
        };
        Ok(Self {
            weights,
            architecture: arch,
            context_length: hp.context_length,
            device: device.clone(),
            cached: Vec::new(),
        })
    }

    /// Positions in the cache.
    pub fn position(&self) -> usize {
        self.cached.len()
    }

    /// Forgets the cache: the next tokens start a new sequence.
    pub fn reset(&mut self) {
        self.rewind(0);
    }

    fn rewind(&mut self, len: usize) {
        match &mut self.weights {
            Weights::Decoder(m) => m.truncate(len),
            // Gemma 3's cache can only restart, which it does when fed position 0.
            Weights::Gemma3(_) => assert_eq!(len, 0, "gemma3 caches cannot be cut back"),
        }
        self.cached.truncate(len);
    }

    /// Prepares the cache for `prompt` and returns how many of its first tokens are already
    /// cached: the prompt's common prefix with what the cache holds, less at least one token,
    /// since the model must read one to give the next-token logits.
    pub fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let common = match self.weights {
            Weights::Decoder(_) => self
                .cached
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count()
                .min(prompt.len().saturating_sub(1)),
            Weights::Gemma3(_) => 0,
        };
        self.rewind(common);
        common
    }

    /// Feeds `tokens` after what is cached and returns the next-token logits (f32, `[vocab]`).
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let logits = match &mut self.weights {
            Weights::Decoder(m) => m.forward(tokens)?,
            Weights::Gemma3(m) => {
                let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
                m.forward(&input, self.cached.len())?
                    .flatten_all()?
                    .to_dtype(candle_core::DType::F32)?
            }
        };
        self.cached.extend_from_slice(tokens);
        Ok(logits.to_vec1::<f32>()?)
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
