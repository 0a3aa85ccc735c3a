//! Numbers as values, so that "1,500", "1500", "١٥٠٠" and "1.5 thousand" compare equal.

/// The zeros of the decimal digits a model may write numbers in: ASCII, Arabic-Indic, Persian,
/// N'Ko, the Indic scripts, Thai, Lao, Tibetan, Myanmar, Khmer, Mongolian and full-width. A
/// small model denied ASCII digits writes "१" or "٢٠١٣" in an English sentence; those are
/// numbers the check must read and a regeneration must not write.
pub const DIGIT_ZEROS: [char; 20] = [
    '0', '\u{0660}', '\u{06F0}', '\u{07C0}', '\u{0966}', '\u{09E6}', '\u{0A66}', '\u{0AE6}',
    '\u{0B66}', '\u{0BE6}', '\u{0C66}', '\u{0CE6}', '\u{0D66}', '\u{0E50}', '\u{0ED0}', '\u{0F20}',
    '\u{1040}', '\u{17E0}', '\u{1810}', '\u{FF10}',
];

/// Maps the digits of every script in [`DIGIT_ZEROS`] and the Arabic decimal and thousands
/// separators to ASCII, so that numerals read as in English.
pub fn ascii_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{066B}' => '.',
            '\u{066C}' => ',',
            c => DIGIT_ZEROS
                .iter()
                .find_map(|&zero| {
                    let offset = (c as u32).checked_sub(zero as u32)?;
                    (offset < 10).then(|| char::from(b'0' + offset as u8))
                })
                .unwrap_or(c),
        })
        .collect()
}

/// A number's value in thousandths, so that values compare exactly.
pub type Value = i128;

/// The values a numeral may stand for: as written, and scaled by the word after it ("2.5
/// million" is 2,500,000, but a source that says "2.5" supports it too: the scale word may be
/// translated differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numeral {
    /// The numeral as it appears in the text, scale word included.
    pub text: String,
    pub values: Vec<Value>,
}

/// The value of a whole number.
pub fn whole(n: i128) -> Value {
    n * 1000
}

/// Parses `digits` (ASCII digits with `,` as thousands and `.` as decimal separators) into
/// thousandths; `None` when it is not one number ("1.2.3").
pub fn parse_value(digits: &str) -> Option<Value> {
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) if !f.contains('.') => (w, f),
        Some(_) => return None,
        None => (digits, ""),
    };
    let whole: String = whole.chars().filter(|c| *c != ',').collect();
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: Value = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut thousandths = 0;
    for (i, c) in fraction.chars().take(3).enumerate() {
        thousandths += Value::from(c.to_digit(10)?) * [100, 10, 1][i];
    }
    whole.checked_mul(1000)?.checked_add(thousandths)
}

/// Finds the numerals in `text`, whose digits are ASCII (callers map other digits first).
/// `scale` names the multiplier of a word after a numeral ("million" → 10⁶).
pub fn numerals(text: &str, scale: impl Fn(&str) -> Option<Value>) -> Vec<Numeral> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut j = i;
        // Separators count only between digits: "3,000" is one number, "3, 4" two.
        while j < chars.len()
            && (chars[j].1.is_ascii_digit()
                || (matches!(chars[j].1, ',' | '.')
                    && chars.get(j + 1).is_some_and(|c| c.1.is_ascii_digit())
                    && chars[j - 1].1.is_ascii_digit()))
        {
            j += 1;
        }
        let end = chars.get(j).map_or(text.len(), |c| c.0);
        let digits = &text[start..end];
        i = j;
        let Some(value) = parse_value(digits) else {
            continue;
        };
        let mut values = vec![value];
        let mut written = digits.to_string();
        let rest = &text[end..];
        let next_word: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphabetic())
            .collect();
        if let Some(factor) = scale(&next_word) {
            if let Some(scaled) = value.checked_mul(factor) {
                values.push(scaled);
                written = format!("{digits} {next_word}");
            }
        }
        out.push(Numeral {
            text: written,
            values,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn english_scale(word: &str) -> Option<Value> {
        match word {
            "thousand" => Some(1_000),
            "million" => Some(1_000_000),
            _ => None,
        }
    }

    #[test]
    fn separators_and_scales() {
        assert_eq!(parse_value("1,500"), Some(1_500_000));
        assert_eq!(parse_value("2.5"), Some(2_500));
        assert_eq!(parse_value("1.2.3"), None);
        let found = numerals("In 2019, 2.5 million people and 3, 4 others", english_scale);
        let texts: Vec<&str> = found.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["2019", "2.5 million", "3", "4"]);
        assert_eq!(found[1].values, [2_500, 2_500_000_000]);
    }

    #[test]
    fn digits_of_every_script_read_as_ascii() {
        assert_eq!(ascii_digits("١٥ و٢٫٥ ۲۰۱۹ ٣٬٠٠٠"), "15 و2.5 2019 3,000");
        assert_eq!(ascii_digits("August १, ٢٠١٣ ２０"), "August 1, 2013 20");
        // The Arabic percent sign follows the Arabic-Indic nine: no digit.
        assert_eq!(ascii_digits("٩٪"), "9٪");
    }
}
