//! Sentence segmentation of one (normalized) paragraph, and splitting of over-long sentences.

use super::normalize::{is_arabic_letter, is_arabic_mark};

/// Signs that end a sentence, the Arabic semicolon `؛` among them as the list asks: it
/// separates complete clauses, and a translation model handles each clause well on its own.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '؟' | '؛' | '…' | '۔')
}

/// Signs that close a quotation or bracket; right after a terminator they stay with its
/// sentence. `“` is included because scraped Arabic text often uses it as a closing quote.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | '»' | '›' | ')' | ']' | '}' | '“'
    )
}

fn is_opener(c: char) -> bool {
    matches!(c, '"' | '\'' | '“' | '‘' | '«' | '‹' | '(' | '[' | '{')
}

/// Latin abbreviations that are followed by a period mid-sentence.
#[rustfmt::skip]
const LATIN_ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "no", "inc", "ltd", "co", "corp",
    "gen", "gov", "sen", "rep", "lt", "col", "capt", "sgt", "mt", "ft", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "dept", "est", "fig", "vol",
    "pp", "cf", "al", "etc",
];

/// `"...؟" تساءلت.`: a short tail after a quotation that ends in a terminator says who spoke,
/// and reads (and translates) as part of the quoted sentence.
const MAX_ATTRIBUTION_WORDS: usize = 4;

/// Plain narration of at most [`MAX_ATTRIBUTION_WORDS`] words; a tail that opens or closes a
/// quote, or ends with `!` or `?`, is more speech (`"...؟" بحقك!`), not an attribution.
fn is_attribution(fragment: &str) -> bool {
    fragment.split(' ').count() <= MAX_ATTRIBUTION_WORDS
        && !fragment.starts_with(is_opener)
        && !fragment.ends_with(|c| is_closer(c) || matches!(c, '!' | '?' | '؟' | '…'))
}

/// Splits a normalized paragraph into sentences, each keeping its terminator and any closing
/// quotes or brackets after it.
///
/// A terminator ends a sentence only when whitespace (or the end) follows it, so decimals
/// (`3.5`), times (`10.30`), `U.S.`-style abbreviations inside words, URLs and e-mail addresses
/// never split. Other exceptions: a period after a single letter (`د.`, `J.`) or a dotted or
/// listed Latin abbreviation when Latin text goes on (`U.S. Army`), a list number at the start
/// (`1.`), and the double period `..` that Arabic headlines use as a separator. A fragment with
/// no letter or digit (the stray `.` in `سوريا. .`), or a short attribution after a closing quote
/// (`"...؟" تساءلت.`), is attached to the sentence before it.
pub fn split_sentences(text: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut fragments: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is_terminator(chars[i].1) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
            j += 1;
        }
        if ends_sentence(&chars, start, i, j) {
            let end = chars.get(j).map_or(text.len(), |&(pos, _)| pos);
            fragments.push(text[start..end].trim());
            start = end;
        }
        i = j;
    }
    fragments.push(text[start..].trim());

    let mut sentences: Vec<String> = Vec::new();
    let mut dangling = String::new();
    for fragment in fragments.into_iter().filter(|f| !f.is_empty()) {
        let after_quote = sentences
            .last()
            .is_some_and(|last| last.ends_with(['"', '”', '»']));
        let attribution = after_quote && is_attribution(fragment);
        if !fragment.chars().any(char::is_alphanumeric) || attribution {
            match sentences.last_mut() {
                Some(last) => {
                    last.push(' ');
                    last.push_str(fragment);
                }
                None => {
                    dangling.push_str(fragment);
                    dangling.push(' ');
                }
            }
        } else {
            sentences.push(std::mem::take(&mut dangling) + fragment);
        }
    }
    if !dangling.is_empty() {
        sentences.push(dangling.trim_end().to_string());
    }
    sentences
}

/// Words longer than this are never abbreviations or list numbers, so scans around a
/// terminator stop there; this keeps segmentation linear on text without spaces.
const MAX_WORD_SCAN: usize = 32;

/// Decides whether the terminator run `chars[i..j]` ends the sentence that began at byte
/// `start`.
fn ends_sentence(chars: &[(usize, char)], start: usize, i: usize, j: usize) -> bool {
    let (word, first_word) = word_before(chars, start, i);
    match chars.get(j) {
        None => return true,
        Some(&(_, next)) if !next.is_whitespace() => return missing_space(chars, &word, i, j),
        _ => {}
    }
    let run: String = chars[i..j]
        .iter()
        .map(|&(_, c)| c)
        .filter(|&c| is_terminator(c))
        .collect();
    if run == ".." {
        return false;
    }
    if run != "." {
        return true;
    }
    let next = next_word_start(chars, j);
    let list_number =
        first_word && !word.is_empty() && word.len() <= 3 && word.chars().all(char::is_numeric);
    !(is_arabic_abbreviation(&word)
        || (is_latin_abbreviation(&word) && next.is_some_and(|c| !is_arabic_letter(c)))
        || list_number)
}

/// `قال.وأضاف`: scraped text sometimes loses the space after a period between two Arabic
/// words. Single letters are excluded because `ق.م` (BC) and similar abbreviations look alike.
fn missing_space(chars: &[(usize, char)], word: &str, i: usize, j: usize) -> bool {
    let run_is_one_sign = j == i + 1;
    let before_ok = word.chars().count() >= 2 && word.chars().all(is_arabic_letter);
    let after: String = chars[j..]
        .iter()
        .map(|&(_, c)| c)
        .take_while(|&c| !c.is_whitespace() && !is_terminator(c))
        .take(MAX_WORD_SCAN)
        .collect();
    let after_ok = after.chars().count() >= 2 && after.chars().all(is_arabic_letter);
    run_is_one_sign && before_ok && after_ok
}

/// The word that ends at the terminator at `i` (at most [`MAX_WORD_SCAN`] characters of it),
/// without opening quotes or brackets and never reaching back before the sentence start; and
/// whether it is the sentence's first word.
fn word_before(chars: &[(usize, char)], start: usize, i: usize) -> (String, bool) {
    let in_sentence = |k: usize| k > 0 && chars[k - 1].0 >= start;
    let mut k = i;
    while in_sentence(k) && !chars[k - 1].1.is_whitespace() && i - k < MAX_WORD_SCAN {
        k -= 1;
    }
    let word = chars[k..i]
        .iter()
        .map(|&(_, c)| c)
        .skip_while(|&c| is_opener(c))
        .collect();
    let mut w = k;
    while in_sentence(w) && chars[w - 1].1.is_whitespace() {
        w -= 1;
    }
    // A word cut short by the scan cap leaves `w` inside the sentence, so it is not first.
    (word, !in_sentence(w))
}

fn next_word_start(chars: &[(usize, char)], j: usize) -> Option<char> {
    chars[j..]
        .iter()
        .map(|&(_, c)| c)
        .find(|&c| !c.is_whitespace() && !is_opener(c))
}

/// `د.` (doctor), `م.` (engineer), `ق.م` (BC), `ص.ب` (P.O. box): single Arabic letters before a
/// period are abbreviations; no Arabic word is one letter long on its own.
fn is_arabic_abbreviation(word: &str) -> bool {
    !word.is_empty()
        && word.split('.').all(|part| {
            part.chars().filter(|&c| !is_arabic_mark(c)).count() == 1
                && part
                    .chars()
                    .all(|c| is_arabic_letter(c) || is_arabic_mark(c))
        })
}

/// `J`, `U.S`, `e.g`, `a.m`, `Mr`: only an abbreviation while Latin text continues after it,
/// since in an Arabic article `... لحرف u. وقال` ends a sentence.
fn is_latin_abbreviation(word: &str) -> bool {
    let latin = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphabetic());
    if word.contains('.') {
        return word.split('.').all(|part| part.len() == 1 && latin(part));
    }
    latin(word)
        && (word.len() == 1 || LATIN_ABBREVIATIONS.contains(&word.to_ascii_lowercase().as_str()))
}

/// Splits `sentence` into parts of at most `max_tokens` tokens as measured by `count`.
///
/// A sentence that fits is returned whole and unchanged. Otherwise it is cut at the clause
/// boundary (`،`, `؛`, or `,`/`;` followed by a space) nearest its middle, then each half is
/// split again as needed; without clause boundaries it is cut at the space nearest the middle,
/// and a single over-long word is cut between characters. Parts are trimmed and in order:
/// joining them with spaces gives back the sentence up to whitespace, so no text is lost. A
/// single character that is over the limit on its own is returned as it is.
pub fn split_long(sentence: &str, max_tokens: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    if count(sentence) <= max_tokens {
        return vec![sentence.to_string()];
    }
    let mut parts = Vec::new();
    split_into(sentence.trim(), max_tokens, count, &mut parts);
    parts
}

fn split_into(
    text: &str,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
    parts: &mut Vec<String>,
) {
    if text.is_empty() {
        return;
    }
    if count(text) <= max_tokens {
        parts.push(text.to_string());
        return;
    }
    let cut = clause_cut(text)
        .or_else(|| space_cut(text))
        .or_else(|| char_cut(text));
    match cut {
        Some(cut) => {
            split_into(text[..cut].trim_end(), max_tokens, count, parts);
            split_into(text[cut..].trim_start(), max_tokens, count, parts);
        }
        None => parts.push(text.to_string()),
    }
}

/// Picks, among the char indices where `is_cut` holds, the one nearest the middle of `text`
/// that leaves a letter or digit on both sides; returns its byte offset. Linear in the text, as
/// a scraped "word" can be a whole paragraph without spaces.
fn nearest_middle(text: &str, is_cut: impl Fn(char, Option<char>) -> bool) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let first = chars.iter().position(|&(_, c)| c.is_alphanumeric())?;
    let last = chars.iter().rposition(|&(_, c)| c.is_alphanumeric())?;
    (first + 1..=last)
        .filter(|&k| is_cut(chars[k].1, chars.get(k + 1).map(|&(_, c)| c)))
        .min_by_key(|&k| (k * 2).abs_diff(chars.len()))
        .map(|k| chars[k].0)
}

/// Cuts after a clause sign: `،` and `؛` anywhere, `,` and `;` only before a space, since
/// `1,000` is a number.
fn clause_cut(text: &str) -> Option<usize> {
    let cut = nearest_middle(text, |c, next| {
        matches!(c, '،' | '؛') || (matches!(c, ',' | ';') && next.is_some_and(char::is_whitespace))
    })?;
    Some(cut + text[cut..].chars().next().map_or(0, char::len_utf8))
}

fn space_cut(text: &str) -> Option<usize> {
    nearest_middle(text, |c, _| c.is_whitespace())
}

/// Cuts a single long word in the middle, never between a letter and its combining marks.
fn char_cut(text: &str) -> Option<usize> {
    nearest_middle(text, |c, _| {
        !is_arabic_mark(c) && !('\u{0300}'..='\u{036F}').contains(&c)
    })
}

/// Groups paragraphs into windows that `fits` accepts, joined by `separator`, in order. A
/// paragraph that does not fit on its own is split into sentences, and each sentence by
/// `cut_sentence` (which may return it whole); nothing is dropped.
pub fn pack_windows<E>(
    paragraphs: &[String],
    separator: &str,
    fits: &dyn Fn(&str) -> Result<bool, E>,
    cut_sentence: &dyn Fn(&str) -> Vec<String>,
) -> Result<Vec<String>, E> {
    let mut units: Vec<String> = Vec::new();
    for p in paragraphs {
        if fits(p)? {
            units.push(p.clone());
        } else {
            for sentence in split_sentences(p) {
                units.extend(cut_sentence(&sentence));
            }
        }
    }
    let mut windows: Vec<String> = Vec::new();
    let mut current = String::new();
    for unit in units {
        let candidate = if current.is_empty() {
            unit.clone()
        } else {
            format!("{current}{separator}{unit}")
        };
        if current.is_empty() || fits(&candidate)? {
            current = candidate;
        } else {
            windows.push(std::mem::replace(&mut current, unit));
        }
    }
    if !current.is_empty() {
        windows.push(current);
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_terminators_keeping_them() {
        assert_eq!(
            split_sentences("قال هذا. ثم ذهب! هل عاد؟ نعم"),
            ["قال هذا.", "ثم ذهب!", "هل عاد؟", "نعم"]
        );
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        assert_eq!(
            split_sentences("قال \"لن نستسلم!\" ثم غادر إلى مقر الحزب. “انتهى.” وبعد"),
            [
                "قال \"لن نستسلم!\"",
                "ثم غادر إلى مقر الحزب.",
                "“انتهى.” وبعد"
            ]
        );
        assert_eq!(
            split_sentences("\"هل يعتقدون أنني أحصل على خصم؟\" تساءلت. ثم غادرت القاعة مسرعة."),
            [
                "\"هل يعتقدون أنني أحصل على خصم؟\" تساءلت.",
                "ثم غادرت القاعة مسرعة."
            ]
        );
    }

    #[test]
    fn runs_of_terminators_are_one_boundary() {
        assert_eq!(split_sentences("حقا?! نعم... لا"), ["حقا?!", "نعم...", "لا"]);
    }

    #[test]
    fn abbreviations() {
        assert_eq!(
            split_sentences("قال د. محمد إن الوضع جيد."),
            ["قال د. محمد إن الوضع جيد."]
        );
        assert_eq!(
            split_sentences("مسؤول في U.S. Army قال ذلك."),
            ["مسؤول في U.S. Army قال ذلك."]
        );
        assert_eq!(
            split_sentences("نطق حرف u. وقال آخرون."),
            ["نطق حرف u.", "وقال آخرون."]
        );
        assert_eq!(split_sentences("1. البند الأول"), ["1. البند الأول"]);
    }

    #[test]
    fn pathological_lines_stay_fast() {
        let abbreviations = "د. ".repeat(50_000);
        assert_eq!(split_sentences(&abbreviations).len(), 1);
        let unspaced = "كلمة.".repeat(50_000);
        assert_eq!(split_sentences(&unspaced).len(), 50_000);
    }

    #[test]
    fn missing_space_after_period() {
        assert_eq!(
            split_sentences("انتهى الاجتماع.وبدأ المؤتمر"),
            ["انتهى الاجتماع.", "وبدأ المؤتمر"]
        );
        assert_eq!(
            split_sentences("عام 500 ق.م تقريبا"),
            ["عام 500 ق.م تقريبا"]
        );
    }

    #[test]
    fn split_long_prefers_clauses() {
        let words = |s: &str| s.split_whitespace().count();
        let parts = split_long("أ ب ج، د ه و، ز ح ط", 4, &words);
        assert_eq!(parts, ["أ ب ج،", "د ه و،", "ز ح ط"]);
    }

    #[test]
    fn split_long_falls_back_to_characters() {
        let chars = |s: &str| s.chars().count();
        let parts = split_long("abcdef", 2, &chars);
        assert!(parts.iter().all(|p| chars(p) <= 2), "{parts:?}");
        assert_eq!(parts.concat(), "abcdef");
        assert_eq!(split_long("x", 0, &chars), ["x"]);
        assert_eq!(
            split_long("1,000,000 دولار", 2, &chars).concat(),
            "1,000,000دولار"
        );
        let huge = "كلمة".repeat(50_000);
        let parts = split_long(&huge, 512, &chars);
        assert!(parts.iter().all(|p| chars(p) <= 512));
        assert_eq!(parts.concat(), huge);
    }
}
