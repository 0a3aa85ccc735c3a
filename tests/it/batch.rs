//! Runs over many inputs on the tiny fixture model: directories mirrored into an output tree,
//! resuming after an interruption, bad files skipped and reported, JSON Lines in and out with
//! ids in input order, inputs never modified.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{fixtures, ntrex_lines, stderr_of, tarjama, translate_cmd, tree};

/// An article of `n` NTREX sentences starting at line `from`, two sentences a paragraph.
fn article(from: usize, n: usize) -> String {
    let ar = ntrex_lines("ar.txt");
    let mut text = String::new();
    for (i, line) in ar[from..from + n].iter().enumerate() {
        text.push_str(line);
        text.push_str(if i % 2 == 1 { "\n\n" } else { " " });
    }
    text.trim_end().to_string() + "\n"
}

/// The translation of `text` as a single stdin-to-stdout run gives it.
fn single_run(cache: &Path, text: &str) -> String {
    let out = translate_cmd(cache).write_stdin(text).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_directory_is_mirrored_into_the_output_tree_and_done_files_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(input.join("2024/05")).unwrap();
    let texts = [
        ("2024/05/a.ar.txt", article(0, 5)),
        ("2024/b.txt", article(5, 3)),
        ("c.ar.txt", article(8, 1)),
    ];
    for (name, text) in &texts {
        fs::write(input.join(name), text).unwrap();
    }
    // Outputs of an earlier run in the input tree are not inputs.
    fs::write(input.join("old.en.txt"), "already English\n").unwrap();
    let output = tmp.path().join("out");

    let out = translate_cmd(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let expected: BTreeMap<String, String> = [
        ("2024/05/a.en.txt", &texts[0].1),
        ("2024/b.en.txt", &texts[1].1),
        ("c.en.txt", &texts[2].1),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_string(), single_run(tmp.path(), text)))
    .collect();
    assert_eq!(tree(&output), expected);

    // A second run finds everything done and does not touch it.
    fs::write(output.join("c.en.txt"), "kept\n").unwrap();
    let out = tarjama(tmp.path())
        .args(["translate", "--model"])
        .arg(fixtures().join("marian-tiny"))
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr_of(&out).contains("3 already done and skipped"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        fs::read_to_string(output.join("c.en.txt")).unwrap(),
        "kept\n"
    );

    // --force redoes them.
    translate_cmd(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .arg("--force")
        .assert()
        .success();
    assert_eq!(tree(&output), expected);
}

#[test]
fn bad_files_are_reported_and_skipped_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let good = article(0, 2);
    fs::write(input.join("1-good.ar.txt"), &good).unwrap();
    fs::write(input.join("2-cp1256.ar.txt"), b"\xc7\xe1\xd1\xc6\xed\xd3\n").unwrap();
    fs::write(input.join("3-empty.ar.txt"), " \n\n").unwrap();
    fs::write(input.join("4-good.ar.txt"), article(2, 2)).unwrap();
    let before = tree(&input);

    let out = translate_cmd(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("4 inputs: 2 translated, 2 failed:"),
        "{stderr}"
    );
    assert!(stderr.contains("2-cp1256.ar.txt") && stderr.contains("not UTF-8"));
    assert!(stderr.contains("3-empty.ar.txt") && stderr.contains("empty"));
    let written = tree(&tmp.path().join("out"));
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        ["1-good.en.txt", "4-good.en.txt"],
        "only the good files have outputs, and no temporary file is left"
    );
    assert_eq!(written["1-good.en.txt"], single_run(tmp.path(), &good));
    assert_eq!(tree(&input), before, "inputs are never modified");
}

#[test]
fn json_lines_round_trip_keeps_ids_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    // Records of very different lengths, so the batcher reorders their sentences.
    let records: Vec<(serde_json::Value, String)> = (0..12)
        .map(|i| {
            let id = if i % 3 == 0 {
                serde_json::json!(1000 - i)
            } else {
                serde_json::json!(format!("doc-{i}"))
            };
            (id, article(i * 3 % 40, 1 + (i * 7) % 6))
        })
        .collect();
    let mut input = String::new();
    for (id, text) in &records {
        let tags = serde_json::json!({"section": ["world", id]});
        input +=
            &serde_json::json!({"url": id, "body": text, "other": 1, "tags": tags}).to_string();
        input.push('\n');
    }
    input += "{\"url\": \"no-body\"}\n";
    input += "not json\n";
    let path = tmp.path().join("in.jsonl");
    fs::write(&path, &input).unwrap();
    let output = tmp.path().join("out.jsonl");

    let out = translate_cmd(tmp.path())
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .args([
            "--text-field",
            "body",
            "--id-field",
            "url",
            "--batch-size",
            "4",
        ])
        .arg(&path)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "two bad records: {stderr}");
    assert!(
        stderr.contains("in.jsonl:13 has no field \"body\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("in.jsonl:14 is not a JSON object"),
        "{stderr}"
    );

    let lines: Vec<serde_json::Value> = fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), records.len());
    // Paragraphs translate independently, so one run over all the texts gives each record's.
    let all: Vec<&str> = records.iter().map(|(_, t)| t.as_str()).collect();
    let english = single_run(tmp.path(), &all.join("\n"));
    let mut expected = english.split("\n\n").map(str::trim);
    for (line, (id, text)) in lines.iter().zip(&records) {
        assert_eq!(&line["id"], id);
        assert_eq!(
            (&line["schema"], &line["task"]),
            (&1.into(), &"translate".into())
        );
        let paragraphs: Vec<&str> = text.split("\n\n").map(str::trim).collect();
        assert_eq!(line["arabic"], serde_json::json!(paragraphs));
        let mine: Vec<&str> = expected.by_ref().take(paragraphs.len()).collect();
        assert_eq!(line["english"], serde_json::json!(mine));
        assert!(line["model"].as_str().unwrap().ends_with("marian-tiny"));
        assert!(line["model_revision"].is_string());
        // The input's other fields pass through unchanged; its text does not.
        assert_eq!(&line["url"], id);
        assert_eq!(line["other"], 1);
        assert_eq!(line["tags"]["section"][0], "world");
        assert!(line.get("body").is_none());
    }

    // Resuming keeps the records written and adds nothing twice.
    let out = translate_cmd(tmp.path())
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .args(["--text-field", "body", "--id-field", "url"])
        .arg(&path)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(stderr_of(&out).contains("12 already done and skipped"));
    assert_eq!(
        fs::read_to_string(&output).unwrap().lines().count(),
        records.len()
    );
}

#[test]
fn text_files_to_one_json_lines_stream_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.ar.txt"), tmp.path().join("b.ar.txt"));
    fs::write(&a, article(0, 2)).unwrap();
    fs::write(&b, article(2, 2)).unwrap();
    let out = translate_cmd(tmp.path())
        .args(["--format", "jsonl"])
        .arg(&b)
        .arg(&a)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(
        ids,
        [b.display(), a.display()].map(|p| format!("\"{p}\"")),
        "input order"
    );
}

#[test]
fn usage_mistakes_are_caught_before_the_model_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.ar.txt");
    fs::write(&a, article(0, 1)).unwrap();
    let file = tmp.path().join("exists.txt");
    fs::write(&file, "x").unwrap();
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec![
                a.as_os_str(),
                a.as_os_str(),
                "-o".as_ref(),
                file.as_os_str(),
            ],
            "several inputs need a directory",
        ),
        (
            vec![a.as_os_str(), "--input-format".as_ref(), "jsonl".as_ref()],
            "needs --format jsonl",
        ),
        (vec![a.as_os_str(), a.as_os_str()], "would both be written"),
        (
            vec![
                a.as_os_str(),
                "-o".as_ref(),
                tmp.path().as_os_str(),
                "--output-suffix".as_ref(),
                ".ar.txt".as_ref(),
            ],
            "would overwrite it",
        ),
    ];
    for (args, expect) in cases {
        let out = tarjama(tmp.path())
            .args(["translate", "--model", "no-such-model"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

/// Waits until `dir` holds at least `n` finished outputs, or the process ends.
fn wait_for_outputs(dir: &Path, n: usize, child: &mut std::process::Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let done = fs::read_dir(dir)
            .map(|d| {
                d.filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().ends_with(".en.txt")
                })
                .count()
            })
            .unwrap_or(0);
        if done >= n || child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Input files for the interruption tests, and what each translates to.
fn many_articles(tmp: &Path, n: usize) -> (PathBuf, Vec<(String, String)>) {
    let input = tmp.join("in");
    fs::create_dir(&input).unwrap();
    let texts: Vec<(String, String)> = (0..n)
        .map(|i| (format!("{i:03}"), article(i % 40, 4)))
        .collect();
    for (name, text) in &texts {
        fs::write(input.join(format!("{name}.ar.txt")), text).unwrap();
    }
    // What an uninterrupted run writes (that equals single-file runs is tested above).
    let reference = tmp.join("reference");
    translate_cmd(tmp)
        .arg(&input)
        .arg("-o")
        .arg(&reference)
        .assert()
        .success();
    let expected: Vec<(String, String)> = tree(&reference).into_iter().collect();
    assert_eq!(expected.len(), n);
    (input, expected)
}

/// Every output present is complete; a rerun completes the rest, skipping what was done.
fn check_resume(tmp: &Path, input: &Path, output: &Path, expected: &[(String, String)]) {
    let mut partial = tree(output);
    // A killed process cannot delete its temporary file; the next run does.
    partial.retain(|name, _| !name.starts_with(".tarjama-"));
    for (name, text) in &partial {
        let want = &expected.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(text, want, "{name} is incomplete");
    }
    let out = tarjama(tmp)
        .args(["translate", "--beams", "1", "--model"])
        .arg(fixtures().join("marian-tiny"))
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    if !partial.is_empty() {
        assert!(
            stderr_of(&out).contains(&format!("{} already done", partial.len())),
            "{}",
            stderr_of(&out)
        );
    }
    let complete: BTreeMap<String, String> = expected.iter().cloned().collect();
    assert_eq!(tree(output), complete);
}

/// Starts translating `input` into `output` in small batches and returns once a few files are
/// written, with the run still going (unless it was quicker).
fn start_run(tmp: &Path, input: &Path, output: &Path, stderr: Stdio) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("HF_HOME", tmp)
        .args([
            "translate",
            "--quiet",
            "--beams",
            "1",
            "--batch-size",
            "2",
            "--model",
        ])
        .arg(fixtures().join("marian-tiny"))
        .arg(input)
        .arg("-o")
        .arg(output)
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_for_outputs(output, 3, &mut child);
    child
}

#[test]
fn killed_run_leaves_no_partial_file_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, expected) = many_articles(tmp.path(), 24);
    let output = tmp.path().join("out");
    let mut child = start_run(tmp.path(), &input, &output, Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    check_resume(tmp.path(), &input, &output, &expected);
}

#[test]
fn ctrl_c_stops_after_the_current_batch_and_keeps_finished_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, expected) = many_articles(tmp.path(), 24);
    let output = tmp.path().join("out");
    let child = start_run(tmp.path(), &input, &output, Stdio::piped());
    // SAFETY: signalling a child process we own, by its pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(0) {
        // It was still running: stopped cleanly, with the interrupt's own exit status.
        assert_eq!(out.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    check_resume(tmp.path(), &input, &output, &expected);
}
