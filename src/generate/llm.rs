//! Decoding for chat models: prompt processing in chunks, greedy or sampled tokens, and the
//! guards small models need against loops (a windowed repetition penalty, n-gram blocking, a
//! stop on any repeated sentence) and against running past the requested number of sentences.

use candle_transformers::generation::{LogitsProcessor, Sampling};

use super::processors::banned_ngram_tokens;
use crate::document::split_sentences;
use crate::models::gguf::ChatModel;
use crate::tokenizer::gguf::GgufTokenizer;
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
    /// Stop once this many complete sentences were written.
    pub max_sentences: Option<usize>,
    /// Stop at the first sentence boundary after this many words.
    pub max_words: Option<usize>,
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
            max_sentences: None,
            max_words: None,
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
}

impl Generation {
    /// Adds another generation's token counts to these.
    pub fn add_counts(&mut self, other: &Generation) {
        self.prompt_tokens += other.prompt_tokens;
        self.cached_prompt_tokens += other.cached_prompt_tokens;
        self.generated_tokens += other.generated_tokens;
    }
}

/// Reads `prompt`, reusing the keys and values of the prefix it shares with what the model
/// read before, and generates a reply. `on_text` receives
/// each finished sentence (or, with no sentence limit, each new piece of text) as it is written.
pub fn generate(
    model: &mut ChatModel,
    tokenizer: &GgufTokenizer,
    prompt: &[u32],
    settings: &LlmSettings,
    on_text: &mut dyn FnMut(&str),
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
    let stops = tokenizer.eos_ids();
    let by_sentence = settings.max_sentences.is_some() || settings.max_words.is_some();

    let mut generated: Vec<u32> = Vec::new();
    let mut emitted = 0; // bytes of text (or sentences) already handed to `on_text`
    let mut sentences_out: Vec<String> = Vec::new();
    let mut finished_text = None;
    while generated.len() < settings.max_new_tokens {
        penalise(&mut logits, &generated, settings);
        // Small models often stop a sentence or two short of the length asked for: the reply may
        // not end before it has that many sentences.
        // Other control tokens (a new turn, tool calls) never belong in the reply.
        let must_go_on = settings
            .max_sentences
            .is_some_and(|n| sentences_out.len() < n);
        for &id in tokenizer.special_ids().iter().chain(stops) {
            if must_go_on || !stops.contains(&id) {
                if let Some(x) = logits.get_mut(id as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        let tensor = candle_core::Tensor::new(logits.as_slice(), &candle_core::Device::Cpu)?;
        let next = sampler.sample(&tensor)?;
        if stops.contains(&next) {
            break;
        }
        generated.push(next);
        let text = tokenizer.decode(&generated)?;
        let (complete, _tail) = complete_sentences(&text);
        // A sentence the reply already contains means the model started looping.
        if let Some(last) = complete.last() {
            if complete.len() > sentences_out.len()
                && complete[..complete.len() - 1]
                    .iter()
                    .any(|s| normalise(s) == normalise(last))
            {
                finished_text = Some(complete[..complete.len() - 1].join(" "));
                break;
            }
        }
        if by_sentence {
            while sentences_out.len() < complete.len() {
                let sentence = complete[sentences_out.len()].clone();
                on_text(&sentence);
                sentences_out.push(sentence);
            }
            let words: usize = sentences_out
                .iter()
                .map(|s| s.split_whitespace().count())
                .sum();
            if settings
                .max_sentences
                .is_some_and(|n| sentences_out.len() >= n)
                || settings.max_words.is_some_and(|n| words >= n)
            {
                let n = settings.max_sentences.unwrap_or(sentences_out.len());
                finished_text = Some(sentences_out[..n.min(sentences_out.len())].join(" "));
                break;
            }
        } else if text.len() > emitted && !text.ends_with('\u{fffd}') {
            on_text(&text[emitted..]);
            emitted = text.len();
        }
        logits = model.forward(&[next])?;
    }
    let text = match finished_text {
        Some(text) => text,
        None if by_sentence => {
            // At the end of the reply its last sentence is complete if it is terminated; out of
            // tokens, only complete sentences are kept.
            let mut text = tokenizer.decode(&generated)?;
            if generated.len() < settings.max_new_tokens {
                text.push(' ');
            }
            let (complete, tail) = complete_sentences(&text);
            if complete.is_empty() {
                tail.trim().to_string()
            } else {
                for sentence in &complete[sentences_out.len()..] {
                    on_text(sentence);
                }
                complete.join(" ")
            }
        }
        None => {
            let text = tokenizer.decode(&generated)?;
            if text.len() > emitted {
                on_text(&text[emitted..]);
            }
            text
        }
    };
    Ok(Generation {
        text: text.trim().to_string(),
        prompt_tokens: prompt.len(),
        cached_prompt_tokens: reused,
        generated_tokens: generated.len(),
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

/// The complete sentences of `text` (those followed by more text) and the unfinished tail.
fn complete_sentences(text: &str) -> (Vec<String>, String) {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut sentences = split_sentences(&flat);
    let ends_cleanly = flat.ends_with(['.', '!', '?']) && text.ends_with(char::is_whitespace);
    let tail = if ends_cleanly {
        String::new()
    } else {
        sentences.pop().unwrap_or_default()
    };
    // A sentence must end with a terminator to count as complete.
    sentences.retain(|s| {
        s.trim_end_matches(['"', '\'', ')', '”', '’'])
            .ends_with(['.', '!', '?'])
    });
    (sentences, tail)
}

fn normalise(sentence: &str) -> String {
    sentence
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_terminated_sentences_followed_by_text_are_complete() {
        let (done, tail) = complete_sentences("One thing. Two things! Three");
        assert_eq!(done, vec!["One thing.", "Two things!"]);
        assert_eq!(tail, "Three");
        let (done, tail) = complete_sentences("It rose 3.5 percent in the U.S. market.");
        assert!(done.is_empty(), "{done:?}");
        assert_eq!(tail, "It rose 3.5 percent in the U.S. market.");
        let (done, _) = complete_sentences("It rose 3.5 percent in the U.S. market. ");
        assert_eq!(done.len(), 1);
    }

    #[test]
    fn repeated_sentences_compare_loosely() {
        assert_eq!(
            normalise("The coalition, again!"),
            normalise("the coalition again.")
        );
    }
}
