//! The limits: text and body size (413), API keys (403), the bounded queue (429 with
//! Retry-After) and the per-request timeout (504).

use serde_json::json;

use super::{keys_file, Server};
use crate::common::ntrex_lines;

/// A request that keeps the tiny model busy for a few seconds: many lines of one text.
pub fn long_text(lines: usize) -> String {
    ntrex_lines("ar.txt")[..lines].join("\n")
}

#[test]
fn too_much_text_or_too_large_a_body_is_a_413() {
    let server = Server::start(&["--max-chars", "20"]);
    let ok = server.translate(json!(["مرحبا بكم", "في الموقع"]));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let over = server.translate(json!(["مرحبا بكم في", "الموقع الجديد للجريدة"]));
    assert_eq!(over.status, 413, "{}", over.body);
    assert_eq!(
        over.error(),
        "Invalid request: request (33 characters) exceeds text limit (20); send the text in smaller requests"
    );
    // The body limit: 12 bytes a character and 64 KiB for the rest.
    let padding = " ".repeat(20 * 12 + 64 * 1024 + 1);
    let body = format!("{{\"q\": \"x\", \"source\": \"ar\", \"target\": \"en\"{padding}}}");
    let huge = server.post("/translate", "application/json", &body);
    assert_eq!(
        huge.status,
        413,
        "{}",
        &huge.body[..huge.body.len().min(300)]
    );
    assert!(huge.error().contains("larger than"), "{}", huge.body);
    let detect = server.post_form("/detect", &[("q", &"ب".repeat(21))]);
    assert_eq!(detect.status, 413);
}

#[test]
fn with_api_keys_requests_need_a_valid_one() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_file(dir.path(), "# newsroom keys\nkey-one\n\n  key-two  \n");
    let server = Server::start(&["--api-keys", &keys]);
    let request = |key: Option<&str>| {
        let mut body = json!({"q": "مرحبا", "source": "ar", "target": "en"});
        if let Some(key) = key {
            body["api_key"] = json!(key);
        }
        server.post_json("/translate", &body)
    };
    let none = request(None);
    assert_eq!(none.status, 403, "{}", none.body);
    assert_eq!(
        none.error(),
        "Invalid request: this server needs an API key: pass api_key"
    );
    let wrong = request(Some("key-three"));
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.error(), "Invalid API key");
    assert_eq!(request(Some("key-one")).status, 200);
    assert_eq!(request(Some("key-two")).status, 200);
    let form = server.post_form("/detect", &[("q", "مرحبا"), ("api_key", "key-two")]);
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(server.post_form("/detect", &[("q", "مرحبا")]).status, 403);
    // What monitors and clients read before they have a key needs none.
    assert_eq!(server.get("/languages").status, 200);
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.get("/metrics").status, 200);
}

#[test]
fn a_keys_file_without_keys_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_file(dir.path(), "# none yet\n\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(["serve", "--port", "0", "--api-keys", &keys])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no key"), "{stderr}");
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = Server::start(&["--max-queue", "1", "--max-chars", "1000000"]);
    let text = long_text(120);
    std::thread::scope(|s| {
        let slow = s.spawn(|| server.translate(json!(text)));
        server.wait_for_queue(1.0);
        let refused = server.translate(json!("مرحبا"));
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.retry_after.as_deref(), Some("1"));
        assert!(
            refused.error().starts_with("Slowdown: "),
            "{}",
            refused.body
        );
        let slow = slow.join().unwrap();
        assert_eq!(slow.status, 200, "{}", slow.body);
    });
    // The place is given back.
    assert_eq!(server.translate(json!("مرحبا")).status, 200);
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("tarjama_http_requests_total{endpoint=\"/translate\",status=\"429\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_request_past_the_timeout_is_a_504() {
    let server = Server::start(&["--timeout", "0.3", "--max-chars", "1000000"]);
    let late = server.translate(json!(long_text(200)));
    assert_eq!(late.status, 504, "{}", late.body);
    assert!(
        late.error().starts_with("Timed out after 0.3 s"),
        "{}",
        late.body
    );
    // The worker drops the abandoned request after the batch it is in, and gives its place
    // back, without translating the rest of it.
    let started = std::time::Instant::now();
    while server.metric("tarjama_queue_depth") > 0.0 {
        assert!(
            started.elapsed().as_secs() < 60,
            "the abandoned request is never dropped"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let translated = server.metric("tarjama_translated_sentences_total");
    assert!(
        translated < 200.0,
        "{translated} sentences translated for nobody"
    );
}
