//! Numbers as values, so that "1,500", "1500", "١٥٠٠" and "1.5 thousand" compare equal.

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
}
