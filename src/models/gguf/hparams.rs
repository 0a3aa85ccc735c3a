//! A GGUF chat model's hyperparameters, read from its metadata and checked, for every
//! architecture, before any tensor is read or anything is sized from them: against the bounds of
//! [`crate::models::limits`], against each other, and against the shapes of the tensors the
//! header lists.
//!
//! [`super::validate_gguf`] has made sure the header parses into a bounded amount of memory; this
//! makes sure its numbers describe a model. Without it a head count of 0 divides by zero, a block
//! count of 2^62 overflows a `Vec`'s capacity, and candle's Gemma 3 divides by a sliding-window
//! period of 0, each a panic instead of an error.

use candle_core::quantized::gguf_file::{self, Value};

use crate::models::limits::{
    divides, finite, within, MAX_CONTEXT, MAX_FFN, MAX_HEADS, MAX_HEAD_DIM, MAX_LAYERS, MAX_VOCAB,
    MAX_WIDTH,
};
use crate::{Error, Result};

/// The context a file that does not say is assumed to have.
const DEFAULT_CONTEXT: usize = 4096;

/// The rope base of a file that does not say (llama.cpp's default).
const DEFAULT_ROPE_BASE: f32 = 10_000.0;

#[derive(Debug, Clone)]
pub(super) struct Hyperparameters {
    pub block_count: usize,
    pub embedding_length: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    /// `attention.key_length` (Qwen3 and Gemma 3 set heads wider than `embedding_length /
    /// head_count`), else that quotient.
    pub head_dim: usize,
    pub context_length: usize,
    pub rms_norm_eps: f64,
    pub rope_freq_base: f32,
}

impl Hyperparameters {
    /// Reads the `<arch>.*` hyperparameters and checks them; the error names the key or tensor
    /// and the value.
    pub fn read(content: &gguf_file::Content, arch: &str) -> Result<Self> {
        Self::check(content, arch).map_err(|why| {
            Error::model(format!(
                "the GGUF file does not describe a usable {arch} model: {why}; it is damaged or \
                 was not written by a llama.cpp converter, download it again"
            ))
        })
    }

    fn check(content: &gguf_file::Content, arch: &str) -> Result<Self, String> {
        let meta = Metadata { content, arch };
        let block_count = meta.required("block_count")?;
        within(&meta.key("block_count"), block_count, 1, MAX_LAYERS)?;
        let embedding_length = meta.required("embedding_length")?;
        within(
            &meta.key("embedding_length"),
            embedding_length,
            1,
            MAX_WIDTH,
        )?;
        let head_count = meta.required("attention.head_count")?;
        within(&meta.key("attention.head_count"), head_count, 1, MAX_HEADS)?;
        let head_count_kv = meta.optional("attention.head_count_kv")?;
        let head_count_kv = head_count_kv.unwrap_or(head_count);
        within(
            &meta.key("attention.head_count_kv"),
            head_count_kv,
            1,
            MAX_HEADS,
        )?;
        // Each key/value head serves a whole group of query heads.
        divides(
            (&meta.key("attention.head_count"), head_count),
            (&meta.key("attention.head_count_kv"), head_count_kv),
        )?;
        if arch == "gemma3" {
            // candle's Gemma 3 reads it unconditionally; saying so here names the key.
            meta.required("attention.key_length")?;
        }
        let (head_dim, head_dim_key) = match meta.optional("attention.key_length")? {
            Some(width) => (width, meta.key("attention.key_length")),
            None => {
                divides(
                    (&meta.key("embedding_length"), embedding_length),
                    (&meta.key("attention.head_count"), head_count),
                )?;
                let name = "the head width (embedding_length / head_count)";
                (embedding_length / head_count, name.to_string())
            }
        };
        within(&head_dim_key, head_dim, 1, MAX_HEAD_DIM)?;
        if let Some(width) = meta.optional("attention.value_length")? {
            // Both decoders give values the keys' width.
            if width != head_dim {
                return Err(format!(
                    "{} is {width}, not the key width {head_dim}",
                    meta.key("attention.value_length")
                ));
            }
        }
        let context_length = meta.optional("context_length")?.unwrap_or(DEFAULT_CONTEXT);
        within(&meta.key("context_length"), context_length, 1, MAX_CONTEXT)?;
        let rms_norm_eps = f64::from(meta.float("attention.layer_norm_rms_epsilon")?.ok_or_else(
            || {
                format!(
                    "{} is missing",
                    meta.key("attention.layer_norm_rms_epsilon")
                )
            },
        )?);
        finite(
            &meta.key("attention.layer_norm_rms_epsilon"),
            rms_norm_eps,
            false,
        )?;
        let rope_freq_base = meta.float("rope.freq_base")?.unwrap_or(DEFAULT_ROPE_BASE);
        finite(&meta.key("rope.freq_base"), f64::from(rope_freq_base), true)?;
        if arch == "gemma3" {
            if let Some(base) = meta.float("rope.local_freq_base")? {
                finite(&meta.key("rope.local_freq_base"), f64::from(base), true)?;
            }
            // candle takes the layer index modulo this period.
            if let Some(period) = meta.optional("attention.sliding_window_type")? {
                within(
                    &meta.key("attention.sliding_window_type"),
                    period,
                    1,
                    MAX_LAYERS,
                )?;
            }
        }
        let hp = Self {
            block_count,
            embedding_length,
            head_count,
            head_count_kv,
            head_dim,
            context_length,
            rms_norm_eps,
            rope_freq_base,
        };
        hp.check_tensors(content, meta.optional("feed_forward_length")?)?;
        Ok(hp)
    }

    /// The matrices every block of every supported architecture has must have the shapes the
    /// metadata implies. Only the tensor index is read. candle's quantized tensors keep whatever
    /// shape the file gives (and its Gemma 3 never compares them with the metadata), so a
    /// mismatch would otherwise surface as a failed reshape in the middle of a prompt.
    fn check_tensors(
        &self,
        content: &gguf_file::Content,
        feed_forward_length: Option<usize>,
    ) -> Result<(), String> {
        let emb = self.embedding_length;
        let q = self.head_count * self.head_dim;
        let kv = self.head_count_kv * self.head_dim;
        let (vocab, _) = matrix(content, "token_embd.weight", None, Some(emb))?;
        within(
            "the vocabulary (token_embd.weight rows)",
            vocab,
            1,
            MAX_VOCAB,
        )?;
        if content.tensor_infos.contains_key("output.weight") {
            let (vocab, _) = matrix(content, "output.weight", None, Some(emb))?;
            within("the vocabulary (output.weight rows)", vocab, 1, MAX_VOCAB)?;
        }
        let mut ffn = feed_forward_length;
        if let Some(ffn) = ffn {
            within("feed_forward_length", ffn, 1, MAX_FFN)?;
        }
        for i in 0..self.block_count {
            let name = |t: &str| format!("blk.{i}.{t}.weight");
            matrix(content, &name("attn_q"), Some(q), Some(emb))?;
            matrix(content, &name("attn_k"), Some(kv), Some(emb))?;
            matrix(content, &name("attn_v"), Some(kv), Some(emb))?;
            matrix(content, &name("attn_output"), Some(emb), Some(q))?;
            let (rows, _) = matrix(content, &name("ffn_up"), ffn, Some(emb))?;
            within("feed_forward_length (ffn_up.weight rows)", rows, 1, MAX_FFN)?;
            ffn = Some(rows);
            matrix(content, &name("ffn_gate"), ffn, Some(emb))?;
            matrix(content, &name("ffn_down"), Some(emb), ffn)?;
        }
        Ok(())
    }
}

/// The `(rows, columns)` of the matrix `name`, which must have the given ones where given.
fn matrix(
    content: &gguf_file::Content,
    name: &str,
    rows: Option<usize>,
    cols: Option<usize>,
) -> Result<(usize, usize), String> {
    let info = content
        .tensor_infos
        .get(name)
        .ok_or_else(|| format!("it has no tensor {name}"))?;
    // candle lists GGUF dimensions outermost first: a weight is (out, in).
    let &[r, c] = info.shape.dims() else {
        return Err(format!(
            "tensor {name} has shape {:?}, not a matrix",
            info.shape.dims()
        ));
    };
    let want = (rows.unwrap_or(r), cols.unwrap_or(c));
    if (r, c) != want {
        return Err(format!(
            "tensor {name} is {r} × {c} where the metadata implies {} × {}",
            want.0, want.1
        ));
    }
    Ok((r, c))
}

/// The `<arch>.*` metadata keys.
struct Metadata<'a> {
    content: &'a gguf_file::Content,
    arch: &'a str,
}

impl Metadata<'_> {
    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.arch)
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(&self.key(key))
    }

    /// An unsigned integer, as llama.cpp's converters write them (u32, or u64), if present.
    fn optional(&self, key: &str) -> Result<Option<usize>, String> {
        let Some(value) = self.value(key) else {
            return Ok(None);
        };
        let number = match value {
            Value::U32(v) => u64::from(*v),
            Value::U64(v) => *v,
            other => {
                return Err(format!(
                    "{} is a {:?}, not an unsigned integer",
                    self.key(key),
                    other.value_type()
                ))
            }
        };
        // Beyond usize only on 32-bit targets, and beyond every bound there.
        Ok(Some(usize::try_from(number).unwrap_or(usize::MAX)))
    }

    fn required(&self, key: &str) -> Result<usize, String> {
        self.optional(key)?
            .ok_or_else(|| format!("{} is missing", self.key(key)))
    }

    fn float(&self, key: &str) -> Result<Option<f32>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::F32(v)) => Ok(Some(*v)),
            Some(other) => Err(format!(
                "{} is a {:?}, not an f32",
                self.key(key),
                other.value_type()
            )),
        }
    }
}
