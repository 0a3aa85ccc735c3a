//! Whether a summary sentence says only what its article says: the names (people, places,
//! organisations), numbers and dates in an English sentence must appear in the article, in its
//! English translation or, for numbers, dates and transliterated names, in the Arabic source;
//! Arabic words in an English sentence must be words of the source.
//!
//! This is a support check, not a proof of faithfulness: a sentence that recombines supported
//! names into a false claim passes. What it catches is the failure small chat models show most,
//! a name, number or date the article does not contain. The pipeline uses it to regenerate
//! such sentences with the unsupported words banned, or drop them ([`crate::pipeline`]).

mod arabic;
mod english;
pub mod number_words;
pub mod numbers;
mod places;
mod trim;

use serde::Serialize;

use crate::document::{is_arabic_letter, is_arabic_mark};

pub use arabic::{skeleton_of_arabic, skeleton_of_latin, ArabicEvidence};
pub use english::{names, words, EnglishEvidence};
pub use trim::without_unsupported;

/// What kind of fact an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A country, region, city or international organisation (see `places.tsv`).
    Place,
    /// Another name: a person, an organisation, a place the list does not have.
    Name,
    Number,
    Date,
}

/// A name, number or date of a summary sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: ItemKind,
    pub text: String,
    /// The words of it the article does not support (empty when it is supported): what a
    /// regeneration bans.
    #[serde(skip)]
    pub unsupported_words: Vec<String>,
}

/// One sentence's items, split by support.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SentenceCheck {
    pub supported: Vec<Item>,
    pub unsupported: Vec<Item>,
}

impl SentenceCheck {
    pub fn passes(&self) -> bool {
        self.unsupported.is_empty()
    }

    /// The words a regeneration of this sentence must not write.
    pub fn banned_words(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in &self.unsupported {
            for word in &item.unsupported_words {
                if !out.contains(word) {
                    out.push(word.clone());
                }
            }
        }
        out
    }
}

/// What an article supports: its Arabic source always, its English translation once made.
#[derive(Debug, Default)]
pub struct Evidence {
    arabic: ArabicEvidence,
    english: Option<EnglishEvidence>,
    /// The English is a human reference, trusted for places too (an evaluation's judge); a
    /// machine translation is not: the model that invents a place in a summary invents it in
    /// its translation as well, so places must be in the Arabic.
    english_is_reference: bool,
}

impl Evidence {
    /// The evidence of the Arabic source alone.
    pub fn from_arabic(arabic: &str) -> Self {
        Self {
            arabic: ArabicEvidence::new(arabic),
            english: None,
            english_is_reference: false,
        }
    }

    /// Adds the article's machine translation.
    pub fn with_english(mut self, english: &str) -> Self {
        self.english = Some(EnglishEvidence::new(english));
        self
    }

    /// Adds a human reference translation of the article (see `english_is_reference`).
    pub fn with_reference(mut self, english: &str) -> Self {
        self.english = Some(EnglishEvidence::new(english));
        self.english_is_reference = true;
        self
    }

    pub fn has_english(&self) -> bool {
        self.english.is_some()
    }

    fn english_has(&self, f: impl Fn(&EnglishEvidence) -> bool) -> bool {
        self.english.as_ref().is_some_and(f)
    }

    /// Whether a place (its Arabic names, folded, and the English words a sentence names it
    /// by) is supported: named in the Arabic, transliterated there, or, for a reference
    /// translation only, in the English.
    fn place_known(&self, arabic: &[String], words: &[&str]) -> bool {
        self.arabic.has_place(arabic)
            || words.iter().all(|w| self.arabic.has_transliteration(w))
            || (self.english_is_reference
                && self.english_has(|e| words.iter().all(|w| e.has_word(w))))
    }

    /// The English names of the listed places the article does not support: what a summary
    /// sentence may not name (regenerations ban them all at once, since a small model that
    /// is denied one invented place invents the next).
    pub fn unsupported_places(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (names, arabic) in places::all() {
            for name in names {
                let words: Vec<&str> = name.split_whitespace().collect();
                if !self.place_known(arabic, &words) {
                    out.push(name.clone());
                }
            }
        }
        out
    }

    /// The months and weekdays the article does not name: what a sentence may not date an
    /// event by (banned all at once for the reason places are: denied "April", a small model
    /// writes "August", then "May").
    pub fn unsupported_dates(&self) -> Vec<String> {
        english::date_names()
            .filter(|(_, date)| !self.date_known(*date))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn date_known(&self, date: u32) -> bool {
        self.arabic.dates.contains(&date) || self.english_has(|e| e.dates.contains(&date))
    }

    /// Checks one English sentence's names, numbers and dates.
    pub fn check(&self, sentence: &str) -> SentenceCheck {
        let mut check = SentenceCheck::default();
        let mut sort = |kind, text: String, unsupported_words: Vec<String>| {
            let item = Item {
                kind,
                text,
                unsupported_words,
            };
            if item.unsupported_words.is_empty() {
                check.supported.push(item);
            } else {
                check.unsupported.push(item);
            }
        };
        let sentence_words = words(sentence);
        let places = places::mentions(&sentence_words);
        for place in &places {
            let words: Vec<&str> = place.words.iter().map(String::as_str).collect();
            let known = self.place_known(place.arabic(), &words);
            let missing = if known {
                Vec::new()
            } else {
                place.words.clone()
            };
            sort(ItemKind::Place, place.words.join(" "), missing);
        }
        let in_places = |w: &String| places.iter().any(|p| p.words.contains(w));
        for name in english::names_in(&sentence_words) {
            let rest: Vec<&String> = name.words.iter().filter(|w| !in_places(w)).collect();
            if rest.is_empty() {
                continue;
            }
            let text = if rest.len() == name.words.len() {
                name.text
            } else {
                rest.iter()
                    .map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let missing: Vec<String> = rest
                .into_iter()
                .filter(|w| {
                    !self.english_has(|e| e.has_word(w)) && !self.arabic.has_transliteration(w)
                })
                .cloned()
                .collect();
            sort(ItemKind::Name, text, missing);
        }
        // A small model copies Arabic words into an English sentence, and could write a name,
        // place or number there in Arabic letters that the English items never see: each run
        // of Arabic letters must be a word of the source.
        // Vowel marks belong to the word (هدفًا), and folding drops them.
        let in_run = |c: char| is_arabic_letter(c) || is_arabic_mark(c);
        for &word in &sentence_words {
            for run in word.split(|c| !in_run(c)).filter(|r| !r.is_empty()) {
                let missing = if self.arabic.has_word(run) {
                    Vec::new()
                } else {
                    vec![run.to_string()]
                };
                sort(ItemKind::Name, run.to_string(), missing);
            }
        }
        for numeral in number_words::english_numerals(sentence) {
            let known = |v: &numbers::Value| {
                self.arabic.values.contains(v) || self.english_has(|e| e.values.contains(v))
            };
            let missing = if numeral.values.iter().any(known) {
                Vec::new()
            } else {
                // The digits or the first number word ("forty" of "forty thousand") are what a
                // regeneration bans: the scale word is no fact alone.
                vec![numeral
                    .text
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_string()]
            };
            sort(ItemKind::Number, numeral.text, missing);
        }
        for &word in &sentence_words {
            if let Some(date) = english::english_date(word) {
                // "may" the verb is no month.
                if word == "May" || !word.starts_with(char::is_lowercase) {
                    let missing = if self.date_known(date) {
                        Vec::new()
                    } else {
                        vec![word.to_string()]
                    };
                    sort(ItemKind::Date, word.to_string(), missing);
                }
            }
        }
        check
    }
}

/// What happened to one sentence of a checked summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Supported as first written.
    Kept,
    /// Written again with unsupported words banned, and supported then.
    Regenerated,
    /// The rejected sentence before it without the phrases that carried its unsupported
    /// items ([`without_unsupported`]), and supported then.
    Trimmed,
    /// Unsupported, and written again (the next sentence of the report is its next try).
    Rejected,
    /// Still unsupported after every try: left out of the summary.
    Dropped,
}

/// One sentence the model wrote, its items and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct SentenceReport {
    pub text: String,
    pub outcome: Outcome,
    pub supported: Vec<Item>,
    pub unsupported: Vec<Item>,
}

impl SentenceReport {
    pub fn new(text: &str, check: SentenceCheck, outcome: Outcome) -> Self {
        Self {
            text: text.to_string(),
            outcome,
            supported: check.supported,
            unsupported: check.unsupported,
        }
    }
}

/// The support check of one summary, as `--format json` reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// The first draft's sentences: the summary as it would be without the check.
    pub draft: Vec<String>,
    /// Every sentence written, in order: the kept, regenerated and trimmed ones make the
    /// summary.
    pub sentences: Vec<SentenceReport>,
    /// Sentences asked for (for a length in words: the sentences of the first draft).
    pub requested: usize,
    /// How many sentences the summary has fewer than asked for (0 when it is complete).
    pub short_by: usize,
    /// Whether the check translated the article (facts the Arabic alone could not support).
    pub used_translation: bool,
}

impl CheckReport {
    /// Whether a sentence of this outcome is in the summary.
    pub fn accepted(outcome: Outcome) -> bool {
        matches!(
            outcome,
            Outcome::Kept | Outcome::Regenerated | Outcome::Trimmed
        )
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.sentences
            .iter()
            .filter(|s| s.outcome == outcome)
            .count()
    }

    /// One line for `--verbose` and for the note a short summary gets.
    pub fn tally(&self) -> String {
        let trimmed = match self.count(Outcome::Trimmed) {
            0 => String::new(),
            n => format!(", {n} trimmed"),
        };
        let mut line = format!(
            "check: {} sentence(s) kept, {} regenerated{trimmed}, {} dropped ({} unsupported tries)",
            self.count(Outcome::Kept),
            self.count(Outcome::Regenerated),
            self.count(Outcome::Dropped),
            self.count(Outcome::Rejected) + self.count(Outcome::Dropped)
        );
        if self.short_by > 0 {
            line.push_str(&format!(
                "; the summary is {} sentence(s) short of the {} asked for",
                self.short_by, self.requested
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARABIC: &str = "أعلن رئيس الوزراء العراقي حيدر العبادي يوم الخميس ٥ تشرين الأول تحرير \
        مدينة الحويجة من تنظيم داعش، وقال إن ١٢٠٠ مقاتل شاركوا في العملية التي بدأت في ٢١ أيلول.";
    const ENGLISH: &str = "Iraqi Prime Minister Haider al-Abadi announced on Thursday, October 5, \
        the liberation of the city of Hawija from Daesh, saying 1,200 fighters took part in the \
        operation that began on September 21.";

    fn unsupported(evidence: &Evidence, sentence: &str) -> Vec<String> {
        evidence
            .check(sentence)
            .unsupported
            .into_iter()
            .map(|i| i.text)
            .collect()
    }

    #[test]
    fn supported_names_numbers_and_dates_pass() {
        let evidence = Evidence::from_arabic(ARABIC).with_english(ENGLISH);
        let check = evidence.check(
            "Haider al-Abadi said on Thursday that 1,200 fighters freed Hawija from ISIS in October.",
        );
        assert!(check.passes(), "{check:?}");
        let kinds: Vec<ItemKind> = check.supported.iter().map(|i| i.kind).collect();
        assert!(kinds.contains(&ItemKind::Name));
        assert!(kinds.contains(&ItemKind::Number));
        assert!(kinds.contains(&ItemKind::Date));
    }

    #[test]
    fn invented_names_numbers_and_dates_fail() {
        let evidence = Evidence::from_arabic(ARABIC).with_english(ENGLISH);
        assert_eq!(
            unsupported(
                &evidence,
                "The Afghan Taliban met in Kabul on Monday, and 3,000 fighters joined in March."
            ),
            ["Afghan", "Kabul", "Taliban", "3,000", "Monday", "March"]
        );
        let check = evidence.check("The Afghan Taliban praised Abadi.");
        assert_eq!(check.banned_words(), ["Afghan", "Taliban"]);
    }

    #[test]
    fn numbers_in_arabic_indic_digits_are_found_in_the_source() {
        // Without a translation, the Arabic source alone vouches for the digits and the dates.
        let evidence = Evidence::from_arabic(ARABIC);
        assert!(evidence.check("About 1200 fighters took part.").passes());
        assert!(evidence.check("It began on September 21.").passes());
        assert!(evidence.check("It ended on October 5.").passes());
        assert_eq!(
            unsupported(&evidence, "About 1,300 fighters took part on 22 September."),
            ["1,300", "22"]
        );
        // A connective that opens the sentence is no name.
        assert!(evidence
            .check("Hence, about 1200 fighters took part.")
            .passes());
        let western = Evidence::from_arabic("قتل 15 شخصا في 2019");
        assert!(western.check("15 people died in 2019.").passes());
        // Digits of another script in the English sentence are numbers too.
        assert!(western.check("١٥ people died in ۲۰۱۹.").passes());
        assert_eq!(
            unsupported(&western, "It happened on August १, ٢٠١٣."),
            ["1", "2013", "August"]
        );
    }

    #[test]
    fn transliterated_names_are_found_in_the_source() {
        let evidence = Evidence::from_arabic(ARABIC);
        assert!(evidence
            .check("Haidar Al-Abbadi announced that Huwaija was freed.")
            .passes());
        assert_eq!(unsupported(&evidence, "Erdogan announced it."), ["Erdogan"]);
    }

    #[test]
    fn unsupported_places_are_the_listed_places_a_sentence_may_not_name() {
        let evidence = Evidence::from_arabic(ARABIC);
        let places = evidence.unsupported_places();
        for name in ["France", "Afghanistan", "United Nations", "Egypt", "Kabul"] {
            assert!(places.iter().any(|p| p == name), "{name}");
        }
        // العراقي names Iraq.
        assert!(!places.iter().any(|p| p == "Iraq"));
        // What a regeneration bans is what the check rejects.
        for name in &places {
            let mut chars = name.chars();
            let name: String = chars
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .chain(chars)
                .collect();
            let sentence = format!("The minister flew to {name} on Thursday.");
            let check = evidence.check(&sentence);
            if name.chars().all(|c| c.is_alphanumeric() || c == ' ') {
                assert!(!check.passes(), "{sentence}");
            }
        }
    }

    #[test]
    fn arabic_words_in_an_english_sentence_must_be_words_of_the_source() {
        let evidence = Evidence::from_arabic(ARABIC);
        // Copied from the source, with or without clitics: supported.
        assert!(evidence.check("The city of الحويجة was freed.").passes());
        assert!(evidence.check("The fighters of وداعش left.").passes());
        assert!(evidence.check("They freed الحُويجةَ.").passes());
        // Not in the source: the place and the number word are unsupported, and banned.
        assert_eq!(
            unsupported(&evidence, "The minister flew to مصر with ستة advisers."),
            ["مصر", "ستة"]
        );
        // A word that mixes scripts is a name as written, and its Arabic letters are looked for
        // as a word.
        assert_eq!(unsupported(&evidence, "Lمصر won."), ["Lمصر", "مصر"]);
    }

    #[test]
    fn unsupported_dates_are_the_months_and_weekdays_the_article_does_not_name() {
        let evidence = Evidence::from_arabic(ARABIC);
        let dates = evidence.unsupported_dates();
        assert_eq!(dates.len(), 12 + 7 - 3, "{dates:?}");
        for (name, _) in english::date_names() {
            let sentence = format!("The city was freed on {name}.");
            let supported = ["Thursday", "October", "September"].contains(&name);
            assert_eq!(evidence.check(&sentence).passes(), supported, "{sentence}");
            assert_eq!(dates.iter().any(|d| d == name), !supported, "{name}");
        }
    }

    #[test]
    fn tally_reports_a_short_summary() {
        let evidence = Evidence::from_arabic(ARABIC);
        let mut report = CheckReport {
            requested: 3,
            short_by: 1,
            ..CheckReport::default()
        };
        for (text, outcome) in [
            ("Abadi spoke.", Outcome::Kept),
            ("Kabul fell.", Outcome::Dropped),
            ("Hawija was freed.", Outcome::Regenerated),
        ] {
            report
                .sentences
                .push(SentenceReport::new(text, evidence.check(text), outcome));
        }
        assert_eq!(
            report.tally(),
            "check: 1 sentence(s) kept, 1 regenerated, 1 dropped (1 unsupported tries); the summary is 1 sentence(s) short of the 3 asked for"
        );
    }
}
