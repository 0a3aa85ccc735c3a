//! `tarjama serve`: the real binary on a free port with the tiny Marian fixture, over HTTP.
//! [`Server`] starts one and speaks to it; the submodules test the API, the limits and errors,
//! signals, batching under concurrency, and the request parser.

mod api;
mod concurrency;
mod limits;
mod manifest;
mod parser;
mod signals;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::fixtures;

/// A running `tarjama serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Its stderr's lines, as they come.
    stderr: Mutex<mpsc::Receiver<String>>,
    _cache: tempfile::TempDir,
}

/// An answer: status, body, and the `Retry-After` header.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `error` of an error answer, which must be the body's only field.
    pub fn error(&self) -> String {
        let json = self.json();
        let object = json.as_object().expect("an object");
        assert_eq!(object.len(), 1, "{}", self.body);
        object["error"].as_str().expect("a string").to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(300))
        .build()
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("no answer: {e}"),
    };
    Answer {
        status: response.status(),
        retry_after: response.header("Retry-After").map(str::to_string),
        body: response.into_string().unwrap(),
    }
}

impl Server {
    /// `tarjama serve --port 0` with marian-tiny (greedy, as `common::translate_cmd`) and
    /// `args`, once it answers `/health` with 200.
    pub fn start(args: &[&str]) -> Server {
        let marian = fixtures().join("marian-tiny");
        let mut all = vec!["--beams", "1", "--model", marian.to_str().unwrap()];
        all.extend(args);
        let server = Self::spawn(&all);
        server.wait_ready();
        server
    }

    /// `tarjama serve --port 0 ARGS`, listening, perhaps still loading.
    pub fn spawn(args: &[&str]) -> Server {
        let cache = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tarjama"));
        cmd.env("HF_HOME", cache.path())
            .env("HF_HUB_OFFLINE", "1")
            .args(["serve", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                eprintln!("server: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the server prints its address");
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child,
            base: format!("http://{address}"),
            stderr: Mutex::new(stderr),
            _cache: cache,
        }
    }

    pub fn wait_ready(&self) {
        let started = Instant::now();
        while self.get("/health").status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not ready after 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        answer(agent().get(&format!("{}{path}", self.base)).call())
    }

    pub fn post(&self, path: &str, content_type: &str, body: &str) -> Answer {
        answer(
            agent()
                .post(&format!("{}{path}", self.base))
                .set("Content-Type", content_type)
                .send_string(body),
        )
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post(path, "application/json", &body.to_string())
    }

    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        answer(
            agent()
                .post(&format!("{}{path}", self.base))
                .send_form(fields),
        )
    }

    /// `/translate` of `q` from Arabic into English, as JSON.
    pub fn translate(&self, q: Value) -> Answer {
        self.post_json(
            "/translate",
            &serde_json::json!({"q": q, "source": "ar", "target": "en"}),
        )
    }

    /// The value of an unlabelled metric.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").body;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    /// Waits until `n` requests are admitted (waiting or being translated).
    pub fn wait_for_queue(&self, n: f64) {
        let started = Instant::now();
        while self.metric("tarjama_queue_depth") < n {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "queue never reached {n}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most a minute.
    pub fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stderr lines printed so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tarjama translate` of each line of `lines` (one run over a file of them), line by line.
pub fn cli_translations(lines: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let mut cmd = crate::common::translate_cmd(&dir.path().join("cache"));
    let out = crate::common::stdout_of(cmd.arg(&input));
    out.lines().map(str::to_string).collect()
}

/// A file of API keys in `dir`.
pub fn keys_file(dir: &Path, keys: &str) -> String {
    let path = dir.join("keys.txt");
    std::fs::write(&path, keys).unwrap();
    path.display().to_string()
}
