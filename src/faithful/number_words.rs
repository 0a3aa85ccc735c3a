//! Numbers written in words, English and Arabic, read as values: a chat model denied an
//! invented "40" writes "forty", and an article may spell out what a summary writes in digits.
//!
//! Vague quantities ("hundreds of", "thousands", عشرات, آلاف alone) are no numbers. English
//! "one" … "ten" alone are not read either: they are pronouns and determiners as often ("one
//! of the ministers"), and Arabic writes "two" as a dual ending, not a word, so they would be
//! rejected for want of a number word the article never needed.
//!
//! Written here rather than taken from a crate: the number-word readers on crates.io
//! (`text2num`) read English and European languages but not Arabic, and the check reads English
//! more narrowly than they do (no "one" … "ten" alone, no ordinals), so the two languages'
//! small vocabularies and the one set of rules live together in this file.

use super::numbers::{self, Numeral, Value};

/// The multiplier of an English scale word ("million" → 10⁶).
pub fn english_scale(word: &str) -> Option<Value> {
    match word.to_lowercase().as_str() {
        "thousand" => Some(1_000),
        "million" | "mln" => Some(1_000_000),
        "billion" | "bn" => Some(1_000_000_000),
        "trillion" => Some(1_000_000_000_000),
        _ => None,
    }
}

/// The multiplier of an Arabic scale word, singular or plural, with or without و.
pub fn arabic_scale(word: &str) -> Option<Value> {
    let w = word.trim_start_matches('و');
    match w {
        "ألف" | "الف" | "آلاف" | "الاف" | "ألفا" | "الفا" => Some(1_000),
        "مليون" | "ملايين" | "مليونا" => Some(1_000_000),
        "مليار" | "مليارات" | "مليارا" | "بليون" => Some(1_000_000_000),
        _ => None,
    }
}

/// The numerals of English text: in digits ("40", "2.5 million") and in words ("forty",
/// "twenty-five thousand").
pub fn english_numerals(text: &str) -> Vec<Numeral> {
    let mut out = numbers::numerals(&numbers::ascii_digits(text), english_scale);
    out.extend(english_spelled(text));
    out
}

const ONES: [&str; 19] = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// "one" … "nineteen" and "twenty" … "ninety", lower-case.
fn english_small(word: &str) -> Option<i128> {
    let at = |list: &[&str]| list.iter().position(|w| *w == word).map(|i| i as i128);
    at(&ONES)
        .map(|i| i + 1)
        .or_else(|| at(&TENS).map(|i| (i + 2) * 10))
}

/// The English number words that are numbers alone ("eleven" … "nineteen", "twenty" …
/// "ninety"): the words a regeneration after an invented number may not write, beside digits.
pub fn english_number_words() -> impl Iterator<Item = &'static str> {
    ONES[10..].iter().chain(&TENS).copied()
}

/// Whether `word` ("Forty", "Twenty-Five", "Thousand") is made of number words: no name.
pub fn is_english_number_word(word: &str) -> bool {
    let lower = word.to_lowercase();
    lower
        .split('-')
        .all(|w| english_small(w).is_some() || w == "hundred" || english_scale(w).is_some())
}

/// The spelled-out numbers of English text. A number's words follow each other after a space
/// or a hyphen; "a" before "hundred" or a scale word counts as one but is not part of the text,
/// since the text's first word is what a regeneration bans.
fn english_spelled(text: &str) -> Vec<Numeral> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    let word = |k: usize| text[spans[k].0..spans[k].1].to_lowercase();
    let gap = |k: usize| &text[spans[k - 1].1..spans[k].0];
    let joined = |k: usize| k < spans.len() && matches!(gap(k), " " | "-");
    let multiplier =
        |k: usize| joined(k) && (word(k) == "hundred" || english_scale(&word(k)).is_some());
    let mut out = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let first = if word(i) == "a" && multiplier(i + 1) {
            i + 1
        } else {
            i
        };
        let (mut total, mut current) = (0, i128::from(first > i));
        // The number before its one scale word: "forty thousand" is also 40, as "40 thousand"
        // is (a source may write the scale otherwise).
        let mut group = None;
        let mut k = first;
        let mut end = None;
        while k == first || joined(k) {
            let w = word(k);
            if let Some(v) = english_small(&w) {
                let tens = current % 100;
                if tens == 0 || (v < 10 && tens >= 20 && tens % 10 == 0) {
                    current += v;
                } else {
                    break;
                }
            } else if w == "hundred" && (1..100).contains(&current) {
                current *= 100;
            } else if let Some(scale) = english_scale(&w).filter(|_| current > 0) {
                group = if total == 0 { Some(current) } else { None };
                total += current * scale;
                current = 0;
            } else if w == "and"
                && total + current > 0
                && current % 100 == 0
                && joined(k + 1)
                && english_small(&word(k + 1)).is_some()
            {
                // "two hundred and fifty", "two thousand and five"
            } else {
                break;
            }
            if w != "and" {
                end = Some(k);
            }
            k += 1;
        }
        let Some(end) = end else {
            i += 1;
            continue;
        };
        i = end + 1;
        let value = total + current;
        let hyphened = |k: usize| joined(k) && gap(k) == "-";
        // "twenty-first", "forty-fifth": ordinals.
        let ordinal = hyphened(end + 1)
            && [
                "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                "ninth",
            ]
            .contains(&word(end + 1).as_str());
        if (end == first && value <= 10) || ordinal {
            continue;
        }
        let mut values = vec![numbers::whole(value)];
        // A group of one ("a thousand") says nothing alone.
        if current == 0 {
            values.extend(group.filter(|&g| g > 1).map(numbers::whole));
        }
        out.push(Numeral {
            text: text[spans[first].0..spans[end].1].to_string(),
            values,
        });
    }
    out
}

/// What an Arabic number word is, folded (`fold_for_matching`): ة is ه, alef forms are ا.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArabicWord {
    /// 1 … 10; a multiplier before مائة and the scale words.
    Unit(i128),
    /// 20 … 90.
    Tens(i128),
    /// 100 … 900.
    Hundreds(i128),
    Scale(i128),
    /// A scale word that is a number alone, singular or dual: ألف, مليونين.
    Counted(i128),
}

fn arabic_word(word: &str) -> Option<ArabicWord> {
    let unit = |w: &str| {
        Some(match w {
            "واحد" | "واحده" | "احد" | "احدي" => 1,
            "اثنان" | "اثنين" | "اثنتان" | "اثنتين" | "اثنا" | "اثني" | "اثنتا" | "اثنتي" => {
                2
            }
            "ثلاث" | "ثلاثه" => 3,
            "اربع" | "اربعه" => 4,
            "خمس" | "خمسه" => 5,
            "ست" | "سته" => 6,
            "سبع" | "سبعه" => 7,
            "ثمان" | "ثماني" | "ثمانيه" => 8,
            "تسع" | "تسعه" => 9,
            "عشر" | "عشره" => 10,
            _ => return None,
        })
    };
    if let Some(u) = unit(word) {
        return Some(ArabicWord::Unit(u));
    }
    // The tens are the units 3 … 9 with the plural ending (ثلاثون, ثلاثين), and عشرون.
    if let Some(stem) = word.strip_suffix("ون").or_else(|| word.strip_suffix("ين")) {
        match (stem, unit(stem)) {
            ("عشر", _) => return Some(ArabicWord::Tens(20)),
            (_, Some(u @ 3..=9)) => return Some(ArabicWord::Tens(u * 10)),
            _ => {}
        }
    }
    // ثلاثمائة, ثلاثمئة: a unit 3 … 9 and مائة in one word.
    if let Some(stem) = word
        .strip_suffix("مائه")
        .or_else(|| word.strip_suffix("مئه"))
    {
        match (stem, unit(stem)) {
            ("", _) => return Some(ArabicWord::Hundreds(100)),
            (_, Some(u @ 3..=9)) => return Some(ArabicWord::Hundreds(u * 100)),
            _ => {}
        }
    }
    Some(match word {
        "مائتان" | "مائتين" | "مئتان" | "مئتين" | "مائتا" | "مائتي" | "مئتا" | "مئتي" => {
            ArabicWord::Hundreds(200)
        }
        "الف" | "مليون" | "مليار" => ArabicWord::Counted(arabic_scale(word)?),
        "الفان" | "الفين" | "مليونان" | "مليونين" | "ملياران" | "مليارين" =>
        {
            // The dual ending, ان or ين, is two letters of two bytes.
            ArabicWord::Counted(2 * arabic_scale(&word[..word.len() - 4])?)
        }
        _ => ArabicWord::Scale(arabic_scale(word)?),
    })
}

/// The values of the numbers an Arabic text spells out. `words` are its folded words, each as
/// the forms it may take without its clitics, itself first (`stems`): the first word of a
/// number may carry them (وأربعين, بالأربعين); the others are the word itself or و and it
/// ("خمسة وعشرين", "مائة وخمسون", "ثلاثة آلاف وخمسمائة").
pub fn arabic_values(words: &[Vec<String>]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        // A scale word alone is no number (آلاف: "thousands").
        let head = |form: &String| arabic_word(form).filter(|a| !matches!(a, ArabicWord::Scale(_)));
        // في المائة, بالمئة: per cent, not a hundred.
        let percent = ["المائه", "المئه", "بالمائه", "بالمئه"].contains(&words[i][0].as_str());
        let Some(first) = words[i].iter().find_map(head).filter(|_| !percent) else {
            i += 1;
            continue;
        };
        let (mut total, mut current) = (0, 0);
        let mut k = i;
        loop {
            let word = if k == i {
                Some((first, false))
            } else {
                words.get(k).and_then(|forms| {
                    let w = forms[0].as_str();
                    arabic_word(w)
                        .map(|a| (a, false))
                        .or_else(|| w.strip_prefix('و').and_then(arabic_word).map(|a| (a, true)))
                })
            };
            let Some((word, conjoined)) = word else { break };
            let start = k == i || (conjoined && current == 0 && total > 0);
            let units = current % 100;
            match word {
                ArabicWord::Unit(v) | ArabicWord::Tens(v) | ArabicWord::Hundreds(v) if start => {
                    current = v
                }
                ArabicWord::Counted(v) if k == i => total = v,
                // ثلاثة عشر, إحدى عشرة, مائة وخمسة عشر
                ArabicWord::Unit(10) if !conjoined && (1..10).contains(&units) => current += 10,
                // ثلاث مائة
                ArabicWord::Hundreds(100) if !conjoined && (3..10).contains(&current) => {
                    current *= 100
                }
                // خمسة وعشرون
                ArabicWord::Tens(v) if conjoined && (1..10).contains(&units) => current += v,
                // مائة وخمسون
                ArabicWord::Unit(v) | ArabicWord::Tens(v)
                    if conjoined && current > 0 && units == 0 =>
                {
                    current += v
                }
                ArabicWord::Scale(s) | ArabicWord::Counted(s) if !conjoined && current > 0 => {
                    out.push(numbers::whole(current));
                    total += current * s;
                    current = 0;
                }
                _ => break,
            }
            k += 1;
        }
        // A unit alone is left out: الاثنين and الأحد are weekdays more often than "two" and
        // "one" (on NTREX, الاثنين was the one support a number found in another article).
        if k == i || (k == i + 1 && matches!(first, ArabicWord::Unit(_))) {
            i += 1;
            continue;
        }
        out.push(numbers::whole(total + current));
        i = k;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faithful::{Evidence, Item, ItemKind};

    fn english(text: &str) -> Vec<(String, Vec<i128>)> {
        english_spelled(text)
            .into_iter()
            .map(|n| (n.text, n.values.iter().map(|v| v / 1000).collect()))
            .collect()
    }

    #[test]
    fn the_words_banned_after_an_invented_number_are_the_words_read_as_numbers() {
        let words: Vec<&str> = english_number_words().collect();
        assert_eq!(words.len(), 17);
        for (word, value) in words.iter().zip((11..=19).chain((20..=90).step_by(10))) {
            let sentence = format!("{} prisoners were freed.", word.to_uppercase());
            assert_eq!(english(&sentence).len(), 1, "{sentence}");
            assert_eq!(
                english(&format!("{word} were freed")),
                [(word.to_string(), vec![value])]
            );
        }
    }

    #[test]
    fn english_numbers_in_words() {
        for (text, found, values) in [
            ("Forty prisoners", "Forty", &[40][..]),
            (
                "twenty-five thousand people",
                "twenty-five thousand",
                &[25_000, 25],
            ),
            ("twenty five", "twenty five", &[25]),
            ("three hundred", "three hundred", &[300]),
            ("a thousand", "thousand", &[1_000]),
            ("one million", "one million", &[1_000_000]),
            ("forty-five thousand", "forty-five thousand", &[45_000, 45]),
            ("two hundred and fifty", "two hundred and fifty", &[250]),
            ("two thousand and five", "two thousand and five", &[2_005]),
            ("fifteen", "fifteen", &[15]),
            ("a forty-year-old man", "forty", &[40]),
        ] {
            assert_eq!(
                english(text),
                [(found.to_string(), values.to_vec())],
                "{text}"
            );
        }
        for text in [
            "one of the ministers",
            "two countries",
            "ten",
            "hundreds of people",
            "thousands fled",
            "the twenty-first century",
            "a dozen",
        ] {
            assert_eq!(english(text), [], "{text}");
        }
    }

    #[test]
    fn arabic_numbers_in_words() {
        for (text, value) in [
            ("أربعين", 40),
            ("وأربعين", 40),
            ("عشرون", 20),
            ("ثلاثة عشر", 13),
            ("ثلاث عشرة", 13),
            ("أحد عشر", 11),
            ("إحدى عشرة", 11),
            ("اثنا عشر", 12),
            ("اثني عشر", 12),
            ("اثنتا عشرة", 12),
            ("خمسة وعشرون", 25),
            ("خمس وعشرين ألف", 25_000),
            ("مائة", 100),
            ("مئة", 100),
            ("مائتين", 200),
            ("ثلاثمائة", 300),
            ("تسعمئة", 900),
            ("ثلاث مائة", 300),
            ("مائة وخمسون", 150),
            ("ثلاثة آلاف", 3_000),
            ("عشرة ملايين", 10_000_000),
            ("ثلاثة آلاف وخمسمائة", 3_500),
            ("ألف", 1_000),
            ("ألفين", 2_000),
        ] {
            let forms: Vec<Vec<String>> = crate::document::fold_for_matching(text)
                .split(' ')
                .map(|w| vec![w.to_string(), w.trim_start_matches('و').to_string()])
                .collect();
            let values: Vec<i128> = arabic_values(&forms).iter().map(|v| v / 1000).collect();
            assert!(values.contains(&value), "{text}: {values:?}");
        }
        for vague in ["الاف", "عشرات", "بالمائه"] {
            assert_eq!(arabic_values(&[vec![vague.to_string()]]), [], "{vague}");
        }
    }

    #[test]
    fn spelled_out_numbers_are_checked_against_both_scripts() {
        let unsupported = |arabic: &str, sentence: &str| {
            let check = Evidence::from_arabic(arabic).check(sentence);
            let numbers = |items: &[Item]| items.iter().any(|i| i.kind == ItemKind::Number);
            assert!(
                numbers(&check.supported) || numbers(&check.unsupported),
                "{sentence}"
            );
            !check.passes()
        };
        for arabic in [
            "أفرج عن ٤٠ سجينا",
            "أفرج عن 40 سجينا",
            "أفرج عن أربعين سجينا",
        ] {
            assert!(
                !unsupported(arabic, "Forty prisoners were freed."),
                "{arabic}"
            );
        }
        for (arabic, sentence) in [
            ("قتل خمسة وأربعين شخصا", "forty prisoners were freed."),
            ("خرج 25 ألف متظاهر", "twenty-five thousand marched."),
            (
                "خرج خمسة وعشرين ألف متظاهر",
                "twenty-five thousand marched.",
            ),
            ("وصل ثلاثمائة لاجئ", "three hundred refugees arrived."),
            ("وصل 300 لاجئ", "three hundred refugees arrived."),
            ("قتل خمسة عشر شخصا", "fifteen people died."),
        ] {
            let expected = sentence.starts_with("forty");
            assert_eq!(
                unsupported(arabic, sentence),
                expected,
                "{sentence}: {arabic}"
            );
        }
        let evidence = Evidence::from_arabic("أفرج عن سجناء");
        let check = evidence.check("forty prisoners were freed.");
        assert_eq!(check.banned_words(), ["forty"]);
        for sentence in [
            "One of the ministers resigned.",
            "The two countries met.",
            "Hundreds of people and thousands more fled.",
        ] {
            let check = evidence.check(sentence);
            assert!(check.passes() && check.supported.is_empty(), "{sentence}");
        }
        for (english, sentence) in [
            ("40 prisoners were freed.", "Forty were freed."),
            ("Forty prisoners were freed.", "40 were freed."),
        ] {
            let evidence = Evidence::from_arabic("أفرج عن سجناء").with_english(english);
            assert!(evidence.check(sentence).passes(), "{sentence}");
        }
    }
}
