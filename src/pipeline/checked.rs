//! Summaries checked against their article ([`crate::faithful`]): every sentence's names,
//! numbers and dates must be supported by the Arabic source or its English translation. A chat
//! model writes a first draft; an unsupported sentence is kept without the phrases that carry
//! its unsupported items when the rest is still a sentence that passes; otherwise, from it on,
//! each sentence is written again, continuing the accepted ones, with the unsupported words and
//! every place the article does not name banned (after an invented number every digit and
//! number word, after an invented date every month and weekday the article does not name;
//! see [`bans`]), up to [`TRIES`] times, and dropped when it still fails; a try that repeats an
//! accepted sentence is written again without its runs of tokens. An encoder-decoder summarizer
//! writes whole summaries, so it is asked again with the words banned and its supported
//! sentences are kept.

use super::bans;
use super::chat::{ChatPipeline, SummaryLength};
use super::summarize::{translate_paragraphs, trim_to_length, ArticleSummary, Summarizer};
use super::translate::Translator;
use crate::document::split_sentences;
use crate::faithful::{
    without_unsupported, CheckReport, Evidence, ItemKind, Outcome, SentenceCheck, SentenceReport,
};
use crate::generate::llm::{Generation, LlmSettings};
use crate::Result;

/// Tries a sentence gets: the first and two regenerations with more words banned.
const TRIES: usize = 3;

/// Sentences written after the ones asked for, to make up for a dropped one.
const EXTRA_SENTENCES: usize = 1;

/// Tokens in a run a try after a repeated sentence may not write again: long enough to leave
/// the model its function words ("The article also"), short enough that a repeat cannot be
/// written with one word changed.
const REPEAT_RUN: usize = 4;

/// One sentence needs no more tokens than this (a runaway reply is cut).
const SENTENCE_TOKENS: usize = 160;

/// The sentences asked for: `n`, or for a length in words those of the first draft.
fn requested_sentences(length: SummaryLength, draft: &[String]) -> usize {
    match length {
        SummaryLength::Sentences(n) => n,
        SummaryLength::Words(_) => draft.len().max(1),
    }
}

/// Checks `sentence`; when the Arabic source alone leaves something unsupported and the
/// evidence has no translation yet, `translate` makes the article's (once: the check needs it
/// only for facts a transliteration or digits cannot vouch for, and translating costs).
fn check(
    evidence: &mut Evidence,
    sentence: &str,
    translate: &mut dyn FnMut() -> Result<String>,
) -> Result<SentenceCheck> {
    let check = evidence.check(sentence);
    // Places are never supported by a machine translation (see `faithful`): only the other
    // items make translating worth its cost.
    let translation_may_help = check.unsupported.iter().any(|i| i.kind != ItemKind::Place);
    if !translation_may_help || evidence.has_english() {
        return Ok(check);
    }
    let english = translate()?;
    *evidence = std::mem::take(evidence).with_english(&english);
    Ok(evidence.check(sentence))
}

/// Whether two sentences say nearly the same: at least 3/4 of the shorter's words are in the
/// other. A small model that runs out of things to say repeats itself with a word changed.
fn repeats(a: &str, b: &str) -> bool {
    let words = |s: &str| -> std::collections::HashSet<String> {
        s.split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric())
                    .flat_map(char::to_lowercase)
                    .collect()
            })
            .filter(|w: &String| !w.is_empty())
            .collect()
    };
    let (a, b) = (words(a), words(b));
    let shorter = a.len().min(b.len()).max(1);
    4 * a.intersection(&b).count() >= 3 * shorter
}

impl ChatPipeline {
    /// Summarises an article with every sentence checked; `on_text` gets the accepted
    /// sentences. The translation the check may need is the model's own.
    pub fn summarize_checked(
        &mut self,
        paragraphs: &[String],
        length: SummaryLength,
        on_text: &mut dyn FnMut(&str),
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<(Generation, CheckReport)> {
        let (messages, mut total) = self.summary_messages(paragraphs, length, on_part)?;
        let prompt = self.prompt_tokens(&messages)?;
        let settings = self.settings.clone();
        let draft = self.run_tokens(&prompt, &settings, Some(length), &[], &mut |_| {})?;
        total.add_counts(&draft);
        let draft_sentences = split_sentences(&draft.text);
        let requested = requested_sentences(length, &draft_sentences);

        let mut evidence = Evidence::from_arabic(&paragraphs.join("\n\n"));
        let mut translation_counts = Generation::default();
        let mut report = CheckReport {
            requested,
            draft: draft_sentences.clone(),
            ..CheckReport::default()
        };
        let mut accepted: Vec<String> = Vec::new();
        let mut banned: Vec<Vec<u32>> = Vec::new();
        let mut places_banned = false;
        let mut digits_banned = false;
        let mut dates_banned = false;
        let mut drafted = draft_sentences.into_iter();
        let mut from_draft = true;
        let mut slots = 0;
        let mut dropped_in_a_row = 0;
        'slots: while accepted.len() < requested && slots < requested + EXTRA_SENTENCES {
            slots += 1;
            for attempt in 1..=TRIES {
                // The tokens that wrote the candidate (and, for the draft, its other sentences).
                let (candidate, tokens) = match drafted.next().filter(|_| from_draft) {
                    Some(sentence) => (sentence, draft.tokens.clone()),
                    None => {
                        from_draft = false;
                        let g = self.next_sentence(&prompt, &accepted, &banned, &settings)?;
                        total.add_counts(&g);
                        if g.text.is_empty() {
                            // The model has nothing more to say within the bans.
                            break 'slots;
                        }
                        if accepted.iter().any(|a| repeats(a, &g.text)) {
                            // A model short of new things to say repeats an accepted sentence
                            // with a word changed: the next try may not write its word runs.
                            add_new(&mut banned, bans::runs_of(&g.tokens, REPEAT_RUN));
                            continue;
                        }
                        (g.text, g.tokens)
                    }
                };
                let check = check(&mut evidence, &candidate, &mut || {
                    self.translate_article(paragraphs, &mut translation_counts)
                })?;
                if check.passes() {
                    let outcome = if from_draft {
                        Outcome::Kept
                    } else {
                        Outcome::Regenerated
                    };
                    on_text(&candidate);
                    report
                        .sentences
                        .push(SentenceReport::new(&candidate, check, outcome));
                    accepted.push(candidate);
                    dropped_in_a_row = 0;
                    break;
                }
                // What is left without the unsupported phrases, when it is still a sentence,
                // keeps more of what the model wrote from the article than a new try, and the
                // draft's next sentences still follow it.
                let trimmed = without_unsupported(&evidence, &candidate, &check)
                    .filter(|(text, _)| !accepted.iter().any(|a| repeats(a, text)));
                if let Some((text, trimmed_check)) = trimmed {
                    report.sentences.push(SentenceReport::new(
                        &candidate,
                        check,
                        Outcome::Rejected,
                    ));
                    on_text(&text);
                    report.sentences.push(SentenceReport::new(
                        &text,
                        trimmed_check,
                        Outcome::Trimmed,
                    ));
                    accepted.push(text);
                    dropped_in_a_row = 0;
                    break;
                }
                from_draft = false;
                if !places_banned {
                    places_banned = true;
                    let places = evidence.unsupported_places();
                    add_new(
                        &mut banned,
                        bans::capitalised_forms(&self.tokenizer, &places)?,
                    );
                }
                if !digits_banned && check.unsupported.iter().any(|i| i.kind == ItemKind::Number) {
                    digits_banned = true;
                    add_new(&mut banned, bans::number_forms(&self.tokenizer)?);
                }
                if !dates_banned && check.unsupported.iter().any(|i| i.kind == ItemKind::Date) {
                    dates_banned = true;
                    let dates = evidence.unsupported_dates();
                    add_new(
                        &mut banned,
                        bans::capitalised_forms(&self.tokenizer, &dates)?,
                    );
                }
                let words = check.banned_words();
                add_new(&mut banned, bans::encoded_forms(&self.tokenizer, &words)?);
                add_new(
                    &mut banned,
                    bans::generated_paths(&self.tokenizer, &tokens, &words)?,
                );
                let outcome = if attempt == TRIES {
                    Outcome::Dropped
                } else {
                    Outcome::Rejected
                };
                report
                    .sentences
                    .push(SentenceReport::new(&candidate, check, outcome));
                if outcome == Outcome::Dropped {
                    dropped_in_a_row += 1;
                    // Twice in a row the model found nothing supported to say: it will not now.
                    if dropped_in_a_row == 2 {
                        break 'slots;
                    }
                }
            }
        }
        report.short_by = requested.saturating_sub(accepted.len());
        report.used_translation = evidence.has_english();
        total.add_counts(&translation_counts);
        total.text = accepted.join(" ");
        Ok((total, report))
    }

    /// The article's translation by the model itself, for the check.
    fn translate_article(
        &mut self,
        paragraphs: &[String],
        counts: &mut Generation,
    ) -> Result<String> {
        let mut parts = Vec::new();
        for p in paragraphs {
            let g = self.translate_paragraph(p, &mut |_| {})?;
            counts.add_counts(&g);
            parts.push(g.text);
        }
        Ok(parts.join("\n\n"))
    }

    /// The next sentence of the reply after the `accepted` ones, without the `banned` token
    /// sequences.
    fn next_sentence(
        &mut self,
        prompt: &[u32],
        accepted: &[String],
        banned: &[Vec<u32>],
        settings: &LlmSettings,
    ) -> Result<Generation> {
        let mut tokens = prompt.to_vec();
        if !accepted.is_empty() {
            tokens.extend(self.tokenizer.encode(&accepted.join(" "), false)?);
        }
        let settings = LlmSettings {
            max_new_tokens: settings.max_new_tokens.min(SENTENCE_TOKENS),
            ..settings.clone()
        };
        let mut g = self.run_tokens(
            &tokens,
            &settings,
            Some(SummaryLength::Sentences(1)),
            banned,
            &mut |_| {},
        )?;
        // Counted as the reply's: the accepted sentences are no prompt the user gave.
        g.prompt_tokens = prompt.len();
        g.cached_prompt_tokens = g.cached_prompt_tokens.min(prompt.len());
        Ok(g)
    }
}

/// Adds the sequences of `new` that `to` does not have yet.
fn add_new(to: &mut Vec<Vec<u32>>, new: Vec<Vec<u32>>) {
    for ids in new {
        if !to.contains(&ids) {
            to.push(ids);
        }
    }
}

impl Summarizer {
    /// Summarises an article, with every sentence checked when `check` is set. An English summarizer is asked again
    /// with the unsupported words banned (`bad_words_ids`) and the attempt with the most
    /// supported sentences is kept; an Arabic one writes Arabic, where English words cannot be
    /// banned, so its unsupported sentences are dropped. The evidence is the Arabic source and
    /// the translation the summarizer reads (made for the check for an Arabic one, when needed).
    pub fn summarize_article_checked(
        &mut self,
        translator: &Translator,
        paragraphs: &[String],
        length: SummaryLength,
        keep_translation: bool,
        check: bool,
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<(ArticleSummary, Option<CheckReport>)> {
        if !check {
            let summary =
                self.summarize_article(translator, paragraphs, length, keep_translation, on_part)?;
            return Ok((summary, None));
        }
        // The bans are this article's: the model's own come back whatever happens.
        let saved_bans = self.core().generation.bad_words_ids.clone();
        let result =
            self.checked_attempts(translator, paragraphs, length, keep_translation, on_part);
        self.core_mut().generation.bad_words_ids = saved_bans;
        result.map(|(summary, report)| (summary, Some(report)))
    }

    fn checked_attempts(
        &mut self,
        translator: &Translator,
        paragraphs: &[String],
        length: SummaryLength,
        keep_translation: bool,
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<(ArticleSummary, CheckReport)> {
        let mut evidence = Evidence::from_arabic(&paragraphs.join("\n\n"));
        let tries = if self.reads_english() { TRIES } else { 1 };
        let all = SummaryLength::Sentences(usize::MAX);
        let mut english: Option<Vec<String>> = None;
        let mut best: Option<(Vec<String>, Vec<SentenceReport>)> = None;
        let mut rejected: Vec<SentenceReport> = Vec::new();
        let mut draft = Vec::new();
        let mut requested = 0;
        for attempt in 1..=tries {
            let written = match &english {
                Some(text) if self.reads_english() => self.summarize(text, all, on_part),
                // An English summarizer's translation is the check's evidence; an Arabic one's
                // is made only when asked for or when the check needs it.
                _ => self
                    .summarize_article(
                        translator,
                        paragraphs,
                        all,
                        keep_translation || self.reads_english(),
                        on_part,
                    )
                    .map(|s| {
                        english = s.translation;
                        s.summary
                    }),
            };
            let written = written?;
            if attempt == 1 {
                let sentences = split_sentences(&written);
                requested = requested_sentences(length, &sentences);
                draft = split_sentences(&trim_to_length(&written, length));
                if let Some(text) = &english {
                    evidence = evidence.with_english(&text.join("\n\n"));
                }
            }
            let mut accepted = Vec::new();
            let mut reports = Vec::new();
            let mut unsupported = Vec::new();
            for sentence in split_sentences(&written) {
                if accepted.len() == requested {
                    break;
                }
                let check = check(&mut evidence, &sentence, &mut || {
                    translate_paragraphs(translator, paragraphs).map(|t| t.join("\n\n"))
                })?;
                if check.passes() {
                    let outcome = if attempt == 1 {
                        Outcome::Kept
                    } else {
                        Outcome::Regenerated
                    };
                    reports.push(SentenceReport::new(&sentence, check, outcome));
                    accepted.push(sentence);
                } else {
                    unsupported.push((sentence, check));
                }
            }
            let complete = accepted.len() == requested;
            let last = complete || attempt == tries;
            let mut bans = self.core().generation.bad_words_ids.clone();
            for (sentence, check) in unsupported {
                for word in check.banned_words() {
                    for ids in self.word_ids(&word) {
                        if !bans.contains(&ids) {
                            bans.push(ids);
                        }
                    }
                }
                let outcome = if last {
                    Outcome::Dropped
                } else {
                    Outcome::Rejected
                };
                rejected.push(SentenceReport::new(&sentence, check, outcome));
            }
            self.core_mut().generation.bad_words_ids = bans;
            if best.as_ref().is_none_or(|(b, _)| accepted.len() > b.len()) {
                best = Some((accepted, reports));
            }
            if complete {
                break;
            }
        }
        let (accepted, reports) = best.unwrap_or_default();
        let mut report = CheckReport {
            draft,
            requested,
            short_by: requested.saturating_sub(accepted.len()),
            used_translation: evidence.has_english(),
            ..CheckReport::default()
        };
        report.sentences = reports;
        report.sentences.extend(rejected);
        let summary = ArticleSummary {
            summary: accepted.join(" "),
            translation: if keep_translation { english } else { None },
        };
        Ok((summary, report))
    }

    /// The summarizer's ids for `word` alone, as it may write it (with a leading space or not):
    /// the ids of the word in a sentence, less the special tokens and prefix every input gets.
    fn word_ids(&self, word: &str) -> Vec<Vec<u32>> {
        let tokenizer = self.core().tokenizer();
        let empty = tokenizer.encode("");
        let mut out = Vec::new();
        for spelling in [word.to_string(), format!("the {word}")] {
            let ids = tokenizer.encode(&spelling);
            let start = ids.iter().zip(&empty).take_while(|(a, b)| a == b).count();
            let end = ids.len()
                - ids[start..]
                    .iter()
                    .rev()
                    .zip(empty[start.min(empty.len())..].iter().rev())
                    .take_while(|(a, b)| a == b)
                    .count();
            let mut ids = ids[start..end].to_vec();
            if spelling.starts_with("the ") && ids.len() > 1 {
                // The word after a space: what follows the ids of "the".
                let the = tokenizer.encode("the");
                let the_len = the.len().saturating_sub(empty.len()).max(1);
                ids.drain(..the_len.min(ids.len() - 1));
            }
            if !ids.is_empty() && !out.contains(&ids) {
                out.push(ids);
            }
        }
        out
    }
}
