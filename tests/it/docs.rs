//! The README as a newcomer meets it: no paragraph said twice, its two set-up commands work from
//! a fresh clone (the first gets as far as the model download, offline), and what it says of the
//! toolchain and the licences is what the repository has.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The README's paragraphs and code blocks, whitespace collapsed: text between blank lines, and
/// each fenced block's non-blank lines.
fn paragraphs(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut in_fence = false;
    let flush = |current: &mut Vec<&str>, start: usize, out: &mut Vec<(usize, String)>| {
        if !current.is_empty() {
            let joined = current.join(" ");
            out.push((
                start,
                joined.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
            current.clear();
        }
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            flush(&mut current, start, &mut out);
            in_fence = !in_fence;
            start = i + 2;
            continue;
        }
        if line.trim().is_empty() {
            if !in_fence {
                flush(&mut current, start, &mut out);
            }
            continue;
        }
        if current.is_empty() {
            start = i + 1;
        }
        current.push(line);
    }
    flush(&mut current, start, &mut out);
    out
}

#[test]
fn no_paragraph_of_the_readme_appears_twice() {
    let text = readme();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut repeated = Vec::new();
    for (line, paragraph) in paragraphs(&text) {
        // A heading, a table row or a command of a couple of words may recur (`## GPU`).
        if paragraph.split(' ').count() < 3 {
            continue;
        }
        if let Some(first) = seen.insert(paragraph.clone(), line) {
            repeated.push(format!("lines {first} and {line}: {paragraph:.100}"));
        }
    }
    assert!(
        repeated.is_empty(),
        "repeated in README.md:\n{}",
        repeated.join("\n")
    );
}

#[test]
fn the_duplicate_check_sees_paragraphs_and_code_blocks() {
    let text = "# t\n\nOne two three\nfour.\n\n```sh\ncargo run\n\ncargo test\n```\n\nOne  two three four.\n";
    let found: Vec<String> = paragraphs(text).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        found,
        [
            "# t",
            "One two three four.",
            "cargo run cargo test",
            "One two three four."
        ]
    );
}

/// The two commands of "Set up": the first two `sh` blocks of that section, one line each.
fn setup_commands() -> [String; 2] {
    let text = readme();
    let section = text
        .split_once("\n## Set up\n")
        .expect("a Set up section")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let commands: Vec<String> = section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().trim().to_string())
        .collect();
    assert!(commands.len() >= 2, "two commands in Set up");
    for c in &commands[..2] {
        assert_eq!(c.lines().count(), 1, "one line: {c}");
    }
    [commands[0].clone(), commands[1].clone()]
}

/// The README's first command from a fresh `git clone` of this repository (so no `../shared`
/// beside it), offline with an empty Hugging Face cache: the example article is in the clone,
/// so the run gets as far as the default model and stops with the one-line offline message.
/// The command is `cargo run --release -- ARGS`; the tarjama built for these tests runs ARGS in
/// the clone, where a second release build would take many minutes.
#[test]
fn the_first_setup_command_works_in_a_fresh_clone_up_to_the_model_download() {
    let [first, second] = setup_commands();
    assert!(second.starts_with("cargo test"), "{second}");
    let args: Vec<&str> = first
        .strip_prefix("cargo run --release -- ")
        .unwrap_or_else(|| panic!("the first command builds and runs tarjama: {first}"))
        .split_whitespace()
        .collect();
    assert_eq!(args[0], "translate", "{first}");

    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("tarjama");
    let cloned = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(root())
        .arg(&clone)
        .output();
    match cloned {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!("skipped: this checkout cannot be cloned with git ({other:?})");
            return;
        }
    }
    assert!(
        !tmp.path().join("shared").exists(),
        "no ../shared beside the clone"
    );
    let run = |args: &[&str]| {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .args(args)
            .current_dir(&clone)
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", home.path())
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = run(&args);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("is not in the Hugging Face cache")
            && stderr.contains("hf download Helsinki-NLP/opus-mt-tc-big-ar-en"),
        "{stderr}"
    );
    // The input is read before the model loads, so a missing article would have been the error.
    let mut missing = args.clone();
    *missing.last_mut().unwrap() = "examples/no-such-article.txt";
    let (code, stderr) = run(&missing);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("Hugging Face cache"), "{stderr}");
}

#[test]
fn the_example_article_is_the_test_fixture() {
    let example = std::fs::read(root().join("examples/article-ar.txt")).unwrap();
    let fixture = std::fs::read(root().join("tests/fixtures/document/article-ar.txt")).unwrap();
    assert_eq!(example, fixture);
}

/// The minimum Rust the README states is Cargo.toml's `rust-version`, and the licence files
/// Cargo.toml's `license` names are there.
#[test]
fn toolchain_and_licences_are_what_the_readme_says() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let package = manifest["package"].as_table().unwrap();
    let rust = package["rust-version"].as_str().unwrap();
    let text = readme();
    assert!(
        text.contains(&format!("Rust {rust} or later")),
        "README names Rust {rust}"
    );
    assert_eq!(package["license"].as_str(), Some("MIT OR Apache-2.0"));
    let mit = std::fs::read_to_string(root().join("LICENSE-MIT")).unwrap();
    assert!(mit.starts_with("MIT License") && mit.contains("the tarjama authors"));
    let apache = std::fs::read_to_string(root().join("LICENSE-APACHE")).unwrap();
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    assert!(text.contains("LICENSE-MIT") && text.contains("LICENSE-APACHE"));
}

/// Every path the README's Layout section names exists.
#[test]
fn the_layout_names_real_paths() {
    let text = readme();
    let layout = text
        .split_once("\n## Layout\n")
        .expect("a Layout section")
        .1;
    let block = layout.split("```").nth(1).unwrap();
    for line in block.lines() {
        let Some(path) = line.split_whitespace().next() else {
            continue;
        };
        if line.starts_with(' ') || path.contains('*') {
            continue;
        }
        assert!(Path::new(&root().join(path)).exists(), "{path}");
    }
}
