//! What the Arabic source itself can vouch for: numerals in any digits, month and weekday
//! names, and names written in Latin letters that transliterate a word of the source.
//!
//! Transliteration is matched by consonant skeletons: Arabic writes no short vowels and
//! English spellings of one name vary in their vowels ("Mosul", "Mousel"), so both sides are
//! reduced to consonant classes (letters one side cannot tell apart share a class: ص and س are
//! both "s"; g, j, ج and غ are one class), long vowels and the weak letters are dropped,
//! doubled consonants are collapsed, and the source's clitics (و، ف، ب، ل، ك، ال) and nisba
//! endings are stripped. No library does this for Arabic-to-Latin names; the method is measured
//! on the NTREX sentence pairs by `tests/it/faithful.rs` (names of the English reference found
//! in their own Arabic sentence against those "found" in another article's sentence).

use std::collections::HashSet;

use super::number_words::{self, arabic_scale};
use super::numbers::{self, Value};
use crate::document::fold_for_matching;

/// The source's evidence: stem skeletons, numeral values, months and weekdays.
#[derive(Debug, Default)]
pub struct ArabicEvidence {
    skeletons: HashSet<String>,
    /// The source's words without their clitics, folded.
    stems: HashSet<String>,
    /// The whole source, folded: where names of several words are looked for.
    folded: String,
    pub values: HashSet<Value>,
    /// Month numbers 1–12 and weekdays 101–107 (Sunday first) the source names.
    pub dates: HashSet<u32>,
}

impl ArabicEvidence {
    pub fn new(text: &str) -> Self {
        let digits = numbers::ascii_digits(text);
        let mut values = HashSet::new();
        for numeral in numbers::numerals(&digits, arabic_scale) {
            values.extend(numeral.values);
        }
        let folded = fold_for_matching(text);
        let words: Vec<&str> = folded.split(' ').collect();
        let forms: Vec<Vec<String>> = words.iter().map(|w| stems(w)).collect();
        values.extend(number_words::arabic_values(&forms));
        let mut skeletons = HashSet::new();
        let mut all_stems = HashSet::new();
        let mut dates = HashSet::new();
        for (i, word_stems) in forms.into_iter().enumerate() {
            for stem in word_stems {
                let s = skeleton_of_arabic(&stem);
                if s.chars().count() >= MIN_SKELETON {
                    skeletons.insert(s);
                }
                if let Some(d) = arabic_date(&stem, words.get(i + 1).copied()) {
                    dates.insert(d);
                }
                all_stems.insert(stem);
            }
        }
        Self {
            skeletons,
            stems: all_stems,
            folded: format!(" {folded} "),
            values,
            dates,
        }
    }

    /// Whether the source has one of `names` (folded Arabic names of a place): a one-word
    /// name as a word with or without its clitics and endings (مصر in المصرية), a longer one as
    /// a phrase.
    pub fn has_place(&self, names: &[String]) -> bool {
        names.iter().any(|name| {
            if name.contains(' ') {
                self.folded.contains(name.as_str())
                    || name
                        .strip_prefix("ال")
                        .is_some_and(|bare| self.folded.contains(bare))
            } else {
                let bare = name.strip_prefix("ال").unwrap_or(name);
                // The adjective of a name in -ا drops it (أمريكا → الأمريكي, أوروبا → أوروبية),
                // and the source's stems have the adjective's ending removed.
                let adjective = bare.strip_suffix(['ا', 'ه']);
                [Some(name.as_str()), Some(bare), adjective]
                    .into_iter()
                    .flatten()
                    .any(|form| self.stems.contains(form))
            }
        })
    }

    /// Whether `word`, written in Arabic letters, is a word of the source, with or without its
    /// clitics and endings.
    pub fn has_word(&self, word: &str) -> bool {
        let folded = fold_for_matching(word);
        stems(folded.trim())
            .iter()
            .any(|stem| self.stems.contains(stem))
    }

    /// Whether `word`, a name written in Latin letters, transliterates a word of the source.
    pub fn has_transliteration(&self, word: &str) -> bool {
        // English endings the source writes otherwise or not at all: the plural ("Iraqis"
        // for العراقيين) and the "-ian" of nationalities ("Syrian" for السوري).
        let lower = word.to_lowercase();
        let forms = [
            Some(lower.as_str()),
            lower.strip_suffix('s'),
            lower.strip_suffix("ian"),
            lower.strip_suffix("ians"),
        ];
        let found = forms.into_iter().flatten().any(|form| {
            let s = skeleton_of_latin(form);
            s.chars().count() >= MIN_SKELETON && self.skeletons.contains(&s)
        });
        found
    }
}

/// Skeletons shorter than this match too much by chance (measured: one consonant class matches
/// almost any short word) and are not used.
pub const MIN_SKELETON: usize = 2;

/// The forms a source word may take without its clitics: itself, without a leading
/// conjunction or preposition and the article, and without a nisba or plural ending.
fn stems(word: &str) -> Vec<String> {
    let mut out = vec![word.to_string()];
    for prefix in [
        "وبال", "وال", "بال", "فال", "كال", "لل", "ال", "و", "ف", "ب", "ل", "ك",
    ] {
        if let Some(rest) = word.strip_prefix(prefix) {
            if rest.chars().count() >= 2 {
                out.push(rest.to_string());
            }
        }
    }
    let mut with_suffixes = Vec::new();
    for stem in &out {
        for suffix in ["يون", "يين", "ييه", "يه", "ين", "ون", "ي"] {
            if let Some(rest) = stem.strip_suffix(suffix) {
                if rest.chars().count() >= 2 {
                    with_suffixes.push(rest.to_string());
                }
            }
        }
    }
    out.extend(with_suffixes);
    out
}

/// The consonant class of an Arabic letter (folded: alef forms are ا, ة is ه); `None` for the
/// letters a transliteration may leave out (long vowels, the weak letters, hamza and ain).
fn arabic_class(c: char) -> Option<char> {
    Some(match c {
        'ب' | 'پ' => 'b',
        'ت' | 'ط' | 'ث' => 't',
        'ج' | 'غ' | 'گ' => 'j',
        'ح' | 'ه' => 'h',
        'خ' => 'x',
        'د' | 'ض' => 'd',
        'ذ' | 'ز' | 'ظ' => 'z',
        'ر' => 'r',
        'س' | 'ص' => 's',
        'ش' => 'S',
        'ف' | 'ڤ' => 'f',
        'ق' | 'ك' | 'ک' => 'k',
        'ل' => 'l',
        'م' => 'm',
        'ن' => 'n',
        _ => return None,
    })
}

pub fn skeleton_of_arabic(word: &str) -> String {
    // A final ه is mostly a folded ة (the feminine ending), which transliterations write as a
    // vowel ("Gaza" for غزة).
    let word = word.strip_suffix('ه').unwrap_or(word);
    collapse(word.chars().filter_map(arabic_class))
}

/// The consonant classes of a name in Latin letters, the same classes as [`arabic_class`].
pub fn skeleton_of_latin(word: &str) -> String {
    let lower: Vec<char> = word
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    // The Arabic article, written as a prefix ("al-Baghdadi", "el-Sisi").
    let start = match lower.as_slice() {
        ['a' | 'e', 'l', rest @ ..] if rest.len() >= 3 && word.contains('-') => 2,
        _ => 0,
    };
    let mut classes = Vec::new();
    let mut i = start;
    while i < lower.len() {
        let c = lower[i];
        let next = lower.get(i + 1).copied();
        let (class, used) = match (c, next) {
            ('s', Some('h')) => (Some('S'), 2),
            ('c', Some('h')) => (Some('S'), 2),
            ('k', Some('h')) => (Some('x'), 2),
            ('g', Some('h')) => (Some('j'), 2),
            ('t', Some('h')) => (Some('t'), 2),
            ('d', Some('h')) => (Some('z'), 2),
            ('p', Some('h')) => (Some('f'), 2),
            ('c', Some('k')) => (Some('k'), 2),
            ('c', Some('e' | 'i' | 'y')) => (Some('s'), 1),
            ('b' | 'p', _) => (Some('b'), 1),
            ('t', _) => (Some('t'), 1),
            ('g' | 'j', _) => (Some('j'), 1),
            ('h', _) => (Some('h'), 1),
            ('d', _) => (Some('d'), 1),
            ('z', _) => (Some('z'), 1),
            ('r', _) => (Some('r'), 1),
            ('s', _) => (Some('s'), 1),
            ('f' | 'v', _) => (Some('f'), 1),
            ('k' | 'q' | 'c', _) => (Some('k'), 1),
            ('x', _) => (Some('k'), 1),
            ('l', _) => (Some('l'), 1),
            ('m', _) => (Some('m'), 1),
            ('n', _) => (Some('n'), 1),
            _ => (None, 1),
        };
        classes.extend(class);
        if c == 'x' {
            classes.push('s');
        }
        i += used;
    }
    collapse(classes.into_iter())
}

fn collapse(classes: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    for c in classes {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// Month (1–12) or weekday (101–107) an Arabic word names; Levantine months take two words
/// ("تشرين الأول").
fn arabic_date(word: &str, next: Option<&str>) -> Option<u32> {
    let next = next.map(|n| n.strip_prefix("ال").unwrap_or(n));
    Some(match word {
        "يناير" | "كانون" if word == "يناير" || next == Some("ثاني") => 1,
        "كانون" => 12,
        "فبراير" | "شباط" => 2,
        "مارس" | "اذار" => 3,
        "ابريل" | "نيسان" => 4,
        "مايو" | "ايار" => 5,
        "يونيو" | "يونيه" | "حزيران" => 6,
        "يوليو" | "يوليه" | "تموز" => 7,
        "اغسطس" | "اب" => 8,
        "سبتمبر" | "ايلول" => 9,
        "اكتوبر" | "تشرين" if word == "اكتوبر" || next == Some("اول") => 10,
        "نوفمبر" | "تشرين" => 11,
        "ديسمبر" => 12,
        "احد" => 101,
        "اثنين" => 102,
        "ثلاثاء" => 103,
        "اربعاء" => 104,
        "خميس" => 105,
        "جمعه" => 106,
        "سبت" => 107,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transliterations_share_a_skeleton() {
        let source = ArabicEvidence::new(
            "قال العبادي في الموصل إن ترامب وبوتين بحثا مع البغدادي الوضع في غزة والعراقيين",
        );
        for name in [
            "Abadi",
            "al-Abadi",
            "Mosul",
            "Trump",
            "Putin",
            "Baghdadi",
            "al-Baghdadi",
            "Gaza",
            "Iraqis",
        ] {
            assert!(source.has_transliteration(name), "{name}");
        }
        for name in ["Biden", "Kabul", "Taliban", "Erdogan"] {
            assert!(!source.has_transliteration(name), "{name}");
        }
    }

    #[test]
    fn digits_of_every_script_and_arabic_scales() {
        let source = ArabicEvidence::new("قتل ١٥ شخصا و٢٫٥ مليون نازح في عام ۲۰۱۹ و3,000 جريح");
        for value in [15_000, 2_500, 2_500_000_000, 2_019_000, 3_000_000] {
            assert!(source.values.contains(&value), "{value}");
        }
    }

    #[test]
    fn months_and_weekdays() {
        let source = ArabicEvidence::new("يوم الخميس 3 تشرين الأول وفي 5 يناير");
        assert!(source.dates.contains(&105));
        assert!(source.dates.contains(&10));
        assert!(source.dates.contains(&1));
        assert!(!source.dates.contains(&11));
    }
}
