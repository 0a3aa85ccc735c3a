//! Sentence segmentation of one (normalized) paragraph, and splitting of over-long sentences.

use super::normalize::{is_arabic_letter, is_arabic_mark};

/// Signs that end a sentence. The Arabic semicolon `؛` is deliberately not one: in news text it
/// joins clauses of one sentence (6 of the 7 in NTREX sit mid-sentence), so it is only used by
/// [`split_long`] as a clause boundary.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '؟' | '…' | '۔')
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
const LATIN_ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "no", "inc", "ltd", "co", "corp",
    "gen", "gov", "sen", "rep", "lt", "col", "capt", "sgt", "mt", "ft", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "dept", "est", "fig", "vol",
    "pp", "cf", "al", "etc",
];

/// Splits a normalized paragraph into sentences, each keeping its terminator and any closing
/// quotes or brackets after it.
///
/// A terminator ends a sentence only when whitespace (or the end) follows it, so decimals
/// (`3.5`), times (`10.30`), `U.S.`-style abbreviations inside words, URLs and e-mail addresses
/// never split. Other exceptions: a period after a single letter (`د.`, `J.`) or a dotted or
/// listed Latin abbreviation when Latin text goes on (`U.S. Army`), a list number at the start
/// (`1.`), and the double period `..` that Arabic headlines use as a separator. A fragment with
/// no letter or digit (the stray `.` in `سوريا. .`) is attached to the sentence before it.
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
        if !fragment.chars().any(char::is_alphanumeric) {
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

/// Decides whether the terminator run `chars[i..j]` ends the sentence that began at byte
/// `start`.
fn ends_sentence(chars: &[(usize, char)], start: usize, i: usize, j: usize) -> bool {
    let word = word_before(chars, start, i);
    match chars.get(j) {
        None => return true,
        Some(&(_, next)) if !next.is_whitespace() => return missing_space(chars, word, i, j),
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
    let first_word = chars[..i]
        .iter()
        .all(|&(pos, c)| pos < start || !c.is_whitespace());
    !(is_arabic_abbreviation(&word)
        || (is_latin_abbreviation(&word) && next.is_some_and(|c| !is_arabic_letter(c)))
        || (first_word
            && !word.is_empty()
            && word.len() <= 3
            && word.chars().all(|c| c.is_numeric())))
}

/// `قال.وأضاف`: scraped text sometimes loses the space after a period between two Arabic
/// words. Single letters are excluded because `ق.م` (BC) and similar abbreviations look alike.
fn missing_space(chars: &[(usize, char)], word: String, i: usize, j: usize) -> bool {
    let run_is_one_sign = j == i + 1;
    let before_ok = word.chars().count() >= 2 && word.chars().all(is_arabic_letter);
    let after: String = chars[j..]
        .iter()
        .map(|&(_, c)| c)
        .take_while(|&c| !c.is_whitespace() && !is_terminator(c))
        .collect();
    let after_ok = after.chars().count() >= 2 && after.chars().all(is_arabic_letter);
    run_is_one_sign && before_ok && after_ok
}

/// The word that ends at the terminator at `i`, without opening quotes or brackets, and
/// never reaching back before the sentence start.
fn word_before(chars: &[(usize, char)], start: usize, i: usize) -> String {
    let mut k = i;
    while k > 0 && chars[k - 1].0 >= start && !chars[k - 1].1.is_whitespace() {
        k -= 1;
    }
    chars[k..i]
        .iter()
        .map(|&(_, c)| c)
        .skip_while(|&c| is_opener(c))
        .collect()
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

/// Picks the candidate byte offset nearest the middle of `text` (measured in characters)
/// among those that leave text with a letter or digit on both sides.
fn nearest_middle(text: &str, candidates: impl Iterator<Item = usize>) -> Option<usize> {
    let total = text.chars().count();
    let has_content = |s: &str| s.chars().any(char::is_alphanumeric);
    candidates
        .filter(|&cut| cut > 0 && cut < text.len())
        .filter(|&cut| has_content(&text[..cut]) && has_content(&text[cut..]))
        .min_by_key(|&cut| {
            (text[..cut].chars().count() as isize * 2 - total as isize).unsigned_abs()
        })
}

fn clause_cut(text: &str) -> Option<usize> {
    let mut chars = text.char_indices().peekable();
    let mut candidates = Vec::new();
    while let Some((pos, c)) = chars.next() {
        let followed_by_space = chars.peek().is_some_and(|&(_, n)| n.is_whitespace());
        if matches!(c, '،' | '؛') || (matches!(c, ',' | ';') && followed_by_space) {
            candidates.push(pos + c.len_utf8());
        }
    }
    nearest_middle(text, candidates.into_iter())
}

fn space_cut(text: &str) -> Option<usize> {
    nearest_middle(
        text,
        text.char_indices()
            .filter(|&(_, c)| c.is_whitespace())
            .map(|(pos, _)| pos),
    )
}

/// Cuts a single long word in the middle, never between a letter and its combining marks.
fn char_cut(text: &str) -> Option<usize> {
    let boundaries: Vec<usize> = text
        .char_indices()
        .filter(|&(_, c)| !is_arabic_mark(c) && !('\u{0300}'..='\u{036F}').contains(&c))
        .map(|(pos, _)| pos)
        .filter(|&pos| pos > 0)
        .collect();
    let total = text.chars().count();
    boundaries.into_iter().min_by_key(|&cut| {
        (text[..cut].chars().count() as isize * 2 - total as isize).unsigned_abs()
    })
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
            split_sentences("قال \"لن نستسلم!\" ثم غادر. “انتهى.” وبعد"),
            ["قال \"لن نستسلم!\"", "ثم غادر.", "“انتهى.”", "وبعد"]
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
    }
}
