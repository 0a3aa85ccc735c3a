//! Places and international organisations by their English and Arabic names (the CLDR's
//! countries, regions and cities, written into `places.tsv` by scripts/make-place-names.py).
//! A place a summary names is supported only by the Arabic source naming it: its English name
//! is no transliteration, and a translation by the summarizing model invents the same places
//! its summaries do (measured: see the closing note of the evaluation in the README).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::english::match_form;
use crate::document::fold_for_matching;

struct Place {
    /// The English names as written ("North Macedonia").
    written: Vec<String>,
    /// The English names, each as the match forms of its words.
    english: Vec<Vec<String>>,
    /// Which English names are acronyms ("UN", "US"), matched only in capitals ("Kim Jong Un").
    acronym: Vec<bool>,
    /// The Arabic names, folded for matching.
    arabic: Vec<String>,
}

struct Places {
    places: Vec<Place>,
    /// Names by the match form of their first word: (place, name) indexes.
    by_first_word: HashMap<String, Vec<(usize, usize)>>,
}

static PLACES: LazyLock<Places> = LazyLock::new(|| {
    let mut places = Vec::new();
    let mut by_first_word: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    for line in include_str!("places.tsv").lines() {
        let Some((english, arabic)) = line.split_once('\t') else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let acronym = english
            .split('|')
            .map(|name| name.len() > 1 && name.chars().all(|c| c.is_ascii_uppercase()))
            .collect();
        let written = english.split('|').map(str::to_string).collect();
        let english: Vec<Vec<String>> = english
            .split('|')
            .map(|name| name.split_whitespace().map(match_form).collect())
            .collect();
        for (n, words) in english.iter().enumerate() {
            if let Some(first) = words.first() {
                by_first_word
                    .entry(first.clone())
                    .or_default()
                    .push((places.len(), n));
            }
        }
        let arabic = arabic.split('|').map(fold_for_matching).collect();
        places.push(Place {
            written,
            english,
            acronym,
            arabic,
        });
    }
    Places {
        places,
        by_first_word,
    }
});

/// A place named in a sentence: which words, and which place.
#[derive(Debug, Clone)]
pub struct PlaceMention {
    pub words: Vec<String>,
    place: usize,
}

impl PlaceMention {
    /// The place's names in Arabic, folded.
    pub fn arabic(&self) -> &[String] {
        &PLACES.places[self.place].arabic
    }
}

/// Every place the list has: its English names as written and its Arabic names, folded.
pub fn all() -> impl Iterator<Item = (&'static [String], &'static [String])> {
    PLACES
        .places
        .iter()
        .map(|p| (p.written.as_slice(), p.arabic.as_slice()))
}

/// The places `words` (a sentence's, in order) name: at each capitalised word the longest
/// name that starts there, or a single-word name the word extends ("Egyptian", "Afghan" for
/// "Afghanistan" is the other way round and is matched too).
pub fn mentions(words: &[&str]) -> Vec<PlaceMention> {
    let forms: Vec<String> = words.iter().map(|w| match_form(w)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if !words[i].starts_with(char::is_uppercase) {
            i += 1;
            continue;
        }
        let mut best: Option<(usize, usize)> = None;
        if let Some(candidates) = PLACES.by_first_word.get(&forms[i]) {
            for &(place, name) in candidates {
                let name_words = &PLACES.places[place].english[name];
                let len = name_words.len();
                let capitals = !PLACES.places[place].acronym[name]
                    || words[i].chars().all(|c| c.is_ascii_uppercase());
                if capitals
                    && forms.get(i..i + len) == Some(name_words.as_slice())
                    && best.is_none_or(|(_, l)| len > l)
                {
                    best = Some((place, len));
                }
            }
        }
        if best.is_none() && forms[i].len() >= 4 {
            // A demonym or adjective of a one-word name.
            best = PLACES
                .places
                .iter()
                .enumerate()
                .find(|(_, p)| {
                    p.english
                        .iter()
                        .any(|n| n.len() == 1 && demonym(&n[0], &forms[i]))
                })
                .map(|(place, _)| (place, 1));
        }
        match best {
            Some((place, len)) => {
                out.push(PlaceMention {
                    words: words[i..i + len].iter().map(|w| w.to_string()).collect(),
                    place,
                });
                i += len;
            }
            None => i += 1,
        }
    }
    out
}

/// Whether `word` is the people or adjective of the one-word place `place` ("Egyptian",
/// "Iraqi", "Sudanese", "Palestinian"), or the short form of a "-stan" ("Afghan"). Only these
/// endings: a name that merely starts like a place ("Malik", "Mali") is no demonym.
fn demonym(place: &str, word: &str) -> bool {
    if place.len() < 4 || word.len() < 4 {
        return false;
    }
    if place.strip_prefix(word) == Some("istan") {
        return true;
    }
    let base = place.strip_suffix('e').unwrap_or(place);
    [place, base].iter().any(|stem| {
        word.strip_prefix(stem).is_some_and(|rest| {
            matches!(
                rest,
                "n" | "an" | "ian" | "i" | "ese" | "ns" | "ans" | "ians" | "is" | "s"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_countries_cities_demonyms_and_organisations() {
        let sentence = "The Egyptian envoy met United Nations officials in Kabul and North Macedonia, not Niger.";
        let words = super::super::english::words(sentence);
        let found: Vec<String> = mentions(&words).iter().map(|m| m.words.join(" ")).collect();
        assert_eq!(
            found,
            [
                "Egyptian",
                "United Nations",
                "Kabul",
                "North Macedonia",
                "Niger"
            ]
        );
        assert!(mentions(&["Malik", "Palestinians", "Afghan"])
            .iter()
            .map(|m| m.words[0].as_str())
            .eq(["Palestinians", "Afghan"]));
        let m = mentions(&["Egyptian"]);
        assert_eq!(m[0].arabic(), ["مصر"]);
    }
}
