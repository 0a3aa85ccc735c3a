//! Running the `tarjama` binary, and reading the shared corpus, for the tests that go through the
//! command line.

use std::path::Path;

use assert_cmd::Command;

use super::{fixtures, shared};

/// Line `line` (counted from 1) of `../shared/data/ntrex/<file>`.
pub fn ntrex(file: &str, line: usize) -> String {
    std::fs::read_to_string(shared("ntrex").join(file))
        .unwrap()
        .lines()
        .nth(line - 1)
        .unwrap()
        .to_string()
}

/// The lines of `../shared/data/ntrex/<file>`.
pub fn ntrex_lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(shared("ntrex").join(file))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A `tarjama` command with an empty Hugging Face cache, so no test touches the user's.
pub fn tarjama(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("tarjama").unwrap();
    cmd.env("HF_HOME", cache)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE");
    cmd
}

/// `tarjama translate` with the tiny Marian fixture, greedy and quiet.
pub fn translate_cmd(cache: &Path) -> Command {
    let mut cmd = tarjama(cache);
    cmd.args(["translate", "--quiet", "--beams", "1", "--model"])
        .arg(fixtures().join("marian-tiny"));
    cmd
}

/// Runs a command that must succeed (its stderr shown where it does not) and returns what it
/// wrote.
pub fn succeeded(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must succeed and returns its stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(succeeded(cmd).stdout).unwrap()
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}
