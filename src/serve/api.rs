//! The requests and answers of the HTTP API: LibreTranslate's (`/translate`, `/detect`,
//! `/languages`) with its field names, status codes and `{"error": ...}` bodies, and tarjama's
//! `/summarize`. Parsing is pure (bytes in, a request or an [`ApiError`] out), so that any body
//! at all gives a 4xx answer and never a panic: the property test feeds it random bodies.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::pipeline::SummaryLength;

/// An error answer: `{"error": message}` with its status (and `Retry-After` on a 429).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// LibreTranslate's wording for a field that is absent or empty.
    fn missing(name: &str) -> Self {
        Self::bad_request(format!("Invalid request: missing {name} parameter"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The fields of a request: a JSON object's, or a form's (`application/x-www-form-urlencoded`
/// body, then the query string), whose values are all strings.
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
    /// Form values are strings, so numbers come as text there.
    form: bool,
}

impl Fields {
    /// Reads a body as its content type says. Without a content type, a body that starts with
    /// `{` is JSON and anything else a form, as curl users send either.
    pub fn parse(
        content_type: Option<&str>,
        body: &[u8],
        query: Option<&str>,
    ) -> Result<Fields, ApiError> {
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        let json = match essence.as_deref() {
            Some("application/json") => true,
            Some(e) if e.ends_with("+json") => true,
            Some("application/x-www-form-urlencoded") | Some("text/plain") => false,
            Some("multipart/form-data") => {
                return Err(ApiError::bad_request(
                    "Invalid request: multipart/form-data is not supported; send JSON or application/x-www-form-urlencoded",
                ))
            }
            Some(_) | None => body.trim_ascii_start().starts_with(b"{"),
        };
        if json {
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("Invalid request: the body is not valid JSON ({e})"))
            })?;
            match value {
                Value::Object(map) => Ok(Fields { map, form: false }),
                _ => Err(ApiError::bad_request("Invalid JSON format")),
            }
        } else {
            let mut map = Map::new();
            // The body's fields first, then the query's: the first value of a name wins, as
            // Flask's `request.values.get` does for LibreTranslate.
            let query = query.unwrap_or("").as_bytes();
            // form_urlencoded decodes lossily; bytes that are not UTF-8 must not reach the
            // model as replacement characters. The fields are cut at ASCII `&` and `=`, so
            // they are all valid exactly when the whole decoded body is.
            for part in [body, query] {
                if percent_encoding::percent_decode(part)
                    .decode_utf8()
                    .is_err()
                {
                    return Err(ApiError::bad_request(
                        "Invalid request: the form is not valid UTF-8 (percent-encode UTF-8 text)",
                    ));
                }
            }
            for (name, value) in form_urlencoded::parse(body).chain(form_urlencoded::parse(query)) {
                map.entry(name.into_owned())
                    .or_insert(Value::String(value.into_owned()));
            }
            Ok(Fields { map, form: true })
        }
    }

    /// A string field; `None` when absent or null. Another type is an error naming the field.
    pub fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request(format!(
                "Invalid request: {name} must be a string"
            ))),
        }
    }

    /// A whole number field, given as a JSON number or as text (forms have only text).
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let invalid =
            || ApiError::bad_request(format!("Invalid request: {name} parameter is not a number"));
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(invalid),
            Some(Value::String(s)) if s.trim().is_empty() && self.form => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
            Some(_) => Err(invalid()),
        }
    }

    /// `q`: one text, or a list of texts (JSON only; a form sends one text).
    pub fn texts(&self) -> Result<Texts, ApiError> {
        match self.map.get("q") {
            None | Some(Value::Null) => Err(ApiError::missing("q")),
            Some(Value::String(s)) if s.is_empty() => Err(ApiError::missing("q")),
            Some(Value::String(s)) => Ok(Texts::One(s.clone())),
            Some(Value::Array(items)) if items.is_empty() => Err(ApiError::missing("q")),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::bad_request(
                        "Invalid request: q must be a string or an array of strings",
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Texts::Many),
            Some(_) => Err(ApiError::bad_request(
                "Invalid request: q must be a string or an array of strings",
            )),
        }
    }

    pub fn api_key(&self) -> Option<&str> {
        self.string("api_key").ok().flatten()
    }
}

/// `q`: the answer has the same shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Texts::One(s) => std::slice::from_ref(s),
            Texts::Many(v) => v,
        }
    }

    /// Characters in all the texts, which `--max-chars` bounds.
    pub fn chars(&self) -> usize {
        self.as_slice().iter().map(|s| s.chars().count()).sum()
    }

    /// `results`, one per text, in the shape of `q`.
    pub fn shape<T: Into<Value>>(&self, results: Vec<T>) -> Value {
        let mut values: Vec<Value> = results.into_iter().map(Into::into).collect();
        match self {
            Texts::One(_) => values.pop().unwrap_or(Value::Null),
            Texts::Many(_) => Value::Array(values),
        }
    }
}

/// Plain text, or HTML whose text nodes are translated and whose markup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Html,
}

impl Format {
    fn of(fields: &Fields) -> Result<Format, ApiError> {
        match fields.string("format")? {
            None | Some("") | Some("text") => Ok(Format::Text),
            Some("html") => Ok(Format::Html),
            Some(other) => Err(ApiError::bad_request(format!(
                "{other} format is not supported"
            ))),
        }
    }
}

/// The languages this server translates between: Arabic into English.
pub const SOURCE: &str = "ar";
pub const TARGET: &str = "en";

/// `GET /languages`, in LibreTranslate's shape: every language a model knows, with the
/// languages it translates into (English is listed, as LibreTranslate lists an installed
/// target, with none of its own).
pub fn languages() -> Value {
    serde_json::json!([
        {"code": SOURCE, "name": "Arabic", "targets": [TARGET]},
        {"code": TARGET, "name": "English", "targets": []},
    ])
}

fn language_name(code: &str) -> Option<&'static str> {
    match code {
        SOURCE => Some("Arabic"),
        TARGET => Some("English"),
        _ => None,
    }
}

/// Where the text's language comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Arabic,
    /// `source=auto`: detected, and reported back as `detectedLanguage`.
    Auto,
}

/// A `POST /translate`.
#[derive(Debug)]
pub struct TranslateRequest {
    pub texts: Texts,
    pub source: Source,
    pub format: Format,
    /// Asked-for alternative translations: the answer holds an empty list for each, as
    /// LibreTranslate's does for HTML.
    pub alternatives: u64,
}

/// Checks a `/translate` request as LibreTranslate does, in its order: `q`, `source` and
/// `target` present, `alternatives` a number, the text within `max_chars` (413 here, where
/// LibreTranslate says 400), the pair supported, the format known.
pub fn translate_request(fields: &Fields, max_chars: usize) -> Result<TranslateRequest, ApiError> {
    let texts = fields.texts()?;
    let language = |name: &str| -> Result<String, ApiError> {
        match fields.string(name)? {
            None | Some("") => Err(ApiError::missing(name)),
            Some(code) => Ok(code.trim().to_ascii_lowercase()),
        }
    };
    let source = language("source")?;
    let target = language("target")?;
    let alternatives = fields.number("alternatives")?.unwrap_or(0);
    check_length(&texts, max_chars)?;
    let source = match source.as_str() {
        "auto" => Source::Auto,
        SOURCE => Source::Arabic,
        TARGET => {
            return Err(ApiError::bad_request(format!(
                "{} ({target}) is not available as a target language from English (en)",
                language_name(&target).unwrap_or(&target)
            )))
        }
        other => return Err(ApiError::bad_request(format!("{other} is not supported"))),
    };
    if target != TARGET {
        return Err(match language_name(&target) {
            Some(name) => ApiError::bad_request(format!(
                "{name} ({target}) is not available as a target language from Arabic (ar)"
            )),
            None => ApiError::bad_request(format!("{target} is not supported")),
        });
    }
    Ok(TranslateRequest {
        texts,
        source,
        format: Format::of(fields)?,
        alternatives,
    })
}

/// 413 when the texts hold more than `max_chars` characters.
pub fn check_length(texts: &Texts, max_chars: usize) -> Result<(), ApiError> {
    let chars = texts.chars();
    if chars > max_chars {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Invalid request: request ({chars} characters) exceeds text limit ({max_chars}); send the text in smaller requests"
            ),
        ));
    }
    Ok(())
}

/// A `POST /summarize`.
#[derive(Debug)]
pub struct SummarizeRequest {
    pub texts: Texts,
    pub length: SummaryLength,
    pub format: Format,
}

/// Checks a `/summarize` request: `q`, at most one of `sentences` and `words` (3 sentences by
/// default), each at least 1.
pub fn summarize_request(fields: &Fields, max_chars: usize) -> Result<SummarizeRequest, ApiError> {
    let texts = fields.texts()?;
    let sentences = fields.number("sentences")?;
    let words = fields.number("words")?;
    let length = match (sentences, words) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Invalid request: give sentences or words, not both",
            ))
        }
        (Some(0), _) => {
            return Err(ApiError::bad_request(
                "Invalid request: sentences must be at least 1",
            ))
        }
        (_, Some(0)) => {
            return Err(ApiError::bad_request(
                "Invalid request: words must be at least 1",
            ))
        }
        (Some(n), None) => SummaryLength::Sentences(n.min(1000) as usize),
        (None, Some(n)) => SummaryLength::Words(n.min(100_000) as usize),
        (None, None) => SummaryLength::Sentences(3),
    };
    check_length(&texts, max_chars)?;
    Ok(SummarizeRequest {
        texts,
        length,
        format: Format::of(fields)?,
    })
}

/// A `POST /detect`: its one text (LibreTranslate detects a list's texts together).
pub fn detect_request(fields: &Fields, max_chars: usize) -> Result<String, ApiError> {
    let texts = fields.texts()?;
    check_length(&texts, max_chars)?;
    Ok(texts.as_slice().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Result<Fields, ApiError> {
        Fields::parse(Some("application/json"), body.as_bytes(), None)
    }

    fn form(body: &str) -> Result<Fields, ApiError> {
        Fields::parse(
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
            None,
        )
    }

    #[test]
    fn q_keeps_its_shape_and_languages_are_checked_in_libretranslates_order() {
        let f = json(r#"{"q": ["a", "b"], "source": "AR", "target": "en"}"#).unwrap();
        let r = translate_request(&f, 100).unwrap();
        assert_eq!(r.texts, Texts::Many(vec!["a".into(), "b".into()]));
        assert_eq!(r.source, Source::Arabic);
        let f = form("q=%D9%85&source=auto&target=en&format=html").unwrap();
        let r = translate_request(&f, 100).unwrap();
        assert_eq!((r.source, r.format), (Source::Auto, Format::Html));
        let err = |body: &str| translate_request(&json(body).unwrap(), 100).unwrap_err();
        assert_eq!(
            err(r#"{"source": "fr"}"#).message,
            "Invalid request: missing q parameter"
        );
        assert_eq!(
            err(r#"{"q": "x", "source": "fr", "target": "en"}"#).message,
            "fr is not supported"
        );
        assert_eq!(
            err(r#"{"q": "x", "source": "ar", "target": "de"}"#).message,
            "de is not supported"
        );
        assert_eq!(
            err(r#"{"q": "x", "source": "en", "target": "ar"}"#).message,
            "Arabic (ar) is not available as a target language from English (en)"
        );
        assert_eq!(
            err(r#"{"q": 3, "source": "ar", "target": "en"}"#).status,
            400
        );
    }

    #[test]
    fn the_character_limit_counts_characters_not_bytes() {
        let f = json(r#"{"q": ["مرحبا", "ab"], "source": "ar", "target": "en"}"#).unwrap();
        assert!(translate_request(&f, 7).is_ok());
        assert_eq!(translate_request(&f, 6).unwrap_err().status, 413);
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused() {
        assert_eq!(json("[1]").unwrap_err().message, "Invalid JSON format");
        assert!(json("{")
            .unwrap_err()
            .message
            .starts_with("Invalid request: the body is not valid JSON"));
        let f = Fields::parse(None, b"q=x", Some("source=ar&q=ignored")).unwrap();
        assert_eq!(f.string("q").unwrap(), Some("x"));
        assert_eq!(f.string("source").unwrap(), Some("ar"));
    }
}
