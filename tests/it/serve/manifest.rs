//! `deploy/kubernetes/serve.yaml` run as its container would run it: the Deployment's `args`
//! read from the manifest (so they cannot drift from what is tested), with what a test machine
//! lacks replaced (the model by the fixture, the keys file by a temporary one, the port by a
//! free one); the probes' path must answer, and SIGTERM must drain within the grace period.

use serde_json::json;

use super::{keys_file, Server};
use crate::common::fixtures;

/// The manifest's first `args: [...]` list (a YAML flow sequence of quoted words, on one or
/// more lines).
fn manifest_args(manifest: &str) -> Vec<String> {
    let start = manifest.find("args: [").expect("the Deployment has args") + "args: [".len();
    let end = start + manifest[start..].find(']').expect("args end with ]");
    manifest[start..end]
        .split(',')
        .map(|w| w.trim().trim_matches('"').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn the_kubernetes_deployment_serves_with_its_own_arguments() {
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/serve.yaml"),
    )
    .unwrap();
    let args = manifest_args(&manifest);
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag);
        i.map(|i| args[i + 1].clone())
    };
    // The probes and the Service reach the port the server binds.
    let port = value("--port").expect("the manifest sets --port");
    assert!(
        manifest.contains(&format!("containerPort: {port}")),
        "{manifest}"
    );
    assert!(manifest.contains("path: /health"), "the probes ask /health");
    assert_eq!(
        value("--host").as_deref(),
        Some("0.0.0.0"),
        "reachable from the Service"
    );

    let dir = tempfile::tempdir().unwrap();
    let keys = keys_file(dir.path(), "newsroom-key\n");
    let marian = fixtures().join("marian-tiny").display().to_string();
    let mut run: Vec<String> = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--port" => {
                rest.next();
            }
            "--model" | "--api-keys" => {
                rest.next();
                run.push(arg.clone());
                run.push(if arg == "--model" {
                    marian.clone()
                } else {
                    keys.clone()
                });
            }
            _ => run.push(arg.clone()),
        }
    }
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let mut server = Server::spawn(&run);
    server.wait_ready();
    let answer = server.post_json(
        "/translate",
        &json!({"q": "مرحبا بكم", "source": "ar", "target": "en", "api_key": "newsroom-key"}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    server.terminate();
    assert_eq!(server.wait().code(), Some(0));
}
