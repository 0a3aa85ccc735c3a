//! Which language a text is in: scraped Arabic feeds carry Persian and Urdu articles, written in
//! the same script, that an Arabic model would turn into nonsense.
//!
//! whatlang's trigram models tell Arabic, Persian and Urdu apart, and its models of other scripts
//! name the rest. Alone it called 10 of NTREX's 1,997 Arabic lines Persian or Urdu (mostly
//! short, with whatlang confidences of 0.10 or less), and 121 of them once ي and ك were written ی and ک
//! as Persian keyboards do, which scraped Arabic sometimes is. So whatlang reads the Arabic-script
//! words with those two letters folded back to Arabic, and a text is called Persian or Urdu only
//! when whatlang's lean and the letters only Persian and Urdu write (پ چ ژ گ ٹ ڈ ڑ ں ھ ہ ے ۔,
//! their digits, a zero-width non-joiner inside a word) together make that clear. Texts with
//! fewer than [`MIN_LETTERS`] Arabic-script letters are too short to tell and count as Arabic.

/// One language guess for a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// ISO 639-1 code: "ar", "fa", "ur", "en", ... ("und" when nothing can be told).
    pub language: &'static str,
    /// 0.0..=1.0
    pub confidence: f64,
}

/// Arabic-script (or other) letters below which a text is too short to tell its language: about
/// five words. Shorter Arabic-script text counts as Arabic.
const MIN_LETTERS: usize = 24;

/// How sure (0..1) the evidence must be that Arabic-script text is Persian or Urdu before it is
/// called so: whatlang's two-way confidence against Arabic of 0.5, or clear letter evidence.
const NOT_ARABIC_AT: f64 = 0.75;

/// The share of Arabic-script letters that Persian or Urdu letters must reach to settle it alone.
/// The test sentences (tests/fixtures/language) have 0-11% in Persian (4 of 14 none, which
/// whatlang alone must settle) and 10-31% in Urdu; NTREX's Arabic has none.
const MARKER_SHARE: f64 = 0.03;

/// The most likely language of `text`, and how sure.
pub fn detect(text: &str) -> Detection {
    detect_all(text).swap_remove(0)
}

/// Ranked candidates (best first), for APIs that list several. The first is [`detect`]'s
/// answer, which for Arabic-script text is Arabic unless the evidence against it is clear, so it
/// may have a lower confidence than the Persian or Urdu after it. Confidences sum to at most 1.
pub fn detect_all(text: &str) -> Vec<Detection> {
    let parts = Parts::of(text);
    let (arabic, other) = (parts.arabic_letters, parts.other_letters);
    if arabic + other == 0 {
        return vec![Detection {
            language: "und",
            confidence: 0.0,
        }];
    }
    let share = arabic as f64 / (arabic + other) as f64;
    let mut ranked = Vec::new();
    if arabic > 0 {
        ranked.extend(arabic_script(&parts).into_iter().map(|d| Detection {
            confidence: d.confidence * share,
            ..d
        }));
    }
    if other > 0 {
        let guess = other_script(&parts.other_words);
        let at = if other > arabic { 0 } else { ranked.len() };
        ranked.insert(
            at,
            Detection {
                confidence: guess.confidence * (1.0 - share),
                ..guess
            },
        );
    }
    ranked
}

/// What the input check says about a document.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// Arabic, or too short to tell.
    Arabic,
    /// Too little text yet to tell (a pipe's first paragraph may be a title).
    Undecided,
    /// Not Arabic: its detected language.
    Other(Detection),
}

/// Whether a document may go to an Arabic model. Only its Arabic-script words ever reach the
/// model (other lines pass through untouched), so with at least [`MIN_LETTERS`] of them those
/// decide: an English article that quotes an Arabic sentence is translated, a Persian one that
/// quotes English is not. A document with no real Arabic-script text is refused when it has
/// enough other letters to name their language.
pub(super) fn check(text: &str) -> Verdict {
    let parts = Parts::of(text);
    if parts.arabic_letters >= MIN_LETTERS {
        match arabic_script(&parts).swap_remove(0) {
            d if d.language == "ar" => Verdict::Arabic,
            d => Verdict::Other(d),
        }
    } else if parts.other_letters >= MIN_LETTERS {
        match detect(text) {
            d if matches!(d.language, "ar" | "und") => Verdict::Arabic,
            d => Verdict::Other(d),
        }
    } else {
        Verdict::Undecided
    }
}

/// [`check`] for an input reader: `Ok(true)` once `text` is found Arabic, `Ok(false)` while
/// undecided, and for another language the one-line error that reports and skips input `name`.
pub(super) fn require_arabic(text: &str, name: &str) -> crate::Result<bool> {
    match check(text) {
        Verdict::Arabic => Ok(true),
        Verdict::Undecided => Ok(false),
        // A weak guess (URLs and numbers read as Romanian, say) is named as a guess only:
        // what is certain is that the text is not Arabic.
        Verdict::Other(d) if d.confidence < 0.5 => Err(crate::Error::input(format!(
            "{name}: no Arabic text found (it reads most like {} ({}), confidence {:.2}); skipped (pass --assume-arabic to treat it as Arabic)",
            self::name(d.language),
            d.language,
            d.confidence
        ))),
        Verdict::Other(d) => Err(crate::Error::input(format!(
            "{name}: detected {} ({}, confidence {:.2}), not Arabic; skipped (pass --assume-arabic to treat it as Arabic)",
            self::name(d.language),
            d.language,
            d.confidence
        ))),
    }
}

/// The English name of an ISO 639-1 code that [`detect`] returns, for messages.
pub(super) fn name(code: &str) -> &'static str {
    LANGUAGES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("an undetermined language", |(lang, _)| lang.eng_name())
}

/// The words of a text by script, links and tags left out: they are identifiers, not language.
struct Parts {
    /// Words with an Arabic-script letter, ی and ک folded to ي and ك.
    arabic_words: String,
    arabic_letters: usize,
    /// Letters only Persian and Urdu write (see the module's comment).
    markers: usize,
    /// Those of them only Urdu writes.
    urdu_markers: usize,
    /// Words with letters of other scripts.
    other_words: String,
    other_letters: usize,
}

impl Parts {
    fn of(text: &str) -> Parts {
        let mut parts = Parts {
            arabic_words: String::new(),
            arabic_letters: 0,
            markers: 0,
            urdu_markers: 0,
            other_words: String::new(),
            other_letters: 0,
        };
        for word in text.split_whitespace() {
            let lower = word.to_ascii_lowercase();
            if ["http://", "https://", "www.", "#", "@"]
                .iter()
                .any(|p| lower.starts_with(p))
                || (word.contains('@') && word.contains('.'))
            {
                continue;
            }
            let arabic = word
                .chars()
                .filter(|&c| super::normalize::is_arabic_letter(c))
                .count();
            if arabic > 0 {
                parts.arabic_letters += arabic;
                let mut prev_letter = false;
                let mut chars = word.chars().peekable();
                while let Some(c) = chars.next() {
                    let zwnj_in_word = c == '\u{200C}'
                        && prev_letter
                        && chars
                            .peek()
                            .is_some_and(|&n| super::normalize::is_arabic_letter(n));
                    let urdu =
                        matches!(c, 'ٹ' | 'ڈ' | 'ڑ' | 'ں' | 'ھ' | 'ہ' | 'ۃ' | 'ے' | 'ۓ' | '۔');
                    if urdu || zwnj_in_word || matches!(c, 'پ' | 'چ' | 'ژ' | 'گ' | '۰'..='۹')
                    {
                        parts.markers += 1;
                    }
                    parts.urdu_markers += usize::from(urdu);
                    prev_letter = super::normalize::is_arabic_letter(c);
                    parts.arabic_words.push(match c {
                        'ی' => 'ي',
                        'ک' => 'ك',
                        c => c,
                    });
                }
                parts.arabic_words.push(' ');
            } else if word.chars().any(char::is_alphabetic) {
                parts.other_letters += word.chars().filter(|c| c.is_alphabetic()).count();
                parts.other_words.push_str(word);
                parts.other_words.push(' ');
            }
        }
        parts
    }
}

/// Arabic, Persian and Urdu ranked for the Arabic-script words, the verdict first.
fn arabic_script(parts: &Parts) -> Vec<Detection> {
    use whatlang::{Detector, Lang};
    let text = &parts.arabic_words;
    let two_way = |other: Lang| {
        Detector::with_allowlist(vec![Lang::Ara, other])
            .detect(text)
            .map_or((Lang::Ara, 0.0), |i| (i.lang(), i.confidence()))
    };
    // How far whatlang leans away from Arabic, 0..1 (0.5: undecided): its confidence in Arabic
    // against the closer of Persian and Urdu, or in that one against Arabic.
    let lean = match Detector::with_allowlist(vec![Lang::Ara, Lang::Pes, Lang::Urd]).detect(text) {
        None => 0.5,
        Some(i) if i.lang() == Lang::Ara => 0.5 - i.confidence() / 2.0,
        Some(i) => match two_way(i.lang()) {
            (Lang::Ara, confidence) => 0.5 - confidence / 2.0,
            (_, confidence) => 0.5 + confidence / 2.0,
        },
    };
    let letters = parts.arabic_letters.max(1) as f64;
    let by_letters = (parts.markers as f64 / (MARKER_SHARE * letters)).min(1.0);
    // Two independent cues: the text is Arabic only if neither says otherwise.
    let not_arabic = 1.0 - (1.0 - lean) * (1.0 - by_letters);

    // Persian or Urdu: Urdu's own letters settle it, else whatlang's pick between the two.
    let urdu_by_letters = parts.urdu_markers >= 2
        && parts.urdu_markers as f64 >= 0.01 * letters
        && parts.urdu_markers * 2 >= parts.markers;
    let (urdu_share, persian_share) = if urdu_by_letters {
        (1.0, 0.0)
    } else {
        match Detector::with_allowlist(vec![Lang::Pes, Lang::Urd]).detect(text) {
            Some(i) if i.lang() == Lang::Urd => {
                (0.5 + i.confidence() / 2.0, 0.5 - i.confidence() / 2.0)
            }
            Some(i) => (0.5 - i.confidence() / 2.0, 0.5 + i.confidence() / 2.0),
            None => (0.5, 0.5),
        }
    };
    let mut ranked = vec![
        Detection {
            language: "ar",
            confidence: 1.0 - not_arabic,
        },
        Detection {
            language: "fa",
            confidence: not_arabic * persian_share,
        },
        Detection {
            language: "ur",
            confidence: not_arabic * urdu_share,
        },
    ];
    ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let called_other =
        lean > 0.5 && not_arabic >= NOT_ARABIC_AT && parts.arabic_letters >= MIN_LETTERS;
    if !called_other {
        let ar = ranked
            .iter()
            .position(|d| d.language == "ar")
            .expect("listed");
        let ar = ranked.remove(ar);
        ranked.insert(0, ar);
    }
    ranked
}

/// The language of the words in other scripts than Arabic.
fn other_script(words: &str) -> Detection {
    match whatlang::detect(words) {
        Some(info) => Detection {
            language: iso_639_1(info.lang()),
            confidence: info.confidence(),
        },
        None => Detection {
            language: "und",
            confidence: 0.0,
        },
    }
}

fn iso_639_1(lang: whatlang::Lang) -> &'static str {
    LANGUAGES
        .iter()
        .find(|(l, _)| *l == lang)
        .map_or("und", |(_, code)| code)
}

/// whatlang's languages (ISO 639-3) and their ISO 639-1 codes.
#[rustfmt::skip]
const LANGUAGES: [(whatlang::Lang, &str); 70] = {
    use whatlang::Lang::*;
    [
        (Afr, "af"), (Aka, "ak"), (Amh, "am"), (Ara, "ar"), (Aze, "az"), (Bel, "be"),
        (Ben, "bn"), (Bul, "bg"), (Cat, "ca"), (Ces, "cs"), (Cmn, "zh"), (Cym, "cy"),
        (Dan, "da"), (Deu, "de"), (Ell, "el"), (Eng, "en"), (Epo, "eo"), (Est, "et"),
        (Fin, "fi"), (Fra, "fr"), (Guj, "gu"), (Heb, "he"), (Hin, "hi"), (Hrv, "hr"),
        (Hun, "hu"), (Hye, "hy"), (Ind, "id"), (Ita, "it"), (Jav, "jv"), (Jpn, "ja"),
        (Kan, "kn"), (Kat, "ka"), (Khm, "km"), (Kor, "ko"), (Lat, "la"), (Lav, "lv"),
        (Lit, "lt"), (Mal, "ml"), (Mar, "mr"), (Mkd, "mk"), (Mya, "my"), (Nep, "ne"),
        (Nld, "nl"), (Nob, "nb"), (Ori, "or"), (Pan, "pa"), (Pes, "fa"), (Pol, "pl"),
        (Por, "pt"), (Ron, "ro"), (Rus, "ru"), (Sin, "si"), (Slk, "sk"), (Slv, "sl"),
        (Sna, "sn"), (Spa, "es"), (Srp, "sr"), (Swe, "sv"), (Tam, "ta"), (Tel, "te"),
        (Tgl, "tl"), (Tha, "th"), (Tuk, "tk"), (Tur, "tr"), (Ukr, "uk"), (Urd, "ur"),
        (Uzb, "uz"), (Vie, "vi"), (Yid, "yi"), (Zul, "zu"),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    /// News sentences written for these tests (see tests/fixtures/language/README.md).
    const PERSIAN: &str = include_str!("../../tests/fixtures/language/fa.txt");
    const URDU: &str = include_str!("../../tests/fixtures/language/ur.txt");

    fn first(text: &str) -> &str {
        text.lines().next().unwrap()
    }

    fn is(text: &str, language: &str) {
        let d = detect(text);
        assert_eq!(d.language, language, "{d:?} for {text}");
        assert!((0.0..=1.0).contains(&d.confidence), "{d:?}");
    }

    #[test]
    fn persian_news_sentences_are_persian() {
        assert_eq!(PERSIAN.lines().count(), 14);
        for s in PERSIAN.lines() {
            is(s, "fa");
            assert!(
                matches!(check(s), Verdict::Other(d) if d.language == "fa"),
                "{s}"
            );
        }
        is(PERSIAN, "fa");
    }

    #[test]
    fn urdu_news_sentences_are_urdu() {
        assert_eq!(URDU.lines().count(), 14);
        for s in URDU.lines() {
            is(s, "ur");
            assert!(
                matches!(check(s), Verdict::Other(d) if d.language == "ur"),
                "{s}"
            );
        }
        is(URDU, "ur");
    }

    #[test]
    fn arabic_with_persian_keyboard_letters_is_arabic() {
        let arabic =
            "أعلنت وزارة الصحة يوم الاثنين عن تسجيل حالات جديدة في عدد من المحافظات الشمالية";
        is(arabic, "ar");
        is(&arabic.replace('ي', "ی").replace('ك', "ک"), "ar");
        assert_eq!(check(arabic), Verdict::Arabic);
        // A foreign name with گ does not make an article Persian.
        is(
            "قالت شركة گوگل إنها ستفتح مكتبا جديدا في القاهرة خلال الأشهر المقبلة",
            "ar",
        );
    }

    #[test]
    fn short_arabic_script_text_counts_as_arabic() {
        for s in ["میں", "پاکستان زندہ باد", "خبر فوری", "سلام"] {
            is(s, "ar");
            assert_eq!(check(s), Verdict::Undecided, "{s}");
        }
    }

    #[test]
    fn latin_and_mixed_texts() {
        let english =
            "The city council approved a new budget on Monday, raising spending on schools.";
        is(english, "en");
        assert!(matches!(check(english), Verdict::Other(d) if d.language == "en"));
        is(
            "Le gouvernement a annoncé lundi de nouvelles mesures contre l'inflation.",
            "fr",
        );
        // Mostly English, so English; but its Arabic sentence is what a model would see.
        let quote =
            format!("{english} {english} He said: قال الوزير إن الحكومة ستواصل دعم المدارس");
        is(&quote, "en");
        assert_eq!(check(&quote), Verdict::Arabic);
        // Links, tags and numbers are no language.
        for s in [
            "https://example.com/news/2024 #عاجل @reuters",
            "2024-05-01 12:30",
            "",
        ] {
            is(s, "und");
            assert_eq!(check(s), Verdict::Undecided, "{s}");
        }
        assert_eq!(check("OK"), Verdict::Undecided);
    }

    #[test]
    fn candidates_are_ranked_and_sum_to_at_most_one() {
        for text in [
            first(PERSIAN),
            first(URDU),
            "أعلنت وزارة الصحة عن تسجيل حالات جديدة اليوم",
        ] {
            let all = detect_all(text);
            assert_eq!(all[0], detect(text));
            assert_eq!(all.len(), 3, "{all:?}");
            assert!(all[1].confidence >= all[2].confidence, "{all:?}");
            let sum: f64 = all.iter().map(|d| d.confidence).sum();
            assert!(sum <= 1.0 + 1e-9, "{all:?}");
        }
    }

    #[test]
    fn every_whatlang_language_has_a_code_and_a_name() {
        for lang in whatlang::Lang::all() {
            let code = iso_639_1(*lang);
            assert_eq!(code.len(), 2, "{lang:?}");
            assert_eq!(name(code), lang.eng_name());
        }
        assert_eq!(name("und"), "an undetermined language");
    }
}
