//! What the decoding loops (`generate`) need from a model: [`Seq2SeqModel`] for the
//! encoder-decoders, [`CausalLm`] for the chat decoders. Defined here, with the models that
//! implement them, so decoding depends on models and never the other way round.

use candle_core::{Device, Tensor};

use super::kv_cache::DecoderCache;
use crate::Result;

/// What the decoding loops need from an encoder-decoder model.
pub trait Seq2SeqModel {
    /// Encodes a right-padded batch: `input_ids` and `attention_mask` are `[batch, len]` `u32`.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor>;

    /// Prepares the decoder for a batch: computes cross-attention keys/values once.
    fn start_decoder(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<DecoderCache>;

    /// Runs the decoder over `ids` (`[rows, len]`) after the positions in `cache`, extends the
    /// cache, and returns logits `[rows, len, vocab]` in f32.
    fn decode(&self, ids: &Tensor, cache: &mut DecoderCache) -> candle_core::Result<Tensor>;

    /// Feeds one token per row and returns next-token logits `[rows, vocab]` in f32.
    fn decode_step(
        &self,
        tokens: &Tensor,
        cache: &mut DecoderCache,
    ) -> candle_core::Result<Tensor> {
        let rows = tokens.dim(0)?;
        self.decode(&tokens.reshape((rows, 1))?, cache)?.squeeze(1)
    }

    /// The longest source or target sequence the model has positions for.
    fn max_positions(&self) -> usize;

    fn device(&self) -> &Device;
}

/// What the chat decoding loop needs from a decoder-only model that keeps its own key/value
/// cache of the tokens it has read.
pub trait CausalLm {
    /// Prepares the cache for `prompt` and returns how many of its first tokens are already
    /// cached, so that only the rest need be fed.
    fn reuse_prefix(&mut self, prompt: &[u32]) -> usize;

    /// Feeds `tokens` after what is cached and returns the next-token logits (f32, `[vocab]`).
    fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>>;
}
