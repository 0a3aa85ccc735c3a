//! Reading the metric fixtures (`tests/fixtures/metrics/*.json`, written by
//! `scripts/make-metric-fixtures.py`), shared by the metric tests.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A corpus several cases share is stored once in the fixture's `texts` and named here.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Texts {
    Named(String),
    Inline(Vec<String>),
}

impl Texts {
    /// The lines, looked up in the fixture's `texts` when named.
    pub fn resolve<'a>(&'a self, named: &'a HashMap<String, Vec<String>>) -> Vec<&'a str> {
        let lines = match self {
            Texts::Named(name) => &named[name],
            Texts::Inline(lines) => lines,
        };
        lines.iter().map(String::as_str).collect()
    }
}

/// A float from the IEEE-754 bits the fixtures store in hex, so no decimal round trip can hide
/// a difference.
pub fn from_bits(hex: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(hex, 16).expect("bits are hex"))
}

/// Parses `tests/fixtures/metrics/<name>`.
pub fn load<T: DeserializeOwned>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/metrics")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}
