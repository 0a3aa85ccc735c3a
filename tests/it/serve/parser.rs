//! The request parser on random bodies: JSON of any shape (and near-JSON), forms of any fields,
//! any content type. It never panics, and every refusal is a 4xx with a message.

use proptest::prelude::*;
use serde_json::{json, Value};
use tarjama::serve::parsing::{summarize_request, translate_request, ApiError, Fields};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("ar"),
            Just("en"),
            Just("auto"),
            Just("html"),
            Just("text"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(field(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The fields the API reads, and others.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("q"),
        Just("source"),
        Just("target"),
        Just("format"),
        Just("alternatives"),
        Just("api_key"),
        Just("sentences"),
        Just("words"),
        Just("x"),
    ]
    .prop_map(str::to_string)
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_string())),
        Just(Some("application/json; charset=utf-8".to_string())),
        Just(Some("application/x-www-form-urlencoded".to_string())),
        Just(Some("multipart/form-data; boundary=x".to_string())),
        ".{0,20}".prop_map(Some),
    ]
}

/// Whether a refusal is a client error with something to say.
fn well_formed(e: &ApiError) -> bool {
    e.status.is_client_error() && !e.message.is_empty()
}

fn check(
    content_type: Option<&str>,
    body: &[u8],
    query: Option<&str>,
) -> Result<(), TestCaseError> {
    match Fields::parse(content_type, body, query) {
        Err(e) => prop_assert!(well_formed(&e), "{e:?}"),
        Ok(fields) => {
            for max_chars in [0, 5, 100_000] {
                if let Err(e) = translate_request(&fields, max_chars) {
                    prop_assert!(well_formed(&e), "{e:?}");
                }
                if let Err(e) = summarize_request(&fields, max_chars) {
                    prop_assert!(well_formed(&e), "{e:?}");
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn json_bodies(value in json_value(), ct in content_type()) {
        check(ct.as_deref(), value.to_string().as_bytes(), None)?;
    }

    #[test]
    fn cut_json_bodies(value in json_value(), cut in any::<prop::sample::Index>()) {
        let text = value.to_string();
        let bytes = &text.as_bytes()[..cut.index(text.len() + 1)];
        check(Some("application/json"), bytes, None)?;
    }

    #[test]
    fn form_bodies(
        pairs in prop::collection::vec((field(), ".{0,16}"), 0..8),
        ct in content_type(),
        query in proptest::option::of(".{0,30}"),
    ) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            form.append_pair(k, v);
        }
        check(ct.as_deref(), form.finish().as_bytes(), query.as_deref())?;
    }

    #[test]
    fn any_bytes(body in prop::collection::vec(any::<u8>(), 0..200), ct in content_type()) {
        check(ct.as_deref(), &body, None)?;
    }
}

#[test]
fn valid_requests_parse() {
    let fields = Fields::parse(
        Some("application/json"),
        br#"{"q": ["a"], "source": "ar", "target": "en"}"#,
        None,
    )
    .unwrap();
    assert!(translate_request(&fields, 10).is_ok());
}
