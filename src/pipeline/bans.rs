//! The token sequences a regenerated summary sentence must not write (transformers'
//! `bad_words_ids` semantics: the last token of a sequence is banned where the others end the
//! reply so far). A word is banned in three ways, because each alone leaks:
//! - as the tokenizer encodes it, after a space or not, capitalised or not;
//! - along the exact tokens the model wrote it with: a model does not spell a word the way
//!   `encode()` does (" Taliban" is one piece to the tokenizer, " T" + "aliban" to the model
//!   that wrote it), and a ban of the encoded form misses the path the model takes; a long
//!   invented name's first two tokens too, since it comes back respelled;
//! - for places, every listed place the article does not name, at once: a small model denied
//!   one invented country invents the next ("Italy and France", then "Germany", "Croatia");
//!   for numbers, every digit and number word once one number was invented, and for dates
//!   every month and weekday the article does not name, for the same reason.

use std::ops::Range;

use crate::faithful::number_words::english_number_words;
use crate::faithful::numbers::DIGIT_ZEROS;
use crate::tokenizer::gguf::GgufTokenizer;
use crate::Result;

/// The sequences that write `words` as the tokenizer encodes them: after a space or not,
/// capitalised or lower-case.
pub(super) fn encoded_forms(tokenizer: &GgufTokenizer, words: &[String]) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for word in words {
        let lower = word.to_lowercase();
        for form in [word.clone(), capitalised(word), lower] {
            push_spellings(tokenizer, &form, &mut out)?;
        }
    }
    Ok(out)
}

/// The sequences that write `names` (of places, months, weekdays) capitalised, after a space or
/// not. Only capitalised: the check counts them only then ("the world", "a turkey" are no
/// places, "may" is no month).
pub(super) fn capitalised_forms(
    tokenizer: &GgufTokenizer,
    names: &[String],
) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for name in names {
        push_spellings(tokenizer, &capitalised(name), &mut out)?;
    }
    Ok(out)
}

/// The digits of every script and the English number words, each as the tokenizer writes it
/// alone: a small model denied an invented number writes the next one ("40", then "48",
/// "490"), or the same in other digits or words ("٢٠١٣", "forty"), so a regeneration after an
/// unsupported number writes none.
pub(super) fn number_forms(tokenizer: &GgufTokenizer) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for zero in DIGIT_ZEROS {
        for digit in (0..10).filter_map(|d| char::from_u32(zero as u32 + d)) {
            push_spellings(tokenizer, &digit.to_string(), &mut out)?;
        }
    }
    let words: Vec<String> = english_number_words().map(String::from).collect();
    for ids in encoded_forms(tokenizer, &words)? {
        if !out.contains(&ids) {
            out.push(ids);
        }
    }
    Ok(out)
}

/// Every run of `n` consecutive tokens of `tokens` (all of them when there are fewer).
pub(super) fn runs_of(tokens: &[u32], n: usize) -> Vec<Vec<u32>> {
    if tokens.len() <= n {
        return vec![tokens.to_vec()]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect();
    }
    tokens.windows(n).map(<[u32]>::to_vec).collect()
}

fn push_spellings(tokenizer: &GgufTokenizer, form: &str, out: &mut Vec<Vec<u32>>) -> Result<()> {
    for spelling in [form.to_string(), format!(" {form}")] {
        let ids = tokenizer.encode(&spelling, false)?;
        if !ids.is_empty() && !out.contains(&ids) {
            out.push(ids);
        }
    }
    Ok(())
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The token sequences with which the reply `tokens` wrote each of `words`, wherever it stands
/// alone, and for a name of three tokens or more, its first two.
pub(super) fn generated_paths(
    tokenizer: &GgufTokenizer,
    tokens: &[u32],
    words: &[String],
) -> Result<Vec<Vec<u32>>> {
    if tokens.is_empty() || words.is_empty() {
        return Ok(Vec::new());
    }
    // Where each token's text ends in the reply's text, decoded once for all the words. A token
    // that ends inside a character (byte-level pieces of one letter) decodes to a replacement
    // character for now, which makes its end approximate; the words banned here are Latin
    // names and numerals.
    let mut ends = Vec::with_capacity(tokens.len());
    for i in 1..=tokens.len() {
        ends.push(tokenizer.decode(&tokens[..i])?.len());
    }
    let text = tokenizer.decode(tokens)?;
    Ok(words
        .iter()
        .filter(|word| !word.is_empty())
        .flat_map(|word| paths(tokens, token_spans(&text, &ends, word), word))
        .collect())
}

/// The token sequences `spans` of `tokens` cover and, for a name, the first two tokens of a
/// longer one: an invented name comes back spelled another way ("Sergezir", "Sergeezir",
/// "Sergezier") that the model starts the same way.
fn paths(
    tokens: &[u32],
    spans: impl IntoIterator<Item = Range<usize>>,
    word: &str,
) -> Vec<Vec<u32>> {
    let name = word.starts_with(char::is_alphabetic);
    let mut out: Vec<Vec<u32>> = Vec::new();
    for span in spans {
        let path = &tokens[span];
        let stem = (name && path.len() >= 3).then(|| &path[..2]);
        for ids in std::iter::once(path).chain(stem) {
            if !out.iter().any(|o| o == ids) {
                out.push(ids.to_vec());
            }
        }
    }
    out
}

/// The ranges of tokens (whose texts end at `ends` in `text`) that write each occurrence of
/// `word` standing alone (not inside a longer word): from the token its first byte is in to
/// the token its last byte is in.
fn token_spans(text: &str, ends: &[usize], word: &str) -> Vec<Range<usize>> {
    let is_word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = Vec::new();
    for (start, _) in text.match_indices(word) {
        let end = start + word.len();
        if is_word_char(text[..start].chars().next_back())
            || is_word_char(text[end..].chars().next())
        {
            continue;
        }
        let first = ends.partition_point(|&e| e <= start);
        let last = ends.partition_point(|&e| e < end);
        if last < ends.len() && first <= last {
            out.push(first..last + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ends of pieces written one after another.
    fn ends(pieces: &[&str]) -> (String, Vec<usize>) {
        let mut text = String::new();
        let mut ends = Vec::new();
        for p in pieces {
            text.push_str(p);
            ends.push(text.len());
        }
        (text, ends)
    }

    fn spans(text: &str, ends: &[usize], word: &str) -> Vec<(usize, usize)> {
        token_spans(text, ends, word)
            .into_iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    #[test]
    fn a_word_maps_to_the_tokens_that_wrote_it() {
        // The model's own spelling: " T" + "aliban", where encode() gives " Taliban".
        let (text, e) = ends(&[
            "The", " Afghan", " T", "aliban", " met", " the", " Taliban", ".",
        ]);
        assert_eq!(spans(&text, &e, "Taliban"), [(2, 4), (6, 7)]);
        assert_eq!(spans(&text, &e, "Afghan"), [(1, 2)]);
        // Not inside another word.
        assert!(token_spans(&text, &e, "Tali").is_empty());
        assert!(token_spans(&text, &e, "Kabul").is_empty());
    }

    #[test]
    fn a_token_shared_with_punctuation_or_digits_is_part_of_the_path() {
        let (text, e) = ends(&[" (", "K", "abul", ")", " in", " ", "1", "9", "6", "8", "."]);
        assert_eq!(spans(&text, &e, "Kabul"), [(1, 3)]);
        assert_eq!(spans(&text, &e, "1968"), [(6, 10)]);
        let (text, e) = ends(&[" in", " (Kab", "ul)"]);
        assert_eq!(spans(&text, &e, "Kabul"), [(1, 3)]);
    }

    #[test]
    fn a_long_name_is_banned_by_its_first_two_tokens_too() {
        let tokens = [10, 11, 12, 13, 14, 15];
        assert_eq!(
            paths(&tokens, [1..4, 1..4], "Sergezir"),
            [vec![11, 12, 13], vec![11, 12]]
        );
        assert_eq!(paths(&tokens, Some(1..3), "Taliban"), [vec![11, 12]]);
        // A number's digits are banned on their own.
        assert_eq!(paths(&tokens, Some(2..6), "1968"), [vec![12, 13, 14, 15]]);
    }

    #[test]
    fn runs_cover_every_window() {
        assert_eq!(
            runs_of(&[1, 2, 3, 4, 5], 4),
            [vec![1, 2, 3, 4], vec![2, 3, 4, 5]]
        );
        assert_eq!(runs_of(&[1, 2], 4), [vec![1, 2]]);
        assert!(runs_of(&[], 4).is_empty());
    }

    #[test]
    fn capitalised_keeps_the_rest_of_the_word() {
        assert_eq!(capitalised("world"), "World");
        assert_eq!(capitalised("North Macedonia"), "North Macedonia");
        assert_eq!(capitalised(""), "");
    }
}
