//! Two runs never write one file at once, and only temporary files that nobody holds are
//! cleaned up.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{article, names, set, summarize_cmd, tarjama, translate_cmd};
use crate::common::{fixtures, ntrex_lines, stderr_of};

/// Waits for the run's lock file to appear in `dir`: it then holds the output's lock.
fn wait_for_lock_file(dir: &Path, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if names(dir).iter().any(|n| n.ends_with(".tarjama.lock")) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the first run ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the first run never opened its output");
}

#[test]
fn a_second_run_writing_the_same_stream_is_refused_and_no_record_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    fs::create_dir(&dir).unwrap();
    let output = dir.join("out.jsonl");
    let other = dir.join("other.jsonl");
    fs::write(&other, "{\"id\": \"other\", \"text\": \"مرحبا بكم\"}\n").unwrap();

    // The first run reads its records from a pipe, so it runs until the test closes it.
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("HF_HOME", tmp.path())
        .args(["translate", "--quiet", "--beams", "1", "--model"])
        .arg(fixtures().join("marian-tiny"))
        .args(["--input-format", "jsonl", "--format", "jsonl", "-o"])
        .arg(&output)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    let lines = ntrex_lines("ar.txt");
    for (i, text) in lines.iter().enumerate().take(3) {
        writeln!(stdin, "{}", serde_json::json!({"id": i, "text": text})).unwrap();
    }
    stdin.flush().unwrap();
    wait_for_lock_file(&dir, &mut first);

    // The translate run has a model that loads, and would have written the stream; the
    // summarize run shows the refusal comes before any model is looked for.
    for (command, model) in [
        ("translate", fixtures().join("marian-tiny")),
        ("summarize", PathBuf::from("no-such-model")),
    ] {
        let out = tarjama(tmp.path())
            .args([command, "--quiet", "--model"])
            .arg(model)
            .args(["--input-format", "jsonl", "--format", "jsonl"])
            .arg(&other)
            .arg("-o")
            .arg(&output)
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("another tarjama run is writing") && stderr.contains("out.jsonl"),
            "{stderr}"
        );
        assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }

    for (i, text) in lines.iter().enumerate().take(6).skip(3) {
        writeln!(stdin, "{}", serde_json::json!({"id": i, "text": text})).unwrap();
    }
    drop(stdin);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let ids: Vec<serde_json::Value> = fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
        .collect();
    assert_eq!(
        ids,
        (0..6).map(|i| serde_json::json!(i)).collect::<Vec<_>>()
    );
    assert_eq!(
        names(&dir),
        set(&["other.jsonl", "out.jsonl"]),
        "lock or temporary file left behind"
    );

    // Once the first run is done the output is free again.
    translate_cmd(tmp.path())
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .arg(&other)
        .arg("-o")
        .arg(&output)
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&output).unwrap().lines().count(), 7);
}

#[test]
fn only_temporary_files_that_nobody_holds_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    fs::write(input.join("a.ar.txt"), article(0, 2)).unwrap();
    fs::write(input.join("b.ar.txt"), article(2, 2)).unwrap();
    // No process has pid 4194304 or more on Linux (the pid_max limit): as seen from here, the
    // live file belongs to a run in another PID namespace sharing the directory, which holds
    // its lock (played by this test).
    let live_name = ".tarjama-4194305-live.tmp";
    let stale_name = ".tarjama-4194306-stale.tmp";
    for (command, mut cmd) in [
        ("translate", translate_cmd(tmp.path())),
        ("summarize", summarize_cmd(tmp.path())),
    ] {
        let output = tmp.path().join(format!("out-{command}"));
        fs::create_dir(&output).unwrap();
        let live = fs::File::create(output.join(live_name)).unwrap();
        live.lock().unwrap();
        fs::write(output.join(stale_name), "left by a killed run").unwrap();
        let out = cmd.arg(&input).arg("-o").arg(&output).output().unwrap();
        assert!(out.status.success(), "{command}: {}", stderr_of(&out));
        let suffix = if command == "translate" {
            ".en.txt"
        } else {
            ".summary.txt"
        };
        assert_eq!(
            names(&output),
            set(&[&format!("a{suffix}"), &format!("b{suffix}"), live_name]),
            "{command}: the live temporary file must stay, the stale one go"
        );
        drop(live);
    }
}
