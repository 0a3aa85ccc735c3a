//! SIGTERM: the server stops accepting connections, answers the requests in flight, exits 0.

use std::time::Duration;

use serde_json::json;

use super::limits::long_text;
use super::{cli_translations, Server};
use crate::common::ntrex_lines;

#[test]
fn sigterm_drains_the_requests_in_flight_and_exits_0() {
    let mut server = Server::start(&["--max-chars", "1000000"]);
    let text = long_text(60);
    let want = cli_translations(&ntrex_lines("ar.txt")[..60]).join("\n");
    let base = server.base.clone();
    let answer = std::thread::scope(|s| {
        let in_flight = s.spawn(|| server.translate(json!(text)));
        server.wait_for_queue(1.0);
        server.terminate();
        in_flight.join().unwrap()
    });
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["translatedText"], json!(want));
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let stderr = server.stderr_lines().join("\n");
    assert!(stderr.contains("terminated (SIGTERM)"), "{stderr}");
    // Nothing listens any more.
    let refused = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build()
        .get(&format!("{base}/health"))
        .call();
    assert!(
        matches!(refused, Err(ureq::Error::Transport(_))),
        "{refused:?}"
    );
}

#[test]
fn sigterm_while_idle_exits_0_at_once() {
    let mut server = Server::start(&[]);
    server.terminate();
    assert_eq!(server.wait().code(), Some(0));
}
