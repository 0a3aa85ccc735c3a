//! Quantized chat models from GGUF files. The architecture comes from the file's
//! `general.architecture`: Llama, Qwen2 and Qwen3 run on [`decoder::Decoder`], whose cache can
//! keep a shared prompt prefix; Gemma 3 runs on candle-transformers' model file.

mod decoder;
mod hparams;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_gemma3;

use decoder::Decoder;
use hparams::Hyperparameters;

use crate::models::CausalLm;
use crate::{Error, Result};

pub use crate::gguf_reader::{
    check_complete, read_content, read_header, validate_gguf, GgufFile, ReadAt,
};

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

/// A copy of `content`, for candle's Gemma 3, which takes the header by value.
fn owned(content: &gguf_file::Content) -> gguf_file::Content {
    gguf_file::Content {
        magic: content.magic,
        metadata: content.metadata.clone(),
        tensor_infos: content
            .tensor_infos
            .iter()
            .map(|(name, info)| {
                let info = gguf_file::TensorInfo {
                    ggml_dtype: info.ggml_dtype,
                    shape: info.shape.clone(),
                    offset: info.offset,
                };
                (name.clone(), info)
            })
            .collect(),
        tensor_data_offset: content.tensor_data_offset,
    }
}

impl ChatModel {
    /// Loads the weights of a GGUF file whose header was read by [`read_header`]. The header is
    /// borrowed, so that the caller can build the tokenizer from it at the same time.
    pub fn load<R: ReadAt>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let arch = architecture(content)?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
            return Err(unsupported(&arch));
        }
        // Checked for every architecture, candle's Gemma 3 included, before a tensor is read.
        let hp = Hyperparameters::read(content, &arch)?;
        let weights = match arch.as_str() {
            "qwen2" | "qwen3" | "llama" => {
                Weights::Decoder(Decoder::from_gguf(content, &hp, &arch, reader, device)?)
            }
            "gemma3" => Weights::Gemma3(
                quantized_gemma3::ModelWeights::from_gguf(owned(content), reader, device).map_err(
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

    /// Maps in the pages of the weights used where the file lies: call it once huge pages are on
    /// again after the load (`allocator::without_huge_pages`), so that they are mapped as huge
    /// pages.
    pub fn fault_in_weights(&self) {
        if let Weights::Decoder(m) = &self.weights {
            m.fault_in_weights();
        }
    }

    /// Bytes of weights read where the mapped file lies, not copied: 0 for models read into
    /// memory (bytes given, not a file; GPUs; Gemma 3, which candle loads).
    pub fn in_place_bytes(&self) -> usize {
        match &self.weights {
            Weights::Decoder(m) => m.in_place_bytes(),
            _ => 0,
        }
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

impl CausalLm for ChatModel {
    fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        ChatModel::reuse_prefix(self, prompt)
    }

    fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        ChatModel::forward(self, tokens)
    }
}
