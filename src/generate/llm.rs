//! Decoding for chat models: prompt processing in chunks, greedy or sampled tokens, and the
//! token-level guards small models need against loops (a windowed repetition penalty, n-gram
//! blocking). Decoding knows tokens only: when a reply has said enough, and what text it
//! amounts to, is decided by the caller's [`ReplyPolicy`] (the pipeline counts sentences and
//! streams them).

use candle_transformers::generation::{LogitsProcessor, Sampling};

use super::processors::{banned_bad_words, banned_ngram_tokens};
use crate::models::CausalLm;
use crate::Result;

/// Tokens fed to the model per forward pass while reading a prompt.
const PROMPT_CHUNK: usize = 256;

#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub max_new_tokens: usize,
    /// Penalty on tokens among the last `repeat_window` generated (1.0 = off).
    pub repetition_penalty: f32,
    pub repeat_window: usize,
    /// Never repeat an n-gram of this size (0 = off).
    pub no_repeat_ngram_size: usize,
    /// 0 = greedy.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: 512,
            repetition_penalty: 1.1,
            repeat_window: 64,
            no_repeat_ngram_size: 0,
            temperature: 0.0,
            top_p: None,
            seed: 299792458,
        }
    }
}

/// What one generation produced.
#[derive(Debug, Clone, Default)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already cached from an earlier prompt.
    pub cached_prompt_tokens: usize,
    pub generated_tokens: usize,
    /// The tokens generated (not summed by [`Generation::add_counts`]): a caller that checks
    /// the text maps a word of it back to the tokens that wrote it.
    pub tokens: Vec<u32>,
}

impl Generation {
    /// Adds another generation's token counts to these.
    pub fn add_counts(&mut self, other: &Generation) {
        self.prompt_tokens += other.prompt_tokens;
        self.cached_prompt_tokens += other.cached_prompt_tokens;
        self.generated_tokens += other.generated_tokens;
    }
}

/// The vocabulary's tokens that decoding treats apart.
#[derive(Debug, Clone, Copy)]
pub struct TurnTokens<'a> {
    /// Tokens that end the reply (end of turn, end of text).
    pub stops: &'a [u32],
    /// Control tokens (a new turn, tool calls), which never belong in a reply.
    pub special: &'a [u32],
    /// Token sequences the reply must not contain (transformers' `bad_words_ids`): the last
    /// token of each is banned where the others end the reply so far.
    pub banned: &'a [Vec<u32>],
}

/// Whether generation goes on after a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// The caller's say in a generation: whether the reply may end yet, whether it has said enough
/// after each token, and the text it amounts to.
pub trait ReplyPolicy {
    /// Whether the reply may end now: `false` keeps the stop tokens from being chosen.
    fn may_end(&self) -> bool;

    /// Called after each generated token with all the tokens generated so far.
    fn on_token(&mut self, generated: &[u32]) -> Result<Control>;

    /// The reply's text once generation ended, by a stop token, by [`Control::Stop`], or with
    /// `ran_out` set when `max_new_tokens` were generated.
    fn finish(&mut self, generated: &[u32], ran_out: bool) -> Result<String>;
}

/// Reads `prompt`, reusing the keys and values of the prefix it shares with what the model
/// read before, and generates a reply until a stop token, `max_new_tokens`, or `policy` says
/// to stop; the reply's text is what `policy` makes of the tokens.
pub fn generate<M: CausalLm + ?Sized>(
    model: &mut M,
    tokens: TurnTokens,
    prompt: &[u32],
    settings: &LlmSettings,
    policy: &mut dyn ReplyPolicy,
) -> Result<Generation> {
    // Prompts of one document share their instructions, whose keys and values stay cached.
    let reused = model.reuse_prefix(prompt);
    let mut logits = Vec::new();
    for chunk in prompt[reused..].chunks(PROMPT_CHUNK) {
        logits = model.forward(chunk)?;
    }
    let sampling = if settings.temperature <= 0.0 {
        Sampling::ArgMax
    } else {
        match settings.top_p {
            Some(p) => Sampling::TopP {
                p,
                temperature: settings.temperature,
            },
            None => Sampling::All {
                temperature: settings.temperature,
            },
        }
    };
    let mut sampler = LogitsProcessor::from_sampling(settings.seed, sampling);
    let stops = tokens.stops;

    let mut generated: Vec<u32> = Vec::new();
    while generated.len() < settings.max_new_tokens {
        penalise(&mut logits, &generated, settings);
        // The policy may keep the reply from ending (small models often stop a sentence or two
        // short of the length asked for). Other control tokens never belong in the reply.
        let must_go_on = !policy.may_end();
        for &id in tokens.special.iter().chain(stops) {
            if must_go_on || !stops.contains(&id) {
                if let Some(x) = logits.get_mut(id as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        for id in banned_bad_words(tokens.banned, u32::MAX, &generated) {
            if let Some(x) = logits.get_mut(id as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
        let tensor = candle_core::Tensor::new(logits.as_slice(), &candle_core::Device::Cpu)?;
        let next = sampler.sample(&tensor)?;
        if stops.contains(&next) {
            break;
        }
        generated.push(next);
        if policy.on_token(&generated)? == Control::Stop {
            break;
        }
        logits = model.forward(&[next])?;
    }
    let ran_out = generated.len() >= settings.max_new_tokens;
    Ok(Generation {
        text: policy.finish(&generated, ran_out)?,
        prompt_tokens: prompt.len(),
        cached_prompt_tokens: reused,
        generated_tokens: generated.len(),
        tokens: generated,
    })
}

fn penalise(logits: &mut [f32], generated: &[u32], settings: &LlmSettings) {
    if settings.repetition_penalty != 1.0 {
        let start = generated.len().saturating_sub(settings.repeat_window);
        let mut seen = std::collections::HashSet::new();
        for &id in &generated[start..] {
            if seen.insert(id) {
                if let Some(x) = logits.get_mut(id as usize) {
                    *x = if *x < 0.0 {
                        *x * settings.repetition_penalty
                    } else {
                        *x / settings.repetition_penalty
                    };
                }
            }
        }
    }
    if settings.no_repeat_ngram_size > 0 {
        for id in banned_ngram_tokens(generated, settings.no_repeat_ngram_size) {
            if let Some(x) = logits.get_mut(id as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
    }
}
