//! Arabic text normalization: what the model sees, and a looser folding for matching lines.

use unicode_normalization::UnicodeNormalization;

const TATWEEL: char = '\u{0640}';

/// Characters that render as nothing but change how a model tokenizes the text: zero-width
/// joiners, direction marks and embeddings, the byte-order mark and the soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                  // soft hyphen
        | '\u{061C}'                // Arabic letter mark
        | '\u{180E}'                // Mongolian vowel separator (was a zero-width space)
        | '\u{200B}'..='\u{200F}'   // ZWSP, ZWNJ, ZWJ, LRM, RLM
        | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'   // bidi isolates
        | '\u{FEFF}'                // byte-order mark / zero-width no-break space
    )
}

/// Arabic Presentation Forms-A and -B: contextual glyph shapes that old PDF and web pipelines
/// emit instead of letters. The model's vocabulary only knows the base letters.
fn is_presentation_form(c: char) -> bool {
    matches!(c, '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFE}')
}

/// An Arabic-script letter (not a digit, mark, punctuation sign or the tatweel).
pub fn is_arabic_letter(c: char) -> bool {
    matches!(c,
        '\u{0620}'..='\u{063F}'
        | '\u{0641}'..='\u{064A}'
        | '\u{066E}'..='\u{066F}'
        | '\u{0671}'..='\u{06D3}'
        | '\u{06D5}'
        | '\u{06EE}'..='\u{06EF}'
        | '\u{06FA}'..='\u{06FC}'
        | '\u{06FF}'
        | '\u{0750}'..='\u{077F}'
        | '\u{08A0}'..='\u{08C9}'
        | '\u{FB50}'..='\u{FDFB}'
        | '\u{FE70}'..='\u{FEFC}'
    )
}

/// Whether `s` contains at least one Arabic letter, i.e. whether it needs translating at all.
pub fn contains_arabic(s: &str) -> bool {
    s.chars().any(is_arabic_letter)
}

/// Arabic punctuation that scraped text often writes with a space before it (`سوريا ، مع`).
/// The models were trained mostly on text with the sign attached, so the space is dropped.
fn attaches_left(c: char) -> bool {
    matches!(c, '،' | '؛' | '؟')
}

/// Normalizes text for the translation model: removes zero-width and direction characters and
/// the tatweel, maps Arabic presentation forms to their base letters (NFKC on those ranges
/// only), collapses whitespace (including NBSP) to single spaces, trims both ends, and drops a
/// space before `،`, `؛` and `؟`. Diacritics, digits and punctuation are kept as they are.
pub fn normalize_for_model(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            return;
        }
        if pending_space && !attaches_left(c) {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    };
    for c in text.chars() {
        if is_invisible(c) || c == TATWEEL {
            continue;
        }
        if is_presentation_form(c) {
            // Some forms are drawn on a tatweel and decompose to one (U+FE71 is tatweel +
            // fathatan); it must go like any other, or normalizing twice would change the text.
            for d in std::iter::once(c).nfkc().filter(|&d| d != TATWEEL) {
                push(d, &mut out);
            }
        } else {
            push(c, &mut out);
        }
    }
    out
}

/// Arabic short vowels, tanween, shadda, sukun, the dagger alif and Quranic marks.
pub fn is_arabic_mark(c: char) -> bool {
    matches!(c, '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
}

/// Folds a line for matching against known phrases: normalized, without diacritics, with the
/// spelling variants that sites mix freely unified (alef with hamza or madda → ا, ى → ي,
/// ة → ه), lowercased, and with every punctuation sign turned into a space.
pub fn fold_for_matching(text: &str) -> String {
    let normalized = normalize_for_model(text);
    let mut out = String::with_capacity(normalized.len());
    for c in normalized.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ى' => 'ي',
            'ة' => 'ه',
            c if is_arabic_mark(c) => continue,
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let len = out.trim_end().len();
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_invisibles_and_tatweel() {
        assert_eq!(
            normalize_for_model("\u{200F}مـــرحبا\u{200C} بكم\u{200B}"),
            "مرحبا بكم"
        );
        assert_eq!(normalize_for_model("كتب \u{FE71}"), "كتب \u{064B}");
    }

    #[test]
    fn maps_presentation_forms() {
        // ﻣﺮﺣﺒﺎ written with contextual glyph forms, and the lam-alef ligature ﻻ.
        assert_eq!(
            normalize_for_model("\u{FEE3}\u{FEAE}\u{FEA3}\u{FE92}\u{FE8E}"),
            "مرحبا"
        );
        assert_eq!(normalize_for_model("\u{FEFB}"), "لا");
    }

    #[test]
    fn keeps_diacritics_digits_and_punctuation() {
        let s = "قَالَ: ٣٫٥ و 10.30 \"نعم\"!";
        assert_eq!(normalize_for_model(s), s);
    }

    #[test]
    fn collapses_whitespace_and_attaches_arabic_comma() {
        assert_eq!(
            normalize_for_model("  سوريا\u{00A0}\u{00A0}والعراق ،\tمع  "),
            "سوريا والعراق، مع"
        );
    }

    #[test]
    fn folding_unifies_spelling_variants() {
        assert_eq!(
            fold_for_matching("اترك تعليقاً"),
            fold_for_matching("اترك تعليقا")
        );
        assert_eq!(
            fold_for_matching("زر الذهاب إلى الأعلى"),
            "زر الذهاب الي الاعلي"
        );
        assert_eq!(fold_for_matching("« Back to TOP »"), "back to top");
    }

    #[test]
    fn arabic_detection() {
        assert!(contains_arabic("CNN عربي"));
        assert!(!contains_arabic("https://example.com 2023 ٢٠٢٣"));
        assert!(!contains_arabic("\u{0640}\u{064B}"));
    }
}
