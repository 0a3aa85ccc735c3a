//! Bounds on the hyperparameters a model file declares, checked when it loads, before anything
//! is sized from them: `BartConfig::validate`, `T5Config::validate` and the GGUF loader's
//! `Hyperparameters::read` each check their own keys against these.
//!
//! A damaged or hostile `config.json` or GGUF header otherwise divides by zero (heads), asks for a
//! `Vec` of 2^62 layers, or computes a position table of terabytes, and the process panics or
//! aborts, leaving its temporary output behind. Each bound is far above any published model
//! (figures as of 2025), so no real checkpoint is refused, yet low enough that what a value sizes
//! before the weights are read stays small.

/// Layers of one stack. The deepest published models have 126 (Llama 3.1 405B); the
/// encoder-decoders at most 24 per stack (T5-11B, NLLB-3.3B).
pub const MAX_LAYERS: usize = 1 << 10;

/// Attention heads (query or key/value). The most published: 128 (T5-11B, Llama 3.1 405B).
pub const MAX_HEADS: usize = 1 << 10;

/// The model width (`d_model`, `embedding_length`). The widest published: 16,384 (Llama 3.1
/// 405B).
pub const MAX_WIDTH: usize = 1 << 16;

/// A feed-forward layer's width. The widest published: 65,536 (T5-11B).
pub const MAX_FFN: usize = 1 << 18;

/// One head's width (`d_kv`, `key_length`). The widest published: 256 (Gemma). candle's Gemma 3
/// computes a 131,072-position rope table of this width per layer at load, so this bound also
/// keeps that table sized by the real model rather than by a number in the header.
pub const MAX_HEAD_DIM: usize = 1 << 10;

/// Absolute positions of an encoder-decoder (`max_position_embeddings`, T5's `n_positions`). The
/// longest published: 16,384 (LED); OPUS-MT, BART, mBART and NLLB have 512 or 1,024.
pub const MAX_POSITIONS: usize = 1 << 20;

/// Elements of a position table, `(positions + 2) × d_model`. Marian and M2M100/NLLB compute
/// theirs at load rather than read it from the weights; the largest real one is NLLB-3.3B's
/// 1,026 × 2,048 (2^21). 2^24 f32 values are 64 MiB.
pub const MAX_POSITION_TABLE: usize = 1 << 24;

/// A chat model's context (`context_length`). The longest published: 10,485,760 (Llama 4 Scout).
/// Nothing is sized from it (the cache grows as tokens come), but a header claiming more is
/// damaged.
pub const MAX_CONTEXT: usize = 1 << 24;

/// Vocabulary entries. The largest published vocabularies have 262,144 (Gemma 3) and 256,206
/// (NLLB) entries.
pub const MAX_VOCAB: usize = 1 << 24;

/// T5's relative-position buckets (32 in every published checkpoint); each is a row of the bias
/// table.
pub const MAX_T5_BUCKETS: usize = 1 << 12;

/// T5's `relative_attention_max_distance` (128 in every published checkpoint): the bucket table
/// built at load has one entry per distance up to it.
pub const MAX_T5_DISTANCE: usize = 1 << 20;

/// `Ok` when `value` of `key` lies in `min..=max`; otherwise what is wrong, in words, for the
/// caller to put in its one-line error.
pub(crate) fn within(key: &str, value: usize, min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else if value < min {
        Err(format!("{key} is {value}, and must be at least {min}"))
    } else {
        Err(format!(
            "{key} is {value}, beyond {max}, far more than any real model has"
        ))
    }
}

/// `Ok` when `whole` divides evenly into `parts`.
pub(crate) fn divides(
    (whole_key, whole): (&str, usize),
    (parts_key, parts): (&str, usize),
) -> Result<(), String> {
    if parts != 0 && whole.is_multiple_of(parts) {
        Ok(())
    } else {
        Err(format!(
            "{whole_key} ({whole}) is not a multiple of {parts_key} ({parts})"
        ))
    }
}

/// `Ok` for a finite, non-negative number (an epsilon) or, with `positive`, a finite positive one
/// (a rope base).
pub(crate) fn finite(key: &str, value: f64, positive: bool) -> Result<(), String> {
    let fine = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
    if fine {
        Ok(())
    } else {
        let want = if positive { "positive" } else { "non-negative" };
        Err(format!(
            "{key} is {value}, and must be a finite {want} number"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_which_key_and_which_bound() {
        assert_eq!(within("heads", 4, 1, 8), Ok(()));
        assert_eq!(
            within("heads", 0, 1, 8).unwrap_err(),
            "heads is 0, and must be at least 1"
        );
        assert!(within("layers", 1 << 62, 1, MAX_LAYERS)
            .unwrap_err()
            .contains("beyond 1024"));
        assert!(divides(("d_model", 32), ("heads", 4)).is_ok());
        assert!(divides(("d_model", 30), ("heads", 4))
            .unwrap_err()
            .contains("d_model (30) is not a multiple of heads (4)"));
        assert!(divides(("d_model", 30), ("heads", 0)).is_err());
        assert!(finite("eps", 1e-6, false).is_ok() && finite("eps", 0.0, false).is_ok());
        assert!(finite("base", 0.0, true).is_err() && finite("eps", f64::NAN, false).is_err());
    }
}
