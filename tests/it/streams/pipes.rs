//! Pipe mode: input from a pipe is translated as it arrives, each record or paragraph written as
//! soon as it is done (a co-process conversation completes), a closed standard output ends the
//! run quietly, and bad records in a stream are reported one line each while the run goes on.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::wait_at_most;
use crate::common::{fixtures, ntrex_lines, stderr_of, stdout_of, translate_cmd};

/// `tarjama translate` with the tiny model reading a pipe, not quiet: anything on stderr shows.
fn spawn(args: &[&str], cache: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("HF_HOME", cache)
        .args(["translate", "--beams", "1", "--model"])
        .arg(fixtures().join("marian-tiny"))
        // Progress lines (plain, every 10 s, off a terminal) would be on stderr, which the
        // tests read for errors only.
        .args(["--progress", "none"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The lines of the child's stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if send.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    receive
}

/// Writes one input line at a time and reads its translation back before writing the next:
/// without pipe mode the first answer never comes (it waited for the end of the input), and
/// the test fails after its timeout instead of hanging.
fn converse(args: &[&str], inputs: &[String]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = spawn(args, tmp.path());
    let mut stdin = child.stdin.take().unwrap();
    let answers = lines_of(&mut child);
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        writeln!(stdin, "{input}").unwrap();
        stdin.flush().unwrap();
        match answers.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => out.push(line),
            Err(_) => {
                child.kill().unwrap();
                panic!("no answer to input {i} while the pipe stays open");
            }
        }
    }
    drop(stdin);
    let rest = wait_at_most(child, Duration::from_secs(60));
    assert!(rest.status.success(), "{}", stderr_of(&rest));
    let stderr = stderr_of(&rest);
    assert!(!stderr.contains("error"), "{stderr}");
    out
}

#[test]
fn a_co_process_gets_each_paragraph_back_before_sending_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let arabic: Vec<String> = ntrex_lines("ar.txt").into_iter().take(4).collect();
    // What a run over the whole input at once gives, line by line.
    let whole = stdout_of(translate_cmd(tmp.path()).write_stdin(arabic.join("\n") + "\n"));
    let answers = converse(&[], &arabic);
    assert_eq!(answers, whole.lines().collect::<Vec<_>>());
}

#[test]
fn a_co_process_gets_each_record_back_before_sending_the_next() {
    let records: Vec<String> = ntrex_lines("ar.txt")
        .iter()
        .skip(10)
        .take(4)
        .enumerate()
        .map(|(i, text)| serde_json::json!({"id": i, "text": text, "url": i * 7}).to_string())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let whole = stdout_of(
        translate_cmd(tmp.path())
            .args(["--input-format", "jsonl", "--format", "jsonl"])
            .write_stdin(records.join("\n") + "\n"),
    );
    let answers = converse(&["--input-format", "jsonl", "--format", "jsonl"], &records);
    assert_eq!(answers, whole.lines().collect::<Vec<_>>());
    for (i, answer) in answers.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(answer).unwrap();
        assert_eq!(
            (&record["id"], &record["url"]),
            (&i.into(), &(i * 7).into())
        );
    }
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let lines = ntrex_lines("ar.txt");
    let text = lines[..300].join("\n") + "\n";
    let records: String = lines[..300]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}\n", serde_json::json!({"id": i, "text": t})))
        .collect();
    for (args, input) in [
        (vec![], text),
        (
            vec!["--input-format", "jsonl", "--format", "jsonl"],
            records,
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = spawn(&args, tmp.path());
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        // `| head -1`: one line read, then the pipe is closed while the run has far to go.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(!first.trim().is_empty());
        drop(stdout);
        let out = wait_at_most(child, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr_of(&out));
        assert_eq!(stderr_of(&out), "", "{args:?}: nothing on stderr");
    }
}

#[test]
fn bad_records_in_a_stream_are_reported_one_line_each_and_the_run_goes_on() {
    let lines = ntrex_lines("ar.txt");
    let good = |i: usize| serde_json::json!({"id": i, "text": lines[i]}).to_string();
    let huge = serde_json::json!({"id": "huge", "text": "ب".repeat(9 << 20)}).to_string();
    let mut input = Vec::new();
    for line in [
        good(0),
        "not json".to_string(),
        serde_json::json!({"id": "no-text", "body": "x"}).to_string(),
        huge,
        good(1),
    ] {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(b"{\"id\": \"latin1\", \"text\": \"caf\xe9\"}\n");
    input.extend_from_slice(good(2).as_bytes());
    input.push(b'\n');

    let tmp = tempfile::tempdir().unwrap();
    let mut child = spawn(
        &["--input-format", "jsonl", "--format", "jsonl"],
        tmp.path(),
    );
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_at_most(child, Duration::from_secs(120));
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "some inputs failed: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tarjama: error:"))
        .collect();
    assert_eq!(errors.len(), 4, "one line per bad record: {stderr}");
    for (line, why) in [
        (2, "is not a JSON object"),
        (3, "has no field \"text\""),
        (4, "more than 16 MiB"),
        (6, "is not UTF-8"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("-:{line}")) && e.contains(why)),
            "{why}: {stderr}"
        );
    }
    assert!(
        stderr.contains("7 inputs: 3 translated, 4 failed:"),
        "{stderr}"
    );
    let ids: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
        .collect();
    assert_eq!(ids, [0, 1, 2].map(serde_json::Value::from));
}

#[test]
fn sigterm_ends_a_co_process_waiting_for_its_next_record() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [vec![], vec!["--input-format", "jsonl", "--format", "jsonl"]] {
        let mut child = spawn(&args, tmp.path());
        let mut stdin = child.stdin.take().unwrap();
        let answers = lines_of(&mut child);
        let line = &ntrex_lines("ar.txt")[0];
        let input = match args.len() {
            0 => line.clone(),
            _ => serde_json::json!({"id": 0, "text": line}).to_string(),
        };
        writeln!(stdin, "{input}").unwrap();
        stdin.flush().unwrap();
        answers.recv_timeout(Duration::from_secs(60)).unwrap();
        // The writer keeps the pipe open and sends nothing more, as an idle co-process's does.
        super::signal(&child, libc::SIGTERM);
        let out = wait_at_most(child, Duration::from_secs(10));
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(143), "{args:?}: {stderr}");
        assert!(stderr.contains("SIGTERM"), "{stderr}");
        assert!(!stderr.contains("empty"), "{stderr}");
        drop(stdin);
    }
}
