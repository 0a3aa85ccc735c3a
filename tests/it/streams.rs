//! JSON Lines streams under schedulers and pipes, on the tiny fixture model: SIGTERM and SIGHUP
//! stop a run the way Ctrl-C does and keep every finished record, a `kill -9` loses at most the
//! window in flight and a rerun resumes without rewriting what was written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{fixtures, ntrex_lines, stderr_of, translate_cmd};

mod pipes;

/// `n` NTREX lines as JSON Lines records with ids 0..n, in `dir/in.jsonl`.
fn records(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("in.jsonl");
    let text: String = ntrex_lines("ar.txt")
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, line)| format!("{}\n", serde_json::json!({"id": i, "text": line})))
        .collect();
    fs::write(&path, text).unwrap();
    path
}

/// `tarjama translate` from JSON Lines to JSON Lines with the tiny model, as a child process.
fn spawn(cache: &Path, input: &Path, output: &Path, batch: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("HF_HOME", cache)
        .args(["translate", "--quiet", "--beams", "1", "--batch-size"])
        .arg(batch.to_string())
        .args(["--batch-tokens", "60000"])
        .arg("--model")
        .arg(fixtures().join("marian-tiny"))
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The most lines any file of `dir` (the stream or a temporary file) holds.
fn lines_written(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().to_string();
            (name != "in.jsonl").then(|| fs::read(e.path()).ok())?
        })
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .max()
        .unwrap_or(0)
}

/// Waits until `n` records are written, failing if the run ends first or takes a minute.
fn wait_for_records(dir: &Path, n: usize, child: &mut Child) {
    let started = Instant::now();
    while lines_written(dir) < n {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(started.elapsed() < Duration::from_secs(60), "no records");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the child to end, at most `limit`; kills it and fails after that.
fn wait_at_most(mut child: Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("the run did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: signalling a child process we own, by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}

/// The records of a JSON Lines file by id (each must be valid JSON, and appear once).
fn by_id(path: &Path) -> BTreeMap<u64, serde_json::Value> {
    let mut out = BTreeMap::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = record["id"].as_u64().unwrap();
        assert!(out.insert(id, record).is_none(), "id {id} written twice");
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// What an uninterrupted run writes for the first `n` records.
fn reference(n: usize) -> BTreeMap<u64, serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    let input = records(tmp.path(), n);
    let output = tmp.path().join("out.jsonl");
    translate_cmd(tmp.path())
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .assert()
        .success();
    by_id(&output)
}

/// Each record written is the one an uninterrupted run writes, and they are the first ones.
fn assert_finished_records(written: &BTreeMap<u64, serde_json::Value>, n: usize) {
    let want = reference(n);
    let ids: Vec<u64> = written.keys().copied().collect();
    assert_eq!(
        ids,
        (0..ids.len() as u64).collect::<Vec<_>>(),
        "input order"
    );
    for (id, record) in written {
        assert_eq!(record["english"], want[id]["english"], "record {id}");
    }
}

#[test]
fn sigterm_and_sighup_stop_after_the_batch_and_keep_every_finished_record() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let tmp = tempfile::tempdir().unwrap();
        let input = records(tmp.path(), 150);
        let output = tmp.path().join("out.jsonl");
        let mut child = spawn(tmp.path(), &input, &output, 2);
        wait_for_records(tmp.path(), 8, &mut child);
        signal(&child, sig);
        let out = wait_at_most(child, Duration::from_secs(60));
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "signal {sig}: {stderr}");
        assert!(
            stderr.contains("stopping after the current batch"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        let written = by_id(&output);
        assert!(
            (8..150).contains(&written.len()),
            "signal {sig}: {} records",
            written.len()
        );
        assert_eq!(
            names(tmp.path()),
            ["in.jsonl", "out.jsonl"],
            "no temporary or lock file is left"
        );
        assert_finished_records(&written, 150);
    }
}

#[test]
fn a_second_sigterm_stops_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let input = records(tmp.path(), 600);
    let output = tmp.path().join("out.jsonl");
    // One batch of 512 sentences takes the tiny model over 10 s (measured: 13 s after the first
    // signal alone), and the run stops only once it is done.
    let mut child = spawn(tmp.path(), &input, &output, 512);
    let started = Instant::now();
    while names(tmp.path()).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Model loading is quick; then the first batch is being translated.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none());
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    let second = Instant::now();
    signal(&child, libc::SIGTERM);
    let out = wait_at_most(child, Duration::from_secs(60));
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "took {:?} after the second signal",
        second.elapsed()
    );
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    assert_eq!(names(tmp.path()), ["in.jsonl"], "nothing was finished");
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().ino()
}

#[test]
fn a_killed_stream_keeps_its_records_and_a_rerun_appends_without_rewriting_them() {
    let tmp = tempfile::tempdir().unwrap();
    let input = records(tmp.path(), 80);
    let output = tmp.path().join("out.jsonl");
    let mut child = spawn(tmp.path(), &input, &output, 2);
    wait_for_records(tmp.path(), 10, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // The records are in the output itself, synced a window at a time.
    let mut killed = fs::read(&output).unwrap();
    let whole = killed.len() - killed.iter().rev().take_while(|&&b| b != b'\n').count();
    assert!(killed[..whole].iter().filter(|&&b| b == b'\n').count() >= 10);
    // A record cut off mid-line, as a kill during its write leaves it.
    killed.truncate(whole);
    let next = fs::read_to_string(&output).unwrap().lines().count();
    let cut = serde_json::json!({"id": next, "english": ["cut off"]}).to_string();
    killed.extend_from_slice(&cut.as_bytes()[..cut.len() / 2]);
    fs::write(&output, &killed).unwrap();
    let before = inode(&output);
    // A temporary file another killed run left, of any output kind.
    fs::write(tmp.path().join(".tarjama-4194305-stale.tmp"), "left").unwrap();

    let out = translate_cmd(tmp.path())
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("cut off by a killed run"), "{stderr}");
    let after = fs::read(&output).unwrap();
    assert_eq!(inode(&output), before, "appended in place, not replaced");
    assert_eq!(
        after[..whole],
        killed[..whole],
        "the earlier records are not rewritten"
    );
    assert_eq!(names(tmp.path()), ["in.jsonl", "out.jsonl"]);
    let records = by_id(&output);
    assert_eq!(records.len(), 80, "every id once, no cut line");
    assert_finished_records(&records, 80);
}
