//! A port of sacremoses' `MosesPunctNormalizer` with its default options (penn quotes, quote and
//! comma normalization, number normalization; no unicode-punctuation pre-pass, no control-char
//! post-pass, no perl parity): the same regex substitutions in the same order, then Python's
//! `str.strip()`.
//!
//! The rules use Python `re` semantics; the Rust patterns below match the same strings: `\d` is
//! Unicode decimal digits in both, `[a-zA-Z]` is ASCII in both, and Python's `\s` (which also
//! covers U+001C..U+001F) is spelled out as [`PY_SPACE`].

use regex::Regex;

/// The characters Python's `str.isspace()`, `str.strip()` and `re`'s `\s` treat as whitespace.
const PY_SPACE: &str = r"[\t\n\x0B\x0C\r\x1C-\x1F \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]";

/// Python's `str.isspace()`.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

const EXTRA_WHITESPACE: &[(&str, &str)] = &[
    (r"\r", ""),
    (r"\(", " ("),
    (r"\)", ") "),
    (r" +", " "),
    (r"\) ([.!:?;,])", ")${1}"),
    (r"\( ", "("),
    (r" \)", ")"),
    (r"(\d) %", "${1}%"),
    (r" :", ":"),
    (r" ;", ";"),
];

const NORMALIZE_UNICODE_IF_NOT_PENN: &[(&str, &str)] = &[(r"`", "'"), (r"''", " \" ")];

const NORMALIZE_UNICODE: &[(&str, &str)] = &[
    ("„", "\""),
    ("“", "\""),
    ("”", "\""),
    ("–", "-"),
    ("—", " - "),
    (r" +", " "),
    ("´", "'"),
    ("([a-zA-Z])‘([a-zA-Z])", "${1}'${2}"),
    ("([a-zA-Z])’([a-zA-Z])", "${1}'${2}"),
    ("‘", "'"),
    ("‚", "'"),
    ("’", "'"),
    (r"''", "\""),
    ("´´", "\""),
    ("…", "..."),
];

const FRENCH_QUOTES: &[(&str, &str)] = &[
    ("\u{A0}«\u{A0}", "\""),
    ("«\u{A0}", "\""),
    ("«", "\""),
    ("\u{A0}»\u{A0}", "\""),
    ("\u{A0}»", "\""),
    ("»", "\""),
];

const HANDLE_PSEUDO_SPACES: &[(&str, &str)] = &[
    ("\u{A0}%", "%"),
    ("nº\u{A0}", "nº "),
    ("\u{A0}:", ":"),
    ("\u{A0}ºC", " ºC"),
    ("\u{A0}cm", " cm"),
    ("\u{A0}\\?", "?"),
    ("\u{A0}\\!", "!"),
    ("\u{A0};", ";"),
    (",\u{A0}", ", "),
    (r" +", " "),
];

const EN_QUOTATION_FOLLOWED_BY_COMMA: &[(&str, &str)] = &[(r#""([,.]+)"#, "${1}\"")];

/// The second rule's `\s` is Python's; it is substituted in from [`PY_SPACE`].
const DE_ES_FR_QUOTATION_FOLLOWED_BY_COMMA: &[(&str, &str)] =
    &[(r#",""#, "\","), (r#"(\.+)"(PY_SPACE*[^<])"#, "\"${1}${2}")];

const DE_ES_CZ_CS_FR: &[(&str, &str)] = &[("(\\d)\u{A0}(\\d)", "${1},${2}")];

const OTHER: &[(&str, &str)] = &[("(\\d)\u{A0}(\\d)", "${1}.${2}")];

/// sacremoses' `MosesPunctNormalizer(lang)` with default options.
#[derive(Debug, Clone)]
pub struct MosesPunctNormalizer {
    rules: Vec<(Regex, &'static str)>,
}

impl MosesPunctNormalizer {
    /// The normalizer for `lang` (a two-letter code; "en", "de", "es", "fr", "cz" and "cs" have
    /// rules of their own, every other code gets the generic ones).
    pub fn new(lang: &str) -> Self {
        let mut groups = vec![
            EXTRA_WHITESPACE,
            NORMALIZE_UNICODE_IF_NOT_PENN,
            NORMALIZE_UNICODE,
            FRENCH_QUOTES,
            HANDLE_PSEUDO_SPACES,
        ];
        match lang {
            "en" => groups.push(EN_QUOTATION_FOLLOWED_BY_COMMA),
            "de" | "es" | "fr" => groups.push(DE_ES_FR_QUOTATION_FOLLOWED_BY_COMMA),
            _ => {}
        }
        match lang {
            "de" | "es" | "cz" | "cs" | "fr" => groups.push(DE_ES_CZ_CS_FR),
            _ => groups.push(OTHER),
        }
        let rules = groups
            .into_iter()
            .flatten()
            .map(|&(pattern, replacement)| {
                let pattern = pattern.replace("PY_SPACE", PY_SPACE);
                let regex = Regex::new(&pattern).expect("the Moses rules are valid regexes");
                (regex, replacement)
            })
            .collect();
        MosesPunctNormalizer { rules }
    }

    pub fn normalize(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (regex, replacement) in &self.rules {
            if let std::borrow::Cow::Owned(replaced) = regex.replace_all(&text, *replacement) {
                text = replaced;
            }
        }
        text.trim_matches(is_py_space).to_string()
    }
}
