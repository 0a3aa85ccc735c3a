//! What `--help` and the man page tell a newcomer: the environment variables tarjama reads (with
//! `[env: ...]` on the flags they stand for), a default for every setting that has one, and man
//! pages made from the same definitions.

use clap::CommandFactory;
use tarjama::cli::{Cli, ENVIRONMENT};

use crate::common::stdout_of;

fn help(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    stdout_of(
        crate::common::tarjama(home.path())
            .args(args)
            .env_remove("RAYON_NUM_THREADS"),
    )
}

#[test]
fn the_top_level_help_lists_the_environment() {
    let text = help(&["--help"]);
    let environment = text
        .split_once("Environment:")
        .expect("an Environment section")
        .1;
    for name in [
        "HF_TOKEN",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "RAYON_NUM_THREADS",
        "TARJAMA_ISA",
        "TARJAMA_NO_MMAP",
        "NO_COLOR",
        "SLURM_ARRAY_TASK_*",
        "JOB_COMPLETION_INDEX",
    ] {
        assert!(
            environment.contains(&format!("\n  {name} ")),
            "{name}:\n{text}"
        );
    }
    assert_eq!(ENVIRONMENT.len(), 11);
    assert!(text.contains("Exit codes: 0 ok"), "{text}");
}

/// Every variable the code reads with `std::env::var` (outside tests' and benchmarks' own knobs)
/// is one the help lists.
#[test]
fn every_variable_the_code_reads_is_in_the_help() {
    let listed: Vec<&str> = ENVIRONMENT.iter().map(|(name, _)| *name).collect();
    // Read by the progress reporter to make tests fast; not a setting (src/pipeline/progress.rs).
    let internal = ["TARJAMA_PROGRESS_INTERVAL_MS", "RUST_LIB_BACKTRACE"];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let re = regex::Regex::new(
        r#"env::var(?:_os)?\("([A-Z0-9_]+)"\)|"(SLURM_[A-Z_]+|JOB_COMPLETION_INDEX)""#,
    )
    .unwrap();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let code = std::fs::read_to_string(entry.path()).unwrap();
        for cap in re.captures_iter(&code) {
            let name = cap.get(1).or(cap.get(2)).unwrap().as_str();
            let covered = listed.contains(&name)
                || internal.contains(&name)
                || (name.starts_with("SLURM_ARRAY_TASK_")
                    && listed.contains(&"SLURM_ARRAY_TASK_*"));
            assert!(
                covered,
                "{} reads {name}, which the help does not list",
                entry.path().display()
            );
        }
    }
}

#[test]
fn flags_with_an_environment_counterpart_name_it() {
    for command in ["translate", "summarize", "eval"] {
        // clap wraps lines anywhere between words.
        let text = help(&[command, "--help"])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("[env: HF_HUB_OFFLINE=]"),
            "{command}:\n{text}"
        );
        assert!(
            text.contains("[env: RAYON_NUM_THREADS=]"),
            "{command}:\n{text}"
        );
    }
    assert!(help(&["summarize", "--help"]).contains("[default: 3]"));
}

/// `HF_HUB_OFFLINE` means what it means to huggingface_hub (1/true/yes/on), and `0` or any other
/// value is online, not an error.
#[test]
fn offline_variable_values_are_read_as_hugging_face_reads_them() {
    let home = tempfile::tempdir().unwrap();
    for (value, offline) in [
        ("1", true),
        ("ON", true),
        ("yes", true),
        ("0", false),
        ("nope", false),
    ] {
        let out = crate::common::tarjama(home.path())
            .args(["translate", "--model", "Helsinki-NLP/opus-mt-ar-en", "-"])
            .env("HF_HUB_OFFLINE", value)
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .write_stdin("مرحبا\n")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{value}: {stderr}");
        assert_eq!(
            stderr.contains("forbids downloading"),
            offline,
            "{value}: {stderr}"
        );
    }
}

/// Every flag that takes a value shows its default (clap's `[default: ...]`, or the same words
/// in its help where the default depends on the model or the device), except those whose absence
/// is no setting at all.
#[test]
fn every_setting_shows_its_default() {
    let no_default = [
        "hyp",
        "src",
        "reference",
        "save_hyp",
        "words",
        "shards",
        "inputs",
        "name",
        "shell",
        // serve: without them there is no summarizer and no key check.
        "summarizer",
        "api_keys",
    ];
    let mut missing = Vec::new();
    let mut walk = vec![Cli::command()];
    while let Some(command) = walk.pop() {
        for arg in command.get_arguments() {
            let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values())
                || matches!(
                    arg.get_action(),
                    clap::ArgAction::Set | clap::ArgAction::Append
                );
            if !takes_value || no_default.contains(&arg.get_id().as_str()) {
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            if arg.get_default_values().is_empty() && !help.contains("[default: ") {
                missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
            }
        }
        walk.extend(command.get_subcommands().cloned());
    }
    assert!(missing.is_empty(), "no default shown: {missing:?}");
}

#[test]
fn the_man_pages_are_the_clap_definitions() {
    let page = help(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH tarjama 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
    ] {
        assert!(page.contains(section), "{section}");
    }
    assert!(page.contains("\\fBHF_HUB_OFFLINE\\fR"));
    assert!(
        !page.contains("EXTRA"),
        "the epilogue is in its own sections"
    );

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    help(&["man", "-o", pages.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for want in [
        "tarjama.1",
        "tarjama-translate.1",
        "tarjama-summarize.1",
        "tarjama-eval.1",
        "tarjama-models.1",
        "tarjama-models-info.1",
        "tarjama-man.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert_eq!(
        std::fs::read_to_string(pages.join("tarjama.1")).unwrap(),
        page
    );
    let translate = std::fs::read_to_string(pages.join("tarjama-translate.1")).unwrap();
    assert!(translate.contains("strip\\-boilerplate"), "{translate}");
    assert!(translate.contains("HF_HUB_OFFLINE"));
}

/// `--threads` takes `RAYON_NUM_THREADS`, with rayon's meaning of 0 (and of an empty value):
/// the default. A value that is not a number is a usage error naming the flag.
#[test]
fn threads_come_from_rayon_num_threads_as_rayon_reads_it() {
    let home = tempfile::tempdir().unwrap();
    for (value, code) in [("0", 0), ("", 0), ("1", 0), ("many", 2)] {
        let out = crate::common::tarjama(home.path())
            .args(["models", "list"])
            .env("RAYON_NUM_THREADS", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{value:?}: {stderr}");
        if code == 2 {
            assert!(stderr.contains("--threads"), "{stderr}");
        }
    }
}
