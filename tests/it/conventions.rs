//! Command-line conventions: examples in every `--help`, shell completions, documented exit
//! codes, `NO_COLOR`, and `--verbose` timings.

use std::path::PathBuf;

use assert_cmd::Command;

use crate::common::stdout_of as stdout;

const SUBCOMMANDS: &[&str] = &["translate", "summarize", "models", "eval", "completions"];

fn tarjama() -> Command {
    Command::cargo_bin("tarjama").unwrap()
}

#[test]
fn every_subcommand_has_examples_and_the_exit_codes_are_documented() {
    let top = stdout(tarjama().arg("--help"));
    assert!(
        top.contains("Exit codes: 0 ok, 1 some inputs failed"),
        "{top}"
    );
    for sub in SUBCOMMANDS {
        let help = stdout(tarjama().args([sub, "--help"]));
        assert!(
            help.contains("Examples:"),
            "{sub} --help has no examples:\n{help}"
        );
    }
    for sub in ["list", "download", "info", "verify", "rm", "quantize"] {
        stdout(tarjama().args(["models", sub, "--help"]));
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_tarjama()"),
        ("zsh", "#compdef tarjama"),
        ("fish", "complete -c tarjama"),
    ] {
        let script = stdout(tarjama().args(["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let out = tarjama().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

#[test]
fn usage_errors_exit_2_and_no_color_means_no_escape_codes() {
    let out = tarjama()
        .env("NO_COLOR", "1")
        .args(["translate", "--beams", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.contains(&0x1b), "escape codes with NO_COLOR");
    let out = tarjama()
        .env("NO_COLOR", "1")
        .arg("--help")
        .output()
        .unwrap();
    assert!(!out.stdout.contains(&0x1b));
}

#[test]
fn verbose_reports_load_encode_and_decode_times() {
    let tmp = tempfile::tempdir().unwrap();
    let arabic = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex/ar.txt"),
    )
    .unwrap();
    let out = tarjama()
        .env("HF_HOME", tmp.path())
        .args(["translate", "--verbose", "--beams", "1", "--model"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny"))
        .write_stdin(arabic.lines().take(3).collect::<Vec<_>>().join("\n"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loaded in"), "{stderr}");
    assert!(
        stderr.contains("encode") && stderr.contains("decode"),
        "{stderr}"
    );
}
