//! The checkable content of English text: names (capitalised words that are not sentence
//! furniture or titles), numerals, months and weekdays.

use std::collections::HashSet;

use super::number_words;
use super::numbers::Value;

/// The words of `text`: runs of letters, digits, hyphens and apostrophes, with the
/// possessive "'s" removed.
pub fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let is_word_char = |c: char| c.is_alphanumeric() || matches!(c, '-' | '\'' | '’');
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if is_word_char(c) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            let word = text[s..i].trim_matches(['-', '\'', '’']);
            let word = word
                .strip_suffix("'s")
                .or_else(|| word.strip_suffix("’s"))
                .unwrap_or(word);
            if !word.is_empty() {
                out.push(word);
            }
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Every month and weekday name with its date number (see [`english_date`]).
pub fn date_names() -> impl Iterator<Item = (&'static str, u32)> {
    let months = MONTHS.iter().zip(1..);
    let weekdays = WEEKDAYS.iter().zip(101..);
    months.chain(weekdays).map(|(name, date)| (*name, date))
}

/// Month (1–12) or weekday (101–107, Sunday first) an English word names.
pub fn english_date(word: &str) -> Option<u32> {
    date_names().find_map(|(name, date)| name.eq_ignore_ascii_case(word).then_some(date))
}

/// Capitalised words that are not names: function words that open sentences, and the titles
/// and institutions news writing capitalises ("President", "Ministry"), which are checked by
/// the names that go with them.
const NOT_NAMES: &[&str] = &[
    "a",
    "about",
    "according",
    // Connectives that open a summary's sentences ("Hence, the number of deaths rose").
    "hence",
    "thus",
    "therefore",
    "moreover",
    "furthermore",
    "additionally",
    "overall",
    "finally",
    "consequently",
    "nevertheless",
    "instead",
    "then",
    "currently",
    "recently",
    "previously",
    "initially",
    "eventually",
    "ultimately",
    "subsequently",
    "similarly",
    "notably",
    "after",
    "against",
    "all",
    "also",
    "although",
    "among",
    "an",
    "and",
    "another",
    "any",
    "as",
    "at",
    "because",
    "before",
    "between",
    "both",
    "but",
    "by",
    "despite",
    "during",
    "each",
    "earlier",
    "either",
    "following",
    "for",
    "from",
    "he",
    "her",
    "here",
    "his",
    "however",
    "i",
    "if",
    "in",
    "including",
    "it",
    "its",
    "last",
    "later",
    "many",
    "meanwhile",
    "more",
    "most",
    "mr",
    "mrs",
    "ms",
    "new",
    "no",
    "not",
    "of",
    "on",
    "once",
    "one",
    "or",
    "other",
    "over",
    "several",
    "she",
    "since",
    "so",
    "some",
    "such",
    "that",
    "the",
    "their",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "today",
    "under",
    "until",
    "upon",
    "we",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "with",
    "within",
    "without",
    "yesterday",
    "you",
    "dr",
    "sheikh",
    "king",
    "prince",
    "president",
    "vice",
    "prime",
    "minister",
    "ministers",
    "ministry",
    "secretary",
    "general",
    "foreign",
    "interior",
    "defense",
    "defence",
    "affairs",
    "government",
    "parliament",
    "council",
    "army",
    "forces",
    "force",
    "police",
    "court",
    "office",
    "committee",
    "commission",
    "authority",
    "department",
    "agency",
    "state",
    "states",
    "republic",
    "kingdom",
    "federal",
    "national",
    "international",
    "security",
    "chief",
    "head",
    "spokesman",
    "spokesperson",
    "leader",
    "commander",
    "governor",
    "mayor",
    "ambassador",
    "colonel",
    "general",
    "lieutenant",
    "major",
    "captain",
    "news",
    "summary",
    "article",
    "report",
    "reports",
    "north",
    "south",
    "east",
    "west",
    "northern",
    "southern",
    "eastern",
    "western",
    "central",
    "city",
    "province",
    "governorate",
    "region",
    "street",
    "university",
    "party",
    "movement",
    "organization",
    "organisation",
    "union",
    "front",
    "coalition",
    "alliance",
    "group",
    "people",
    "media",
    // The article's language, which summaries name from the prompt ("The Arab news article").
    "arab",
    "arabic",
    "english",
];

/// Particles inside Arabic names, which a name's other words carry.
const NAME_PARTICLES: &[&str] = &["al", "el", "bin", "ibn", "bint", "abu", "abd", "ben", "de"];

/// A name as written, with the words of it that need support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub words: Vec<String>,
}

/// Capitalised runs of words that are not sentence furniture, titles or particles. A word that
/// opens the sentence is capitalised anyway: it counts when it is not a common word, and a
/// common word the list misses is found in the evidence like any other.
pub fn names(text: &str) -> Vec<Name> {
    names_in(&words(text))
}

/// [`names`] of text already split into [`words`].
pub fn names_in(words: &[&str]) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    let mut current: Option<Name> = None;
    for &word in words {
        let first = word.chars().next().unwrap_or(' ');
        let lower = word.to_lowercase();
        // "al-Abadi": the article prefix is lower-case, the name after it is not.
        let after_article = word.split_once('-').map_or(' ', |(head, tail)| {
            if matches!(head, "al" | "el") {
                tail.chars().next().unwrap_or(' ')
            } else {
                ' '
            }
        });
        let is_cap = first.is_uppercase() || after_article.is_uppercase();
        let key = lower.trim_end_matches('s');
        let furniture = NOT_NAMES.contains(&lower.as_str())
            || NOT_NAMES.contains(&key)
            || english_date(word).is_some()
            || number_words::is_english_number_word(word)
            || number_words::is_english_number_word(key);
        let particle = NAME_PARTICLES.contains(&lower.as_str());
        if is_cap && !furniture && !particle {
            let name = current.get_or_insert_with(|| Name {
                text: String::new(),
                words: Vec::new(),
            });
            if !name.text.is_empty() {
                name.text.push(' ');
            }
            name.text.push_str(word);
            name.words.push(word.to_string());
        } else if particle && current.is_some() {
            let name = current.as_mut().expect("checked");
            name.text.push(' ');
            name.text.push_str(word);
        } else if let Some(name) = current.take() {
            out.push(name);
        }
    }
    out.extend(current);
    out
}

/// Lower-cased word forms for matching: without the article prefix ("al-") and hyphens.
pub fn match_form(word: &str) -> String {
    let lower = word.to_lowercase().replace('’', "'");
    let lower = [
        "al-", "el-", "ad-", "as-", "ash-", "an-", "ar-", "at-", "az-",
    ]
    .iter()
    .find_map(|p| lower.strip_prefix(p))
    .unwrap_or(&lower);
    lower.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Two word forms name the same thing: equal, or one is the other with an ending ("Iraq",
/// "Iraqi"; "Syria", "Syrians"; "Afghan", "Afghanistan").
pub fn same_word(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.len() >= 4 && long.len() - short.len() <= 5 && long.starts_with(short))
}

/// Names for the same organisation that a translation and a summary use interchangeably.
const ALIASES: &[&[&str]] = &[
    &["daesh", "isis", "isil", "is", "islamicstate"],
    &[
        "us",
        "usa",
        "america",
        "american",
        "americans",
        "unitedstates",
    ],
    &["un", "unitednations"],
    &["uk", "britain", "british", "unitedkingdom"],
    &["uae", "emirates", "emirati", "unitedarabemirates"],
];

/// The English text's evidence: its word forms, the acronyms of its capitalised runs, its
/// numeral values and its months and weekdays.
#[derive(Debug, Default)]
pub struct EnglishEvidence {
    forms: HashSet<String>,
    pub values: HashSet<Value>,
    pub dates: HashSet<u32>,
}

impl EnglishEvidence {
    pub fn new(text: &str) -> Self {
        let mut forms = HashSet::new();
        let mut dates = HashSet::new();
        let all = words(text);
        for w in &all {
            forms.insert(match_form(w));
            if let Some(d) = english_date(w) {
                dates.insert(d);
            }
        }
        // Acronyms and joined forms of capitalised runs ("United Nations" → "un",
        // "unitednations"), so that a summary may abbreviate what the translation spells out.
        let mut run: Vec<&str> = Vec::new();
        for w in all.iter().copied().chain(std::iter::once("")) {
            let cap = w.chars().next().is_some_and(char::is_uppercase);
            if cap {
                run.push(w);
            } else if !run.is_empty() && matches!(w, "of" | "and" | "the") {
                continue;
            } else {
                if run.len() >= 2 {
                    let initials: String = run
                        .iter()
                        .filter_map(|w| w.chars().next())
                        .flat_map(char::to_lowercase)
                        .collect();
                    forms.insert(initials);
                    forms.insert(run.iter().map(|w| match_form(w)).collect());
                }
                run.clear();
            }
        }
        let mut values = HashSet::new();
        for numeral in number_words::english_numerals(text) {
            values.extend(numeral.values);
        }
        Self {
            forms,
            values,
            dates,
        }
    }

    /// Whether the text has `word` (or an alias of it).
    pub fn has_word(&self, word: &str) -> bool {
        let form = match_form(word);
        if form.is_empty() {
            return true;
        }
        let aliases = ALIASES
            .iter()
            .find(|set| set.contains(&form.as_str()))
            .map_or(&[][..], |set| *set);
        self.forms
            .iter()
            .any(|f| same_word(f, &form) || aliases.contains(&f.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_skip_furniture_and_titles() {
        let found = names(
            "The Iraqi Prime Minister Haider al-Abadi met President Trump in Mosul on Monday.",
        );
        let texts: Vec<&str> = found.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["Iraqi", "Haider al-Abadi", "Trump", "Mosul"]);
        assert_eq!(found[1].words, ["Haider", "al-Abadi"]);
        assert!(names("According to officials, the talks went well.").is_empty());
    }

    #[test]
    fn words_match_across_endings_and_aliases() {
        let english = EnglishEvidence::new(
            "Syria and Iraq asked the United Nations about Daesh in Afghanistan.",
        );
        for word in ["Syrian", "Iraqi", "UN", "ISIS", "Afghan", "al-Iraq"] {
            assert!(english.has_word(word), "{word}");
        }
        for word in ["Iran", "Taliban", "NATO"] {
            assert!(!english.has_word(word), "{word}");
        }
    }
}
