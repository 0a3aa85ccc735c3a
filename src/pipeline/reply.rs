//! The text-level side of a chat generation: streaming the reply as it is written, stopping
//! it once it has the sentences or words asked for, or when it repeats a sentence (the model
//! started looping), and the text it amounts to. [`crate::generate::llm`] decodes tokens and asks
//! [`ReplyText`] after each one.

use super::chat::SummaryLength;
use crate::document::split_sentences;
use crate::generate::llm::{Control, ReplyPolicy};
use crate::tokenizer::gguf::GgufTokenizer;
use crate::Result;

/// A reply followed as text: decoded after each token, handed to `on_text` as it is written
/// (each finished sentence with a length limit, else each new piece of text).
pub(super) struct ReplyText<'a> {
    tokenizer: &'a GgufTokenizer,
    /// Stop once this many complete sentences were written.
    max_sentences: Option<usize>,
    /// Stop at the first sentence boundary after this many words.
    max_words: Option<usize>,
    on_text: &'a mut dyn FnMut(&str),
    /// Bytes of text already handed to `on_text` (without a length limit).
    emitted: usize,
    /// Sentences already handed to `on_text` (with a length limit).
    sentences_out: Vec<String>,
    /// The reply, once a stop rule ended it.
    finished_text: Option<String>,
}

impl<'a> ReplyText<'a> {
    pub(super) fn new(
        tokenizer: &'a GgufTokenizer,
        length: Option<SummaryLength>,
        on_text: &'a mut dyn FnMut(&str),
    ) -> Self {
        let (max_sentences, max_words) = match length {
            Some(SummaryLength::Sentences(n)) => (Some(n), None),
            Some(SummaryLength::Words(n)) => (None, Some(n)),
            None => (None, None),
        };
        Self {
            tokenizer,
            max_sentences,
            max_words,
            on_text,
            emitted: 0,
            sentences_out: Vec::new(),
            finished_text: None,
        }
    }

    fn by_sentence(&self) -> bool {
        self.max_sentences.is_some() || self.max_words.is_some()
    }
}

impl ReplyPolicy for ReplyText<'_> {
    /// Small models often stop a sentence or two short of the length asked for: the reply may
    /// not end before it has that many sentences.
    fn may_end(&self) -> bool {
        self.max_sentences
            .is_none_or(|n| self.sentences_out.len() >= n)
    }

    fn on_token(&mut self, generated: &[u32]) -> Result<Control> {
        let text = self.tokenizer.decode(generated)?;
        let (complete, _tail) = complete_sentences(&text);
        // A sentence the reply already contains means the model started looping.
        if let Some(last) = complete.last() {
            if complete.len() > self.sentences_out.len()
                && complete[..complete.len() - 1]
                    .iter()
                    .any(|s| normalise(s) == normalise(last))
            {
                self.finished_text = Some(complete[..complete.len() - 1].join(" "));
                return Ok(Control::Stop);
            }
        }
        if self.by_sentence() {
            while self.sentences_out.len() < complete.len() {
                let sentence = complete[self.sentences_out.len()].clone();
                (self.on_text)(&sentence);
                self.sentences_out.push(sentence);
            }
            let words: usize = self
                .sentences_out
                .iter()
                .map(|s| s.split_whitespace().count())
                .sum();
            if self
                .max_sentences
                .is_some_and(|n| self.sentences_out.len() >= n)
                || self.max_words.is_some_and(|n| words >= n)
            {
                let n = self.max_sentences.unwrap_or(self.sentences_out.len());
                let n = n.min(self.sentences_out.len());
                self.finished_text = Some(self.sentences_out[..n].join(" "));
                return Ok(Control::Stop);
            }
        } else if text.len() > self.emitted && !text.ends_with('\u{fffd}') {
            (self.on_text)(&text[self.emitted..]);
            self.emitted = text.len();
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self, generated: &[u32], ran_out: bool) -> Result<String> {
        let text = match self.finished_text.take() {
            Some(text) => text,
            None if self.by_sentence() => {
                // At the end of the reply its last sentence is complete if it is terminated; out
                // of tokens, only complete sentences are kept.
                let mut text = self.tokenizer.decode(generated)?;
                if !ran_out {
                    text.push(' ');
                }
                let (complete, tail) = complete_sentences(&text);
                if complete.is_empty() {
                    tail.trim().to_string()
                } else {
                    for sentence in &complete[self.sentences_out.len()..] {
                        (self.on_text)(sentence);
                    }
                    complete.join(" ")
                }
            }
            None => {
                let text = self.tokenizer.decode(generated)?;
                if text.len() > self.emitted {
                    (self.on_text)(&text[self.emitted..]);
                }
                text
            }
        };
        Ok(text.trim().to_string())
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
