//! Output safety on the tiny fixture models: a failed run never replaces an existing output, an
//! output is never one of the inputs, directory symlinks are followed only when asked (and loops
//! are caught), two runs never write one file at once, and only temporary files that nobody
//! holds are cleaned up.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use candle_core::quantized::gguf_file;
use candle_core::Device;

use crate::common::{self, fixtures, ntrex_lines, stderr_of};

/// Two runs at once, and temporary files.
mod locks;

/// An article of `n` NTREX sentences from line `from`, one paragraph each.
fn article(from: usize, n: usize) -> String {
    ntrex_lines("ar.txt")[from..from + n].join("\n\n") + "\n"
}

/// An article whose bytes stop being UTF-8 past the first chunk the reader takes (256 KB), so
/// the error comes after the model has loaded and the output was opened, as in the audit.
fn late_bad_utf8_article() -> Vec<u8> {
    let mut bytes = article(0, 3).into_bytes();
    while bytes.len() < 307 * 1024 {
        bytes.extend_from_slice(b"A line of page furniture without any Arabic in it.\n");
    }
    bytes.extend_from_slice(b"\xc7\xe1\xd1\xc6\xed\xd3 cp1256\n");
    bytes
}

/// `common::tarjama`, with a time limit.
fn tarjama(cache: &Path) -> Command {
    let mut cmd = common::tarjama(cache);
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// `common::translate_cmd`, with a time limit.
fn translate_cmd(cache: &Path) -> Command {
    let mut cmd = common::translate_cmd(cache);
    cmd.timeout(Duration::from_secs(120));
    cmd
}

fn summarize_cmd(cache: &Path) -> Command {
    let mut cmd = tarjama(cache);
    cmd.args(["summarize", "--quiet", "--sentences", "1", "--model"])
        .arg(fixtures().join("bart-tiny"))
        .arg("--translator")
        .arg(fixtures().join("marian-tiny"));
    cmd
}

/// The names in `dir`, hidden ones included.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Files below `dir`, relative to it, not following symlinks.
fn files_below(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.insert(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out
}

#[test]
fn a_failed_run_leaves_an_existing_text_output_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("big.ar.txt"), late_bad_utf8_article()).unwrap();
    let output = dir.join("out.txt");
    for (name, mut cmd) in [
        ("summarize", summarize_cmd(tmp.path())),
        ("translate", translate_cmd(tmp.path())),
    ] {
        fs::write(&output, "OLD\n").unwrap();
        let out = cmd
            .arg(dir.join("big.ar.txt"))
            .arg("-o")
            .arg(&output)
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("not UTF-8"), "{name}: {stderr}");
        assert_eq!(
            fs::read_to_string(&output).unwrap(),
            "OLD\n",
            "{name}: a failed run replaced the existing output"
        );
        assert_eq!(
            names(&dir),
            set(&["big.ar.txt", "out.txt"]),
            "{name}: temporary or lock file left behind"
        );
    }
}

#[test]
fn a_failed_run_never_empties_or_creates_a_json_lines_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("big.ar.txt"), late_bad_utf8_article()).unwrap();
    let old = "{\"id\":\"earlier\",\"summary\":\"An earlier run's record.\"}\n";
    let output = dir.join("out.jsonl");
    let fresh = dir.join("fresh.jsonl");
    for (name, mut cmd) in [
        ("summarize", summarize_cmd(tmp.path())),
        ("translate", translate_cmd(tmp.path())),
    ] {
        // --force over an existing stream: the failed run has no complete record to replace the
        // earlier ones with.
        fs::write(&output, old).unwrap();
        let out = cmd
            .args(["--format", "jsonl", "--force"])
            .arg(dir.join("big.ar.txt"))
            .arg("-o")
            .arg(&output)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr_of(&out));
        assert_eq!(fs::read_to_string(&output).unwrap(), old, "{name}");

        // A failed run with nothing complete does not create an empty stream either.
        let out = match name {
            "summarize" => summarize_cmd(tmp.path()),
            _ => translate_cmd(tmp.path()),
        }
        .args(["--format", "jsonl"])
        .arg(dir.join("big.ar.txt"))
        .arg("-o")
        .arg(&fresh)
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr_of(&out));
        assert!(!fresh.exists(), "{name}: a failed run created {fresh:?}");
        assert_eq!(
            names(&dir),
            set(&["big.ar.txt", "out.jsonl"]),
            "{name}: temporary or lock file left behind"
        );
    }
}

/// A copy of the tiny Qwen2 fixture with `qwen2.embedding_length` set to 0: it loads, and fails
/// on its first forward pass (the audit's exit-3 case).
fn broken_qwen2(path: &Path) {
    let source = fixtures().join("gguf-tiny/qwen2.gguf");
    let mut reader = fs::File::open(source).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    let mut metadata = content.metadata.clone();
    metadata.insert(
        "qwen2.embedding_length".to_string(),
        gguf_file::Value::U32(0),
    );
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = content
        .tensor_infos
        .keys()
        .map(|name| {
            let t = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
            (name.clone(), t)
        })
        .collect();
    let metadata: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &candle_core::quantized::QTensor)> =
        tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata, &tensors).unwrap();
}

#[test]
fn a_model_failure_leaves_existing_outputs_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("broken.gguf");
    broken_qwen2(&model);
    let dir = tmp.path().join("work");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a.ar.txt"), article(0, 3)).unwrap();
    let old = "{\"id\":\"earlier\",\"summary\":\"An earlier run's record.\"}\n";
    for (output, content, extra) in [
        ("out.txt", "OLD\n", &[][..]),
        ("out.jsonl", old, &["--format", "jsonl"][..]),
        ("out.jsonl", old, &["--format", "jsonl", "--force"][..]),
    ] {
        fs::write(dir.join(output), content).unwrap();
        let out = tarjama(tmp.path())
            .args(["summarize", "--quiet", "--model"])
            .arg(&model)
            .args(extra)
            .arg(dir.join("a.ar.txt"))
            .arg("-o")
            .arg(dir.join(output))
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            fs::read_to_string(dir.join(output)).unwrap(),
            content,
            "{extra:?}: a model failure replaced {output}"
        );
        fs::remove_file(dir.join(output)).unwrap();
        assert_eq!(names(&dir), set(&["a.ar.txt"]), "{extra:?}: files left");
    }
}

#[test]
fn an_output_that_is_one_of_the_inputs_is_a_usage_error_before_the_model_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = dir.join("a.ar.txt");
    let b = dir.join("b.ar.txt");
    fs::write(&a, article(0, 2)).unwrap();
    fs::write(&b, article(2, 2)).unwrap();
    std::os::unix::fs::symlink(&a, dir.join("link.txt")).unwrap();
    fs::hard_link(&a, dir.join("hard.txt")).unwrap();
    let records = dir.join("in.jsonl");
    fs::write(&records, "{\"id\": 1, \"text\": \"مرحبا\"}\n").unwrap();
    // A per-input output directory holding a hard link to an input under its output's name.
    let out_dir = dir.join("out");
    fs::create_dir(&out_dir).unwrap();
    fs::hard_link(&b, out_dir.join("b.en.txt")).unwrap();
    let x = dir.join("x.txt");
    fs::write(&x, article(4, 1)).unwrap();
    fs::write(dir.join("x.en.txt"), article(5, 1)).unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> = [&a, &b, &records, &x, &dir.join("x.en.txt")]
        .iter()
        .map(|p| (p.to_path_buf(), fs::read(p).unwrap()))
        .collect();

    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        // (command, arguments, whether stdin is `a`)
        ("translate", vec![s(&a), "-o".into(), s(&a)], false),
        ("summarize", vec![s(&a), "-o".into(), s(&a)], false),
        (
            "translate",
            vec![s(&a), "-o".into(), s(&dir.join("link.txt"))],
            false,
        ),
        (
            "translate",
            vec![s(&a), "-o".into(), s(&dir.join("hard.txt"))],
            false,
        ),
        ("translate", vec!["-o".into(), s(&a)], true),
        (
            "translate",
            vec![
                "--format".into(),
                "jsonl".into(),
                s(&b),
                s(&a),
                "-o".into(),
                s(&a),
            ],
            false,
        ),
        (
            "summarize",
            vec![
                "--format".into(),
                "jsonl".into(),
                s(dir),
                "-o".into(),
                s(&b),
            ],
            false,
        ),
        (
            "translate",
            vec![
                "--input-format".into(),
                "jsonl".into(),
                "--format".into(),
                "jsonl".into(),
                s(&records),
                "-o".into(),
                s(&records),
            ],
            false,
        ),
        // Per-input outputs: b's result would be written over a hard link to b, x's over the
        // other input x.en.txt.
        (
            "translate",
            vec!["--force".into(), s(&b), s(&a), "-o".into(), s(&out_dir)],
            false,
        ),
        ("translate", vec![s(&x), s(&dir.join("x.en.txt"))], false),
    ];
    for (command, args, stdin) in cases {
        // std's Command, so that standard input can be the file itself rather than a pipe.
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tarjama"));
        cmd.env("HF_HOME", dir)
            .args([command, "--model", "no-such-model"])
            .args(&args)
            .stdin(if stdin {
                Stdio::from(fs::File::open(&a).unwrap())
            } else {
                Stdio::null()
            });
        let out = cmd.output().unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{command} {args:?}: {stderr}");
        assert!(
            stderr.contains("is also an input") || stderr.contains("would overwrite it"),
            "{command} {args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        for (path, bytes) in &before {
            assert_eq!(&fs::read(path).unwrap(), bytes, "{path:?} was modified");
        }
    }
}

/// `in/` with a loop back to itself, a second loop below it, and a link to a directory outside.
fn tree_with_symlinks(root: &Path) -> (PathBuf, PathBuf) {
    let input = root.join("in");
    let outside = root.join("outside");
    fs::create_dir_all(input.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(input.join("a.ar.txt"), article(0, 1)).unwrap();
    fs::write(input.join("sub/b.ar.txt"), article(1, 1)).unwrap();
    fs::write(outside.join("c.ar.txt"), article(2, 1)).unwrap();
    std::os::unix::fs::symlink("..", input.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("sub", input.join("down")).unwrap();
    std::os::unix::fs::symlink(&outside, input.join("elsewhere")).unwrap();
    (input, outside)
}

#[test]
fn directory_symlinks_are_followed_only_when_asked_and_loops_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, outside) = tree_with_symlinks(tmp.path());

    // By default the links are not followed: nothing is written outside the tree, no loop.
    let out = translate_cmd(tmp.path())
        .arg(&input)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        files_below(&input),
        set(&["a.ar.txt", "a.en.txt", "sub/b.ar.txt", "sub/b.en.txt"]),
        "{stderr}"
    );
    assert_eq!(files_below(&outside), set(&["c.ar.txt"]));

    // --follow-symlinks follows them, reports each loop on one line and goes on.
    let output = tmp.path().join("out");
    let out = translate_cmd(tmp.path())
        .arg("--follow-symlinks")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let loops: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("File system loop found"))
        .collect();
    assert!(!loops.is_empty(), "{stderr}");
    assert!(loops.iter().all(|l| l.starts_with("tarjama: ")), "{stderr}");
    let written = files_below(&output);
    for name in ["a.en.txt", "sub/b.en.txt", "elsewhere/c.en.txt"] {
        assert!(written.contains(name), "{name} missing from {written:?}");
    }
    assert!(
        written.len() <= 5,
        "each directory is walked once per path without a loop: {written:?}"
    );
    assert_eq!(files_below(&outside), set(&["c.ar.txt"]));

    // A symlinked file named on the command line is read.
    let link = tmp.path().join("link.ar.txt");
    std::os::unix::fs::symlink(outside.join("c.ar.txt"), &link).unwrap();
    let out = translate_cmd(tmp.path()).arg(&link).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!out.stdout.is_empty());
}
