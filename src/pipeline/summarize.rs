//! Summaries with encoder-decoder summarizers (BART, flan-t5, mT5-XLSum).
//!
//! An English summarizer reads the article's English translation; an Arabic one reads the
//! article and its summary is translated afterwards. Either way the input is cut into windows
//! the model can read, at paragraph and then sentence boundaries; each window is summarized,
//! and the joined window summaries are summarized again until one window holds them.

use super::chat::SummaryLength;
use super::translate::{Seq2Seq, Task, Translator};
use super::Progress;
use crate::document::{pack_windows, split_long, split_sentences, Document};
use crate::{Error, Result};

/// Tokens kept free in each window for the special tokens a tokenizer adds.
const WINDOW_MARGIN: usize = 8;

/// A loaded summarization model.
pub struct Summarizer {
    core: Seq2Seq,
    /// The most input tokens the model reads at once.
    pub window: usize,
}

impl Summarizer {
    /// Wraps a summarization model; translation models are refused.
    pub fn new(core: Seq2Seq, input_limit: usize) -> Result<Self> {
        if core.task == Task::Translation {
            return Err(Error::usage(format!(
                "{} is a translation model, not a summarizer: pick a summarizer with --model, or translate with `tarjama translate --model {}`",
                core.name, core.name
            )));
        }
        // Models with relative positions (T5) set no limit of their own; 512 is what they
        // were trained on.
        let model_limit = match core.model().max_positions() {
            usize::MAX => 512,
            n => n,
        };
        let window = input_limit
            .min(model_limit)
            .saturating_sub(WINDOW_MARGIN)
            .max(16);
        Ok(Self { core, window })
    }

    /// Whether the model reads English (the article is translated first) or Arabic.
    pub fn reads_english(&self) -> bool {
        matches!(
            self.core.task,
            Task::Summarization {
                source_english: true
            }
        )
    }

    pub fn core(&self) -> &Seq2Seq {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut Seq2Seq {
        &mut self.core
    }

    /// Length of `text` in the summarizer's tokens, the unit of [`Self::window`].
    pub fn count(&self, text: &str) -> usize {
        self.core.tokenizer().count_tokens(text)
    }

    /// Cuts `paragraphs` into windows of at most `self.window` tokens, keeping paragraphs
    /// whole where they fit, else sentences, else pieces of an overlong sentence.
    pub fn windows(&self, paragraphs: &[String]) -> Vec<String> {
        let count = |s: &str| self.count(s);
        let fits = |s: &str| Ok::<bool, std::convert::Infallible>(count(s) <= self.window);
        let cut = |s: &str| split_long(s, self.window, &count);
        match pack_windows(paragraphs, "\n", &fits, &cut) {
            Ok(windows) => windows,
            Err(never) => match never {},
        }
    }

    fn summarize_texts(&self, texts: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let ids = self.core.generate_ids(&[text.as_str()])?;
            out.push(self.core.tokenizer().decode(&ids[0]).trim().to_string());
        }
        Ok(out)
    }

    /// Summarizes paragraphs of text in the model's language. `on_part(done, total)` reports
    /// windows of a long input; the length applies to the final summary.
    pub fn summarize(
        &self,
        paragraphs: &[String],
        length: SummaryLength,
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<String> {
        let mut windows = self.windows(paragraphs);
        if windows.is_empty() {
            return Err(Error::input("the input has nothing to summarize"));
        }
        // Map-reduce: summarize each window, then the joined summaries, until one window.
        while windows.len() > 1 {
            let total = windows.len();
            let mut summaries = Vec::with_capacity(total);
            for (i, window) in windows.iter().enumerate() {
                on_part(i, total);
                summaries.extend(self.summarize_texts(std::slice::from_ref(window))?);
            }
            on_part(total, total);
            let next = self.windows(&summaries);
            if next.len() >= windows.len() {
                return Err(Error::model(format!(
                    "{}'s window summaries do not get shorter than its input; the model cannot summarize this text",
                    self.core.name
                )));
            }
            windows = next;
        }
        let summary = self.summarize_texts(&windows)?.remove(0);
        Ok(trim_to_length(&summary, length))
    }
}

/// A summary and, when asked for, the article's full translation (a paragraph per entry).
#[derive(Debug, Clone)]
pub struct ArticleSummary {
    pub summary: String,
    pub translation: Option<Vec<String>>,
}

impl Summarizer {
    /// Summarizes an Arabic article in English: an English summarizer reads the translation by
    /// `translator`; an Arabic one's summary is translated.
    pub fn summarize_article(
        &self,
        translator: &Translator,
        paragraphs: &[String],
        length: SummaryLength,
        keep_translation: bool,
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<ArticleSummary> {
        let translate = |paragraphs: &[String]| translate_paragraphs(translator, paragraphs);
        if self.reads_english() {
            let english = translate(paragraphs)?;
            let summary = self.summarize(&english, length, on_part)?;
            return Ok(ArticleSummary {
                summary,
                translation: keep_translation.then_some(english),
            });
        }
        let arabic = self.summarize(paragraphs, SummaryLength::Sentences(usize::MAX), on_part)?;
        let english = translate(&[arabic])?.remove(0);
        Ok(ArticleSummary {
            summary: trim_to_length(&english, length),
            translation: keep_translation
                .then(|| translate(paragraphs))
                .transpose()?,
        })
    }
}

/// Translates paragraphs sentence by sentence, a paragraph per entry.
pub(super) fn translate_paragraphs(
    translator: &Translator,
    paragraphs: &[String],
) -> Result<Vec<String>> {
    paragraphs
        .iter()
        .map(|p| {
            let sentences = split_sentences(p);
            let sentences: Vec<&str> = sentences.iter().map(String::as_str).collect();
            Ok(translator
                .translate_sentences(&sentences, &Progress::hidden())?
                .join(" "))
        })
        .collect()
}

/// Keeps the first sentences of `summary` up to the requested length: `n` sentences, or the
/// sentences that start within `n` words. A summary shorter than asked is kept whole.
pub fn trim_to_length(summary: &str, length: SummaryLength) -> String {
    let sentences = split_sentences(summary);
    let kept: Vec<String> = match length {
        SummaryLength::Sentences(n) => sentences.into_iter().take(n).collect(),
        SummaryLength::Words(n) => {
            let mut words = 0;
            let mut kept = Vec::new();
            for sentence in sentences {
                if words >= n {
                    break;
                }
                words += sentence.split_whitespace().count();
                kept.push(sentence);
            }
            kept
        }
    };
    kept.join(" ")
}

/// The paragraphs of an article to summarize, each one line (its sentences joined), with the
/// site furniture removed unless asked to keep it. An article with none left is an input error.
pub fn article_paragraphs(text: &str, keep_boilerplate: bool) -> Result<Vec<String>> {
    let mut doc = Document::parse(text);
    if !keep_boilerplate {
        doc.strip_boilerplate();
    }
    let paragraphs: Vec<String> = doc
        .paragraphs
        .iter()
        .filter(|p| !p.source().trim().is_empty())
        .map(|p| match p.sentences() {
            [] => p.source().trim().to_string(),
            sentences => sentences.join(" "),
        })
        .collect();
    if paragraphs.is_empty() {
        return Err(Error::input("the input has nothing to summarize once site furniture is removed: pass --keep-boilerplate or check the file"));
    }
    Ok(paragraphs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_to_whole_sentences() {
        let s = "One two. Three four five. Six.";
        assert_eq!(
            trim_to_length(s, SummaryLength::Sentences(2)),
            "One two. Three four five."
        );
        assert_eq!(trim_to_length(s, SummaryLength::Sentences(9)), s);
        assert_eq!(
            trim_to_length(s, SummaryLength::Words(3)),
            "One two. Three four five."
        );
        assert_eq!(trim_to_length(s, SummaryLength::Words(1)), "One two.");
    }
}
