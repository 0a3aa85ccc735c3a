//! Every exit code of the README's table, each from a real command that should end with it: the
//! table and the code agree, and an error is one line on stderr.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use assert_cmd::Command;

use crate::common::{fixtures, tarjama, translate_cmd};

/// The codes of the README's "Exit codes" table.
fn readme_codes() -> Vec<i32> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme
        .split_once("| code | meaning |")
        .expect("the README has an exit-code table")
        .1;
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

const ARABIC: &str = "قال المتحدث إن الاجتماع سيعقد غدا.\n";

/// Runs `cmd`, checks its exit code and that any error is one line, and returns its stderr.
fn ends_with(code: i32, what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{what}: {stderr}");
    if code != 0 {
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert!(!errors.is_empty(), "{what}: no error line in {stderr}");
    }
    stderr
}

#[test]
fn every_code_in_the_readme_table_comes_from_a_real_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("hf");
    let arabic = dir.join("a.ar.txt");
    std::fs::write(&arabic, ARABIC).unwrap();
    let mut tested = vec![];

    // 0: success.
    ends_with(0, "models list", tarjama(&cache).args(["models", "list"]));
    tested.push(0);

    // 1: an input or output problem.
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9\n").unwrap();
    let not_a_dir = arabic.join("out.txt");
    for (what, args) in [
        ("a missing file", vec![dir.join("missing.txt")]),
        ("an empty file", vec![empty.clone()]),
        ("a file that is not UTF-8", vec![latin1.clone()]),
        (
            "an output under a file",
            vec![arabic.clone(), "-o".into(), not_a_dir],
        ),
    ] {
        ends_with(1, what, translate_cmd(&cache).args(args));
    }
    let refs = dir.join("refs.txt");
    std::fs::write(&refs, "one\ntwo\n").unwrap();
    let stderr = ends_with(
        1,
        "eval with hypotheses and references of different lengths",
        tarjama(&cache)
            .args(["eval", "--hyp"])
            .arg(&arabic)
            .arg("--ref")
            .arg(&refs),
    );
    assert!(stderr.contains("1 hypotheses but 2 references"), "{stderr}");
    tested.push(1);

    // 2: usage errors, before any model loads.
    let gguf = fixtures().join("gguf-tiny/qwen2.gguf");
    for (what, args) in [
        ("a value out of range", vec!["--beams", "0"]),
        (
            "a minimum length not under the maximum",
            vec!["--min-length", "5", "--max-length", "4"],
        ),
        ("a shard past the count", vec!["--shard", "4/4"]),
        ("--shard auto outside a scheduler", vec!["--shard", "auto"]),
    ] {
        let mut cmd = translate_cmd(&cache);
        cmd.args(args).arg(&arabic);
        for var in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "JOB_COMPLETION_INDEX",
        ] {
            cmd.env_remove(var);
        }
        ends_with(2, what, &mut cmd);
    }
    ends_with(
        2,
        "an output that is the input",
        translate_cmd(&cache).arg(&arabic).arg("-o").arg(&arabic),
    );
    let stderr = ends_with(
        2,
        "a setting the model cannot honour",
        tarjama(&cache)
            .args(["translate", "--beams", "4", "--model"])
            .arg(&gguf)
            .arg(&arabic),
    );
    assert!(stderr.contains("--beams"), "{stderr}");
    ends_with(
        2,
        "an unknown flag",
        tarjama(&cache).args(["translate", "--no-such-flag"]),
    );
    tested.push(2);

    // 3: model problems.
    let stderr = ends_with(
        3,
        "models info of an unknown preset",
        tarjama(&cache).args(["models", "info", "nosuch"]),
    );
    assert!(stderr.contains("unknown preset"), "{stderr}");
    ends_with(
        3,
        "an unknown model",
        tarjama(&cache)
            .args(["translate", "--model", "nosuch"])
            .arg(&arabic),
    );
    let stderr = ends_with(
        3,
        "a preset not cached, offline",
        tarjama(&cache)
            .args(["translate", "--offline", "--model", "opus-mt-ar-en"])
            .arg(&arabic),
    );
    assert!(
        stderr.contains("hf download Helsinki-NLP/opus-mt-ar-en"),
        "{stderr}"
    );
    let incomplete = dir.join("model");
    std::fs::create_dir(&incomplete).unwrap();
    std::fs::write(incomplete.join("config.json"), "{}").unwrap();
    ends_with(
        3,
        "a model directory without its files",
        tarjama(&cache)
            .arg("translate")
            .arg("--model")
            .arg(&incomplete)
            .arg(&arabic),
    );
    tested.push(3);

    // 130, 143, 129: a run in pipe mode, stopped by a signal while it waits for input.
    for (signal, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        assert_eq!(stopped_by(signal, &cache), Some(code), "signal {signal}");
        tested.push(code);
    }

    let mut table = readme_codes();
    table.sort();
    tested.sort();
    assert_eq!(
        table, tested,
        "the README's table and the codes tested here"
    );
}

/// Starts a translation reading a pipe, waits for the answer to one paragraph (so the model is
/// loaded and the run is waiting for more), sends `signal` and returns the exit code.
fn stopped_by(signal: i32, cache: &Path) -> Option<i32> {
    let mut child = Process::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(["translate", "--quiet", "--beams", "1", "--model"])
        .arg(fixtures().join("marian-tiny"))
        .env("HF_HOME", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ARABIC.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.trim().is_empty(), "a translation before the signal");
    // SAFETY: kill(2) on our own child's pid; the call has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            drop(stdin);
            return status.code();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still running after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
