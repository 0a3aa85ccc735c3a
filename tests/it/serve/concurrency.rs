//! Many clients at once: every answer is the command line's English for the same text, and the
//! worker batched requests together.

use serde_json::json;

use super::{cli_translations, Server};
use crate::common::ntrex_lines;

const CLIENTS: usize = 64;
const REQUESTS: usize = 10;

#[test]
fn sixty_four_clients_get_the_command_lines_english_from_shared_batches() {
    let lines: Vec<String> = ntrex_lines("ar.txt")[..CLIENTS * REQUESTS].to_vec();
    let english = cli_translations(&lines);
    assert_eq!(english.len(), lines.len());
    let server = Server::start(&["--max-queue", "64"]);
    let answers: Vec<Vec<(usize, u16, String)>> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (server, lines) = (&server, &lines);
                s.spawn(move || {
                    (0..REQUESTS)
                        .map(|r| {
                            let i = c * REQUESTS + r;
                            let answer = server.translate(json!(lines[i]));
                            (i, answer.status, answer.body)
                        })
                        .collect()
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (i, status, body) in answers.into_iter().flatten() {
        assert_eq!(status, 200, "line {i}: {body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(got["translatedText"], json!(english[i]), "line {i}");
    }

    let metrics = server.get("/metrics").body;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let batches = value("tarjama_batch_requests_count");
    let single = value("tarjama_batch_requests_bucket{le=\"1.0\"}");
    eprintln!(
        "{} requests in {batches} batches, {single} of them of one request",
        CLIENTS * REQUESTS
    );
    assert!(single < batches, "no batch held more than one request");
    assert!(
        batches <= (CLIENTS * REQUESTS) as f64 / 2.0,
        "{batches} batches for {} requests: most should share",
        CLIENTS * REQUESTS
    );
}
