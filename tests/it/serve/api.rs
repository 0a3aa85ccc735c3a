//! The endpoints, in LibreTranslate's shapes, and the 400s and 404s of bad requests.

use serde_json::{json, Value};

use super::{cli_translations, Server};
use crate::common::{fixtures, ntrex_lines, real_test_model};

#[test]
fn translate_answers_in_the_shape_of_q_with_the_command_lines_english() {
    let lines: Vec<String> = ntrex_lines("ar.txt")[10..13].to_vec();
    let english = cli_translations(&lines);
    let server = Server::start(&[]);

    let one = server.translate(json!(lines[0]));
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json(), json!({"translatedText": english[0]}));

    let many = server.translate(json!(lines));
    assert_eq!(many.json(), json!({"translatedText": english}));

    // A form, as libretranslatepy and browser extensions send, and query parameters.
    let form = server.post_form(
        "/translate",
        &[("q", &lines[1]), ("source", "ar"), ("target", "en")],
    );
    assert_eq!(form.json(), json!({"translatedText": english[1]}));
    let query = server.post(
        "/translate?source=ar&target=en",
        "application/x-www-form-urlencoded",
        &format!("q={}", urlencode(&lines[2])),
    );
    assert_eq!(query.json(), json!({"translatedText": english[2]}));

    // Lines of one text keep their layout; text without Arabic passes through; empty stays empty.
    let text = format!("{}\n\n2024\n{}\n", lines[0], lines[1]);
    let layout = server.translate(json!([text, "123 abc", ""]));
    assert_eq!(
        layout.json()["translatedText"],
        json!([
            format!("{}\n\n2024\n{}\n", english[0], english[1]),
            "123 abc",
            ""
        ])
    );

    // Alternatives are not made: an empty list for each text, as LibreTranslate does for HTML.
    let alternatives = server.post_json(
        "/translate",
        &json!({"q": [lines[0]], "source": "ar", "target": "en", "alternatives": 3}),
    );
    assert_eq!(
        alternatives.json(),
        json!({"translatedText": [english[0]], "alternatives": [[]]})
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn html_keeps_the_markup_and_translates_the_text_nodes() {
    let lines: Vec<String> = ntrex_lines("ar.txt")[20..22].to_vec();
    let english = cli_translations(&lines);
    let server = Server::start(&[]);
    let page = format!(
        "<!DOCTYPE html><html><head><title>{}</title><style>p {{ color: red }}</style></head>\n<body><p class=\"lead\" data-x='نص'>\n  {} <a href=\"/x?a=1&amp;b=2\">link</a></p><!-- تعليق --><script>var s = \"نص\";</script></body></html>",
        lines[0], lines[1]
    );
    let answer = server.post_json(
        "/translate",
        &json!({"q": page, "source": "ar", "target": "en", "format": "html"}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let want = format!(
        "<!DOCTYPE html><html><head><title>{}</title><style>p {{ color: red }}</style></head>\n<body><p class=\"lead\" data-x='نص'>\n  {} <a href=\"/x?a=1&amp;b=2\">link</a></p><!-- تعليق --><script>var s = \"نص\";</script></body></html>",
        escape(&english[0]),
        escape(&english[1])
    );
    assert_eq!(answer.json()["translatedText"], json!(want));
}

#[test]
fn languages_detect_health_metrics_and_unknown_routes() {
    let server = Server::start(&[]);
    assert_eq!(
        server.get("/languages").json(),
        json!([
            {"code": "ar", "name": "Arabic", "targets": ["en"]},
            {"code": "en", "name": "English", "targets": []}
        ])
    );
    assert_eq!(server.get("/health").json(), json!({"status": "ok"}));

    let detected = server.post_form("/detect", &[("q", "قال الرئيس إن الاجتماع سيعقد غدا")]);
    assert_eq!(detected.status, 200, "{}", detected.body);
    let first = &detected.json()[0];
    assert_eq!(first["language"], "ar");
    let confidence = first["confidence"].as_f64().unwrap();
    assert!(confidence > 50.0 && confidence <= 100.0, "{confidence}");

    let auto = server.post_json(
        "/translate",
        &json!({"q": "قال الرئيس إن الاجتماع سيعقد غدا", "source": "auto", "target": "en"}),
    );
    assert_eq!(auto.status, 200, "{}", auto.body);
    assert_eq!(auto.json()["detectedLanguage"]["language"], "ar");

    // Persian is Arabic script, and not Arabic: detected as such, and not translated.
    let persian = std::fs::read_to_string(fixtures().join("language/fa.txt")).unwrap();
    let persian = persian.lines().next().unwrap();
    let detected = server.post_form("/detect", &[("q", persian)]);
    assert_eq!(detected.json()[0]["language"], "fa", "{}", detected.body);
    let refused = server.post_json(
        "/translate",
        &json!({"q": [persian], "source": "auto", "target": "en"}),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.error().starts_with("fa is not supported"),
        "{}",
        refused.body
    );
    // Text without letters has no language, and passes through as from source=ar.
    let numbers = server.post_json(
        "/translate",
        &json!({"q": ["2024", "12:30"], "source": "auto", "target": "en"}),
    );
    assert_eq!(
        numbers.json(),
        json!({"translatedText": ["2024", "12:30"], "detectedLanguage": [
            {"confidence": 0.0, "language": "und"}, {"confidence": 0.0, "language": "und"}]})
    );

    let missing = server.get("/nothing/here");
    assert_eq!(missing.status, 404);
    assert!(
        missing.error().contains("GET /nothing/here"),
        "{}",
        missing.body
    );

    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    for needle in [
        "tarjama_http_requests_total{endpoint=\"/detect\",status=\"200\"} 2",
        "tarjama_http_requests_total{endpoint=\"other\",status=\"404\"} 1",
        "tarjama_http_errors_total{endpoint=\"other\",status=\"404\"} 1",
        "tarjama_http_request_duration_seconds_count{endpoint=\"/translate\"} 3",
        "tarjama_queue_depth 0",
        "tarjama_model_loaded 1",
        "tarjama_batch_sentences_count 1",
        "# EOF",
    ] {
        assert!(
            metrics.body.contains(needle),
            "no {needle} in\n{}",
            metrics.body
        );
    }
}

#[test]
fn bad_requests_get_a_400_with_one_clear_message() {
    let server = Server::start(&[]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "application/json",
            "{\"q\": ",
            "Invalid request: the body is not valid JSON",
        ),
        ("application/json", "[\"q\"]", "Invalid JSON format"),
        (
            "application/json",
            "{\"source\": \"ar\", \"target\": \"en\"}",
            "Invalid request: missing q parameter",
        ),
        (
            "application/json",
            "{\"q\": \"\", \"source\": \"ar\", \"target\": \"en\"}",
            "Invalid request: missing q parameter",
        ),
        (
            "application/json",
            "{\"q\": [], \"source\": \"ar\", \"target\": \"en\"}",
            "Invalid request: missing q parameter",
        ),
        (
            "application/json",
            "{\"q\": 3, \"source\": \"ar\", \"target\": \"en\"}",
            "Invalid request: q must be a string or an array of strings",
        ),
        (
            "application/json",
            "{\"q\": [\"a\", 1], \"source\": \"ar\", \"target\": \"en\"}",
            "Invalid request: q must be a string or an array of strings",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"target\": \"en\"}",
            "Invalid request: missing source parameter",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": \"ar\"}",
            "Invalid request: missing target parameter",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": [\"ar\"], \"target\": \"en\"}",
            "Invalid request: source must be a string",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": \"ar\", \"target\": \"en\", \"alternatives\": \"many\"}",
            "Invalid request: alternatives parameter is not a number",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": \"fr\", \"target\": \"en\"}",
            "fr is not supported",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": \"ar\", \"target\": \"de\"}",
            "de is not supported",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": \"en\", \"target\": \"ar\"}",
            "Arabic (ar) is not available as a target language from English (en)",
        ),
        (
            "application/json",
            "{\"q\": \"x\", \"source\": \"ar\", \"target\": \"en\", \"format\": \"pdf\"}",
            "pdf format is not supported",
        ),
        (
            "application/x-www-form-urlencoded",
            "source=ar&target=en",
            "Invalid request: missing q parameter",
        ),
        (
            "multipart/form-data; boundary=x",
            "--x--",
            "Invalid request: multipart/form-data is not supported",
        ),
        (
            "application/x-www-form-urlencoded",
            "q=%FF%FE&source=ar&target=en",
            "Invalid request: the form is not valid UTF-8",
        ),
    ];
    for (content_type, body, message) in cases {
        let answer = server.post("/translate", content_type, body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(
            answer.error().starts_with(message),
            "{body}: {}",
            answer.body
        );
    }
    for (path, allowed) in [("/translate", "POST"), ("/metrics", "GET")] {
        let wrong = if allowed == "POST" {
            server.get(path)
        } else {
            server.post(path, "application/json", "{}")
        };
        assert_eq!(wrong.status, 405, "{}", wrong.body);
        assert!(
            wrong.error().ends_with(&format!("use {allowed}")),
            "{}",
            wrong.body
        );
    }

    let detect = server.post_json("/detect", &json!({"text": "x"}));
    assert_eq!(detect.status, 400);
    assert_eq!(detect.error(), "Invalid request: missing q parameter");

    let summarize = server.post_json("/summarize", &json!({"q": "نص"}));
    assert_eq!(summarize.status, 404, "{}", summarize.body);
    assert!(
        summarize.error().contains("--summarizer"),
        "{}",
        summarize.body
    );
    // The server still answers after all that.
    assert_eq!(server.translate(json!("نص")).status, 200);
}

#[test]
fn summarize_answers_in_the_shape_of_q() {
    let article = ntrex_lines("ar.txt")[..6].join("\n\n");
    let bart = fixtures().join("bart-tiny");
    // The fixture's summaries are noise, which the summary check may drop whole: this test is
    // about the answers' shape (the check is tested in tests/it/summary_check.rs).
    let server = Server::start(&["--summarizer", bart.to_str().unwrap(), "--no-check"]);
    let one = server.post_json("/summarize", &json!({"q": article, "sentences": 1}));
    assert_eq!(one.status, 200, "{}", one.body);
    let summary = one.json()["summary"].as_str().unwrap().to_string();
    assert!(!summary.trim().is_empty());

    let many = server.post_form(
        "/summarize",
        &[("q", &article), ("words", "5"), ("format", "text")],
    );
    assert_eq!(many.status, 200, "{}", many.body);
    assert!(many.json()["summary"].is_string());
    let list = server.post_json(
        "/summarize",
        &json!({"q": [article, format!("<p>{article}</p>")], "format": "html"}),
    );
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["summary"].as_array().map(Vec::len), Some(2));

    for (body, message) in [
        (
            json!({"q": article, "sentences": 2, "words": 3}),
            "Invalid request: give sentences or words, not both",
        ),
        (
            json!({"q": article, "sentences": 0}),
            "Invalid request: sentences must be at least 1",
        ),
        (
            json!({"q": "   \n "}),
            "Invalid request: the input has nothing to summarize",
        ),
    ] {
        let answer = server.post_json("/summarize", &body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(answer.error().starts_with(message), "{}", answer.body);
    }
}

/// With a model that takes a moment to load, `/health` answers 503 until it is loaded, and
/// translations are refused meanwhile with 503 and `Retry-After`.
#[test]
fn health_is_503_until_the_model_is_loaded() {
    let Some(model) = real_test_model() else {
        return;
    };
    let server = Server::spawn(&["--model", model.to_str().unwrap()]);
    let first = server.get("/health");
    if first.status == 200 {
        eprintln!("skipped: the model loaded before the first /health");
        return;
    }
    assert_eq!(first.status, 503);
    assert_eq!(first.json(), json!({"status": "loading"}));
    let early = server.translate(json!("نص"));
    assert_eq!(early.status, 503, "{}", early.body);
    assert_eq!(early.retry_after.as_deref(), Some("5"));
    server.wait_ready();
    let _: Value = server.get("/health").json();
}
