//! An input line of any length is translated in bounded memory: a line without a newline (a
//! whole archive flattened onto one line, or text with no spaces at all) is read in pieces that
//! go through as lines of their own, and no text is lost.
//!
//! Peak memory is the child's own (`wait4`), so the tests here may run in parallel; each runs in
//! a test process of its own that stays small (`common::alone_in_a_process`), since a spawned
//! child's peak starts from its parent's.
#![cfg(target_os = "linux")]

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common;

fn ntrex_words() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex/ar.txt");
    fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| ('\u{0621}'..='\u{064A}').contains(c))
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Writes words from `words` joined by `separator` until `bytes` are written, with no newline.
fn write_line(path: &Path, words: &[String], separator: &str, bytes: usize) {
    let mut file = BufWriter::new(fs::File::create(path).unwrap());
    let mut written = 0;
    for (i, word) in words.iter().cycle().enumerate() {
        if written >= bytes {
            break;
        }
        if i > 0 {
            file.write_all(separator.as_bytes()).unwrap();
            written += separator.len();
        }
        file.write_all(word.as_bytes()).unwrap();
        written += word.len();
    }
    file.flush().unwrap();
}

struct Run {
    success: bool,
    stderr: String,
    peak_mb: i64,
}

/// Translates `input` into `output` with the fixture model and measures the child's peak RSS.
// The child is reaped by `wait4`, which also returns its resource usage.
#[allow(clippy::zombie_processes)]
fn translate(tmp: &Path, input: &Path, output: &Path, extra: &[&str]) -> Run {
    let err = tmp.join("stderr.txt");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("HF_HOME", tmp)
        .args(["translate", "--quiet", "--beams", "1", "--model"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny"))
        .args(extra)
        .arg(input)
        .arg("-o")
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only the status and the struct it is given; the child is ours and
    // not waited for elsewhere (`Child` does not wait when dropped).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        usage
    };
    Run {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stderr: fs::read_to_string(err).unwrap(),
        peak_mb: usage.ru_maxrss / 1024,
    }
}

/// Whether `output` is `input` with some spaces made line breaks, compared in pieces so the
/// test process stays small.
fn same_but_line_breaks(input: &Path, output: &Path) -> bool {
    let (mut a, mut b) = (
        BufReader::new(fs::File::open(input).unwrap()),
        BufReader::new(fs::File::open(output).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if b.read_exact(&mut y[..n]).is_err() {
            return false;
        }
        let same = x[..n]
            .iter()
            .zip(&y[..n])
            .all(|(&i, &o)| i == o || (i == b' ' && o == b'\n'));
        if !same {
            return false;
        }
    }
}

/// A 50 MB line that needs no translation (Latin words, numbers, links) passes through in
/// pieces: before, the line was read whole and copied four times (283 MB).
#[test]
fn a_50_mb_line_is_read_in_bounded_memory() {
    if !common::alone_in_a_process(module_path!(), "a_50_mb_line_is_read_in_bounded_memory") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("line.txt");
    let words: Vec<String> = (0..5000)
        .map(|i| match i % 3 {
            0 => format!("report{i}"),
            1 => format!("https://example.com/2024/{i}"),
            _ => format!("{i}"),
        })
        .collect();
    write_line(&input, &words, " ", 50 << 20);
    let output = tmp.path().join("line.out.txt");
    // The language check refuses the line (it is not Arabic) from its first piece.
    let refused = translate(tmp.path(), &input, &output, &[]);
    assert!(!refused.success, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no Arabic text found"),
        "{}",
        refused.stderr
    );
    assert!(refused.peak_mb < 100, "peak RSS {} MB", refused.peak_mb);
    assert!(!output.exists());
    let run = translate(tmp.path(), &input, &output, &["--assume-arabic"]);
    assert!(run.success, "{}", run.stderr);
    eprintln!("peak RSS for a 50 MB line: {} MB", run.peak_mb);
    // The program and the model take about 50 MB; the line alone would be 50 MB more.
    assert!(
        run.peak_mb < 100,
        "peak RSS {} MB: the line is held whole",
        run.peak_mb
    );
    assert!(
        same_but_line_breaks(&input, &output),
        "the output is not the input"
    );
}

/// Output lines of `path`, each checked to be a translation (English letters, no Arabic).
fn english_lines(path: &Path) -> usize {
    let file = BufReader::new(fs::File::open(path).unwrap());
    let mut count = 0;
    for line in file.lines() {
        let line = line.unwrap();
        assert!(
            line.chars().any(|c| c.is_ascii_alphabetic()),
            "empty or untranslated line {count}: {:?}",
            line.chars().take(100).collect::<String>()
        );
        assert!(
            !tarjama::document::contains_arabic(&line),
            "untranslated text in line {count}"
        );
        count += 1;
    }
    count
}

/// Translates Arabic words joined by `separator` on one line of 36 KiB, more than two pieces
/// worth, and checks that each piece is translated on a line of its own.
fn translate_long_arabic_line(separator: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("line.txt");
    write_line(&input, &ntrex_words(), separator, 36 << 10);
    let output = tmp.path().join("line.out.txt");
    let run = translate(tmp.path(), &input, &output, &[]);
    assert!(run.success, "{}", run.stderr);
    eprintln!("peak RSS {} MB", run.peak_mb);
    assert!(run.peak_mb < 300, "peak RSS {} MB", run.peak_mb);
    let lines = english_lines(&output);
    assert!(lines >= 3, "{lines} output lines, expected one per piece");
}

/// Arabic text on one line far longer than a paragraph, with spaces between its words but no
/// sentence end: before, it was one sentence, translated onto one line.
#[test]
fn a_long_arabic_line_is_translated_in_pieces() {
    if !common::alone_in_a_process(module_path!(), "a_long_arabic_line_is_translated_in_pieces") {
        return;
    }
    translate_long_arabic_line(" ");
}

/// The same without a single space: the pieces are cut between two letters.
#[test]
fn a_long_arabic_line_without_spaces_is_translated_in_pieces() {
    if !common::alone_in_a_process(
        module_path!(),
        "a_long_arabic_line_without_spaces_is_translated_in_pieces",
    ) {
        return;
    }
    translate_long_arabic_line("");
}
