//! Every prompt tarjama sends to a chat model, in one place.

use super::chat::{Message, SummaryLength};

// Kept plain: small models follow a short instruction better than a persona, and this is the
// prompt the llama.cpp reference figure (chrF 29.9 on ntrex 1-30) was measured with.
const TRANSLATOR: &str = "Translate the user's text to English. Output only the translation.";

const EDITOR: &str = "You are a news editor. You write short, factual English summaries of \
Arabic news articles. Output only the summary, nothing else.";

fn length_phrase(length: SummaryLength) -> String {
    match length {
        SummaryLength::Sentences(1) => "exactly 1 sentence".to_string(),
        SummaryLength::Sentences(n) => format!("exactly {n} sentences"),
        SummaryLength::Words(n) => format!("about {n} words"),
    }
}

pub fn translation(paragraph: &str) -> Vec<Message> {
    vec![Message::system(TRANSLATOR), Message::user(paragraph)]
}

pub fn summary(article: &str, length: SummaryLength) -> Vec<Message> {
    vec![
        Message::system(EDITOR),
        Message::user(format!(
            "Summarize this Arabic news article in English in {}. Say who did what, where and when.\n\n{article}",
            length_phrase(length)
        )),
    ]
}

/// The map step of a long article: one part at a time.
pub fn part_summary(part: &str) -> Vec<Message> {
    vec![
        Message::system(EDITOR),
        Message::user(format!(
            "This is one part of a longer Arabic news article. Summarize this part in English in at most 3 sentences.\n\n{part}"
        )),
    ]
}

/// The reduce step: the summaries of consecutive parts into one summary.
pub fn combine(summaries: &[String], length: SummaryLength) -> Vec<Message> {
    vec![
        Message::system(EDITOR),
        Message::user(format!(
            "These are summaries of consecutive parts of one news article. Combine them into one English summary of {}.\n\n{}",
            length_phrase(length),
            summaries.join("\n\n")
        )),
    ]
}
