//! Language detection for `POST /detect` and `source=auto`, with [`crate::document::language`],
//! in LibreTranslate's shape: confidences from 0 to 100.

use serde_json::{json, Value};

use super::api::{ApiError, SOURCE};
use crate::document::{detect, detect_all};

/// The language `source=auto` found.
pub struct Detected {
    pub language: &'static str,
    /// 0 to 100.
    pub confidence: f64,
}

fn percent(confidence: f64) -> f64 {
    (confidence * 10_000.0).round() / 100.0
}

/// The language of all of a request's texts together, as LibreTranslate detects a list. Arabic
/// is translated; text without letters (numbers, punctuation) is `und` and passes through
/// unchanged as it would from `source=ar`; any other language is a 400.
pub fn detect_source(texts: &[String]) -> Result<Detected, ApiError> {
    let found = detect(&texts.join("\n"));
    let detected = Detected {
        language: found.language,
        confidence: percent(found.confidence),
    };
    match found.language {
        SOURCE | "und" => Ok(detected),
        other => Err(ApiError::bad_request(format!(
            "{other} is not supported: source=auto detected {other} (confidence {}), and this server translates Arabic (ar) only",
            detected.confidence
        ))),
    }
}

/// `POST /detect`: every candidate, best first.
pub fn detect_languages(text: &str) -> Value {
    Value::Array(
        detect_all(text)
            .into_iter()
            .map(|d| json!({"confidence": percent(d.confidence), "language": d.language}))
            .collect(),
    )
}
