//! Reading input documents, Arabic normalization, segmentation and reassembly.
//!
//! A [`Document`] keeps one [`Paragraph`] per input line so that the translation can be laid
//! out exactly like the source: blank lines stay blank, lines without Arabic pass through, and
//! each Arabic line becomes the translations of its sentences joined with spaces.

mod boilerplate;
mod input;
pub mod language;
mod normalize;
mod pipe;
mod segment;

pub use boilerplate::is_boilerplate;
pub use input::{decode_input, read_input, ChunkReader, CHUNK_BYTES, MAX_LINE_BYTES};
pub use language::{detect, detect_all, Detection};
pub use normalize::{
    contains_arabic, fold_for_matching, is_arabic_letter, is_arabic_mark, normalize_for_model,
};
pub use pipe::{stop_reading_when, Source, PIPE_LATENCY};
pub use segment::{pack_windows, split_long, split_sentences};

/// One line of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paragraph {
    /// An empty or whitespace-only line; reassembled as an empty line.
    Blank,
    /// A line that needs no translation, reassembled unchanged: it has no Arabic letter
    /// (numbers, dates, Latin text, URLs), or it is only hashtags, @-mentions and URLs, which
    /// are identifiers that a translation would break.
    Verbatim(String),
    /// Arabic text: the line as read, and its sentences normalized for the model.
    Text {
        source: String,
        sentences: Vec<String>,
    },
}

impl Paragraph {
    fn classify(line: &str) -> Paragraph {
        let normalized = normalize_for_model(line);
        if normalized.is_empty() {
            Paragraph::Blank
        } else if !contains_arabic(line) || only_tags_and_links(&normalized) {
            Paragraph::Verbatim(line.to_string())
        } else {
            Paragraph::Text {
                source: line.to_string(),
                sentences: split_sentences(&normalized),
            }
        }
    }

    /// The line as it was read (empty for a blank line).
    pub fn source(&self) -> &str {
        match self {
            Paragraph::Blank => "",
            Paragraph::Verbatim(s) | Paragraph::Text { source: s, .. } => s,
        }
    }

    /// The sentences to translate: empty unless this is [`Paragraph::Text`].
    pub fn sentences(&self) -> &[String] {
        match self {
            Paragraph::Text { sentences, .. } => sentences,
            _ => &[],
        }
    }
}

fn only_tags_and_links(line: &str) -> bool {
    line.split(' ').all(|w| {
        let lower = w.to_ascii_lowercase();
        w.len() > 1
            && (w.starts_with('#')
                || w.starts_with('@')
                || lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("www."))
    })
}

/// A document split into paragraphs (lines) and sentences, ready for translation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub paragraphs: Vec<Paragraph>,
    /// Whether the input ended with a newline; the output then ends with one too.
    pub trailing_newline: bool,
}

impl Document {
    /// Splits `text` into one paragraph per line (`\n` or `\r\n`) and each Arabic paragraph
    /// into sentences normalized with [`normalize_for_model`].
    pub fn parse(text: &str) -> Document {
        let trailing_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let paragraphs = if text.is_empty() {
            Vec::new()
        } else {
            body.split('\n')
                .map(|line| Paragraph::classify(line.strip_suffix('\r').unwrap_or(line)))
                .collect()
        };
        Document {
            paragraphs,
            trailing_newline,
        }
    }

    /// Removes the site furniture a scraper copied along with the article (related articles,
    /// comment forms, share and navigation buttons, "back to top", copyright lines) and the
    /// blank lines its removal leaves behind. Returns how many non-blank lines were removed.
    pub fn strip_boilerplate(&mut self) -> usize {
        let lines: Vec<Option<&str>> = self
            .paragraphs
            .iter()
            .map(|p| match p {
                Paragraph::Blank => None,
                p => Some(p.source()),
            })
            .collect();
        let mask = boilerplate::furniture_mask(&lines);
        let removed = mask
            .iter()
            .zip(&self.paragraphs)
            .filter(|(&m, p)| m && **p != Paragraph::Blank)
            .count();
        if removed == 0 {
            return 0;
        }
        let mut kept: Vec<Paragraph> = Vec::with_capacity(self.paragraphs.len());
        let mut removed_since_kept = false;
        for (paragraph, remove) in std::mem::take(&mut self.paragraphs).into_iter().zip(mask) {
            if remove {
                removed_since_kept = true;
                continue;
            }
            // A blank line right after removed lines would double the one before them.
            let blank_after_gap = paragraph == Paragraph::Blank
                && removed_since_kept
                && kept.last().is_none_or(|p| *p == Paragraph::Blank);
            if !blank_after_gap {
                removed_since_kept = false;
                kept.push(paragraph);
            }
        }
        if removed_since_kept {
            while kept.last() == Some(&Paragraph::Blank) {
                kept.pop();
            }
        }
        self.paragraphs = kept;
        removed
    }

    /// The number of sentences to translate.
    pub fn sentence_count(&self) -> usize {
        self.paragraphs.iter().map(|p| p.sentences().len()).sum()
    }

    /// All sentences to translate, in document order.
    pub fn sentences(&self) -> impl Iterator<Item = &str> {
        self.paragraphs
            .iter()
            .flat_map(|p| p.sentences().iter().map(String::as_str))
    }

    /// Rebuilds the document with `translated` in place of its sentences: `translated` has one
    /// entry per sentence of [`Document::sentences`], in that order. A paragraph's translated
    /// sentences are joined with one space (empty ones skipped), blank lines stay empty,
    /// verbatim lines are copied, and lines are joined with `\n`, ending with one if the input
    /// did.
    ///
    /// # Panics
    /// If `translated.len()` differs from [`Document::sentence_count`]: that is a bug in the
    /// caller, and guessing which sentence is missing would misplace text.
    pub fn reassemble(&self, translated: &[String]) -> String {
        assert_eq!(
            translated.len(),
            self.sentence_count(),
            "one translation is needed per sentence"
        );
        let mut rest = translated;
        let mut lines: Vec<String> = Vec::with_capacity(self.paragraphs.len());
        for paragraph in &self.paragraphs {
            lines.push(match paragraph {
                Paragraph::Blank => String::new(),
                Paragraph::Verbatim(line) => line.clone(),
                Paragraph::Text { sentences, .. } => {
                    let (mine, others) = rest.split_at(sentences.len());
                    rest = others;
                    let parts: Vec<&str> = mine
                        .iter()
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                        .collect();
                    parts.join(" ")
                }
            });
        }
        let mut out = lines.join("\n");
        if self.trailing_newline {
            out.push('\n');
        }
        out
    }
}
