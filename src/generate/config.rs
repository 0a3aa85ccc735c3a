//! Generation settings with Hugging Face semantics, read from `generation_config.json` (or, for
//! checkpoints without one, the generation keys of `config.json`) and overridden by the CLI.

use serde_json::Value;

/// When beam search may stop for an input (HF's `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// Stop as soon as `num_beams` hypotheses are finished.
    Yes,
    /// Stop when the best running beam, scored at the current length, cannot beat the worst
    /// finished one (HF's default heuristic).
    Heuristic,
    /// Stop only when no running beam could beat the finished ones even at `max_length`.
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    /// Maximum decoder length, counting the start token (HF's `max_length`).
    pub max_length: usize,
    /// Minimum decoder length, counting the start token (HF's `min_length`).
    pub min_length: usize,
    pub num_beams: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub no_repeat_ngram_size: usize,
    pub repetition_penalty: f32,
    pub bad_words_ids: Vec<Vec<u32>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
    /// Re-normalise scores into log-probabilities after the processors ran (OPUS-MT sets this),
    /// so that banned tokens' probability mass is shared among the others.
    pub renormalize_logits: bool,
}

/// transformers' `max_length` default, counted in new tokens.
const DEFAULT_NEW_TOKENS: usize = 20;

impl GenerationConfig {
    /// HF's defaults for an encoder-decoder model with the given special tokens.
    pub fn new(decoder_start_token_id: u32, eos_token_id: u32, pad_token_id: u32) -> Self {
        Self {
            decoder_start_token_id,
            eos_token_id,
            pad_token_id,
            // When no file or flag sets a length, transformers 5 generates 20 new tokens after
            // the decoder start (`has_default_max_length` in `generate()`), capped at the
            // position table, which the pipeline does.
            max_length: 1 + DEFAULT_NEW_TOKENS,
            min_length: 0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            bad_words_ids: Vec::new(),
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            renormalize_logits: false,
        }
    }

    /// Applies the generation keys present in a JSON object (`generation_config.json` or
    /// `config.json`); absent or null keys keep their current value.
    pub fn apply_json(&mut self, json: &Value) {
        let uint = |key: &str| json.get(key).and_then(Value::as_u64);
        let float = |key: &str| json.get(key).and_then(Value::as_f64);
        if let Some(v) = uint("decoder_start_token_id") {
            self.decoder_start_token_id = v as u32;
        }
        if let Some(v) = first_id(json.get("eos_token_id")) {
            self.eos_token_id = v;
        }
        if let Some(v) = uint("pad_token_id") {
            self.pad_token_id = v as u32;
        }
        if let Some(v) = uint("max_length") {
            self.max_length = v as usize;
        }
        if let Some(v) = uint("min_length") {
            self.min_length = v as usize;
        }
        // The `*_new_tokens` forms take precedence in transformers; the decoder start counts in
        // `max_length`, not in them.
        if let Some(v) = uint("max_new_tokens") {
            self.max_length = 1 + v as usize;
        }
        if let Some(v) = uint("min_new_tokens") {
            self.min_length = 1 + v as usize;
        }
        if let Some(v) = uint("num_beams") {
            self.num_beams = v.max(1) as usize;
        }
        if let Some(v) = float("length_penalty") {
            self.length_penalty = v as f32;
        }
        match json.get("early_stopping") {
            Some(Value::Bool(true)) => self.early_stopping = EarlyStopping::Yes,
            Some(Value::Bool(false)) => self.early_stopping = EarlyStopping::Heuristic,
            Some(Value::String(s)) if s == "never" => self.early_stopping = EarlyStopping::Never,
            _ => {}
        }
        if let Some(v) = uint("no_repeat_ngram_size") {
            self.no_repeat_ngram_size = v as usize;
        }
        if let Some(v) = float("repetition_penalty") {
            self.repetition_penalty = v as f32;
        }
        if let Some(Value::Array(seqs)) = json.get("bad_words_ids") {
            self.bad_words_ids = seqs
                .iter()
                .filter_map(|seq| {
                    seq.as_array().map(|ids| {
                        ids.iter()
                            .filter_map(|id| id.as_u64().map(|x| x as u32))
                            .collect()
                    })
                })
                .collect();
        }
        if let Some(v) = json.get("renormalize_logits").and_then(Value::as_bool) {
            self.renormalize_logits = v;
        }
        if json.get("forced_bos_token_id").is_some() {
            self.forced_bos_token_id = uint("forced_bos_token_id").map(|v| v as u32);
        } else if json.get("force_bos_token_to_be_generated") == Some(&Value::Bool(true)) {
            // The pre-4.x form that transformers 5's GenerationConfig still honours.
            self.forced_bos_token_id = uint("bos_token_id").map(|v| v as u32);
        }
        if json.get("forced_eos_token_id").is_some() {
            self.forced_eos_token_id = first_id(json.get("forced_eos_token_id"));
        }
    }

    /// The number of tokens to generate at most, excluding the start token.
    pub fn max_new_tokens(&self) -> usize {
        self.max_length.saturating_sub(1)
    }
}

/// `eos_token_id` may be an integer or a list of them; the first one is the one that ends text.
fn first_id(value: Option<&Value>) -> Option<u32> {
    match value? {
        Value::Number(n) => n.as_u64().map(|v| v as u32),
        Value::Array(ids) => ids.first().and_then(Value::as_u64).map(|v| v as u32),
        _ => None,
    }
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
pub fn refuse_unsupported_generation(file: &str, json: &Value) -> crate::Result<()> {
    if let Some(Value::Array(ids)) = json.get("eos_token_id") {
        if ids.iter().any(|id| Some(id) != ids.first()) {
            return Err(crate::Error::model(format!(
                "{file} lists several end tokens (eos_token_id {}), and tarjama's \
                 encoder-decoder search stops at one: keep only the one the model ends its \
                 output with",
                Value::Array(ids.clone())
            )));
        }
    }
    for (key, neutral) in UNSUPPORTED_GENERATION {
        let Some(value) = json.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        if !neutral.contains(&value.to_string().as_str()) {
            return Err(crate::Error::model(format!(
                "{file} sets {key} to {value}, which tarjama does not implement: remove the key \
                 (or set it to null) to decode without it"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_overrides_defaults() {
        let mut cfg = GenerationConfig::new(5, 0, 5);
        cfg.apply_json(&serde_json::json!({
            "num_beams": 4, "max_length": 512, "bad_words_ids": [[5]],
            "early_stopping": "never", "forced_eos_token_id": 0, "length_penalty": 0.6
        }));
        assert_eq!(cfg.num_beams, 4);
        assert_eq!(cfg.max_length, 512);
        assert_eq!(cfg.bad_words_ids, vec![vec![5]]);
        assert_eq!(cfg.early_stopping, EarlyStopping::Never);
        assert_eq!(cfg.forced_eos_token_id, Some(0));
        assert_eq!(cfg.length_penalty, 0.6);
    }

    #[test]
    fn reads_the_new_tokens_forms_and_legacy_forced_bos() {
        let mut cfg = GenerationConfig::new(2, 2, 1);
        assert_eq!(
            cfg.max_new_tokens(),
            20,
            "transformers' default: 20 new tokens"
        );
        cfg.apply_json(&serde_json::json!({
            "max_length": 100, "max_new_tokens": 8, "min_length": 3, "min_new_tokens": 4,
            "bos_token_id": 0, "force_bos_token_to_be_generated": true
        }));
        assert_eq!((cfg.max_length, cfg.min_length), (9, 5));
        assert_eq!(cfg.forced_bos_token_id, Some(0));
        cfg.apply_json(&serde_json::json!({
            "bos_token_id": 0, "force_bos_token_to_be_generated": true, "forced_bos_token_id": 7
        }));
        assert_eq!(cfg.forced_bos_token_id, Some(7));
    }

    #[test]
    fn eos_list_takes_first() {
        let mut cfg = GenerationConfig::new(0, 0, 0);
        cfg.apply_json(&serde_json::json!({"eos_token_id": [2, 7]}));
        assert_eq!(cfg.eos_token_id, 2);
    }
}
