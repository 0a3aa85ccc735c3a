//! `scripts/cuda-toolkit` says what is wrong before it downloads anything: without cudarc's
//! sources it tries `cargo fetch`, and when that cannot get them either it prints its own
//! message (it used to stop silently, exit 1, at an `ls` that failed under `pipefail`).
//! The toolkit itself (1.5 GB of wheels) is never downloaded here.

use std::path::PathBuf;
use std::process::Command;

fn script() -> Command {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/cuda-toolkit"));
    cmd
}

#[test]
fn cuda_toolkit_names_missing_crates_instead_of_failing_silently() {
    let tmp = tempfile::tempdir().unwrap();
    // An empty cargo home, offline: cargo fetch runs and cannot get the crates.
    let out = script()
        .env("CARGO_HOME", tmp.path().join("cargo"))
        .env("CARGO_NET_OFFLINE", "true")
        .env("TARJAMA_CUDA_DIR", tmp.path().join("cuda"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no environment is printed");
    assert!(stderr.contains("running cargo fetch"), "{stderr}");
    assert!(
        stderr.contains("cuda-toolkit: cudarc's sources are not in the cargo registry"),
        "{stderr}"
    );
    assert!(!tmp.path().join("cuda").exists(), "nothing installed");
}

#[test]
fn cuda_toolkit_finds_fetched_crates_and_goes_on_to_the_toolkit() {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let registry = home.join("registry/src");
    let has_cudarc = std::fs::read_dir(&registry)
        .into_iter()
        .flatten()
        .flatten()
        .any(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|c| c.file_name().to_string_lossy().starts_with("cudarc-"))
        });
    if !has_cudarc {
        eprintln!(
            "skipped: cudarc's sources are not in {}",
            registry.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A Python without pip stops the script at the step after the crates, before any download.
    let out = script()
        .env("CARGO_HOME", &home)
        .env("TARJAMA_CUDA_DIR", tmp.path().join("cuda"))
        .env("TARJAMA_PYTHON", "false")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("false has no pip"), "{stderr}");
    assert!(!stderr.contains("cargo fetch"), "{stderr}");
}
