//! The JSON record every command writes for `--format jsonl`: one schema, the same names for
//! the same things, whatever the command or the model.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Engine;
use crate::faithful::CheckReport;

/// The version of the record layout, written as `schema` in every record; it changes only when
/// a field changes meaning or goes away (new optional fields keep it).
pub const SCHEMA_VERSION: u32 = 1;

/// The fields tarjama writes. An input record (`--input-format jsonl`) keeps its other fields,
/// passed through unchanged, and must not hold one of these besides its id.
pub const FIELDS: &[&str] = &[
    "schema",
    "id",
    "task",
    "model",
    "model_revision",
    "translator",
    "translator_revision",
    "arabic",
    "english",
    "summary",
    "prompt_tokens",
    "cached_prompt_tokens",
    "generated_tokens",
    "check",
];

/// One result record.
#[derive(Debug, Serialize)]
pub struct OutputRecord {
    pub schema: u32,
    /// The input's name, or the value of the input record's id field.
    pub id: Value,
    /// `translate` or `summarize`.
    pub task: &'static str,
    /// The model's name (preset, repo id, directory or file) and its revision (a Hub commit,
    /// or the local path).
    pub model: String,
    pub model_revision: String,
    /// The translator an encoder-decoder summarizer used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translator_revision: Option<String>,
    /// The Arabic paragraphs that were translated (translate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arabic: Option<Vec<String>>,
    /// Their English, paragraph for paragraph (translate; summarize with --show-translation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub english: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// A chat model's token counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_tokens: Option<usize>,
    /// The support check of a summary's sentences (summarize, unless --no-check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
}

impl OutputRecord {
    pub fn new(id: Value, task: &'static str, engine: &Engine) -> Self {
        let files = engine.files();
        let translator = engine.translator_files();
        Self {
            schema: SCHEMA_VERSION,
            id,
            task,
            model: files.name.clone(),
            model_revision: files.revision(),
            translator: translator.map(|t| t.name.clone()),
            translator_revision: translator.map(|t| t.revision()),
            arabic: None,
            english: None,
            summary: None,
            prompt_tokens: None,
            cached_prompt_tokens: None,
            generated_tokens: None,
            check: None,
        }
    }

    /// The record as JSON, after the input record's own fields (which [`check_input_fields`]
    /// has checked do not collide).
    pub fn with_fields(&self, fields: Map<String, Value>) -> Value {
        let mut out = fields;
        if let Value::Object(own) = serde_json::to_value(self).expect("plain data serializes") {
            out.extend(own);
        }
        Value::Object(out)
    }
}

/// Checks that an input record's fields (its text field removed) can be passed through: none
/// may be one that tarjama writes, except the id field when it is named `id`.
pub fn check_input_fields(fields: &Map<String, Value>, id_field: &str) -> Result<(), String> {
    match fields
        .keys()
        .find(|k| FIELDS.contains(&k.as_str()) && !(k.as_str() == "id" && id_field == "id"))
    {
        Some(k) if k == "id" => Err(format!(
            "the record has a field \"id\" and --id-field names {id_field:?}: the output's id \
             would replace it; pass --id-field id, or rename the field"
        )),
        Some(k) => Err(format!(
            "the record's field {k:?} is one tarjama writes, and it would be replaced: rename it \
             in the input (tarjama's fields: {})",
            FIELDS.join(", ")
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn input_fields_that_tarjama_writes_are_refused_naming_them() {
        assert!(check_input_fields(&fields(r#"{"url": "u", "id": 3}"#), "id").is_ok());
        let err = check_input_fields(&fields(r#"{"url": "u", "id": 3}"#), "url").unwrap_err();
        assert!(err.contains("--id-field id"), "{err}");
        let err = check_input_fields(&fields(r#"{"summary": "x"}"#), "id").unwrap_err();
        assert!(err.contains("\"summary\""), "{err}");
    }

    #[test]
    fn every_written_field_is_listed() {
        let record = OutputRecord {
            schema: SCHEMA_VERSION,
            id: Value::from(1),
            task: "translate",
            model: "m".into(),
            model_revision: "r".into(),
            translator: Some("t".into()),
            translator_revision: Some("r".into()),
            arabic: Some(vec![]),
            english: Some(vec![]),
            summary: Some(String::new()),
            prompt_tokens: Some(1),
            cached_prompt_tokens: Some(1),
            generated_tokens: Some(1),
            check: Some(CheckReport::default()),
        };
        let Value::Object(map) = record.with_fields(Map::new()) else {
            panic!("an object")
        };
        let mut written: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut listed = FIELDS.to_vec();
        written.sort();
        listed.sort();
        assert_eq!(written, listed);
    }
}
