//! The release binary runs on CPUs other than the one that built it. Built with
//! `target-cpu=native` on an AVX-512 machine it died with SIGILL on an AVX2-only CPU before
//! parsing its arguments; the portable baseline (x86-64-v3, `.cargo/config.toml`) must run there,
//! with tarjama's own AVX-512 kernels switched off by their run-time checks.
//!
//! An AVX2 CPU without AVX-512 is emulated with QEMU's user mode (`qemu-x86_64 -cpu Haswell`,
//! Debian's `qemu-user`), which raises SIGILL on any instruction that CPU lacks. `.ci/run`
//! installs it; without it the test says it was skipped.

use crate::common;

use std::path::Path;
use std::process::Command;

fn qemu() -> Option<&'static str> {
    let found = Command::new("qemu-x86_64").arg("--version").output();
    found
        .is_ok_and(|o| o.status.success())
        .then_some("qemu-x86_64")
}

#[test]
#[cfg(target_arch = "x86_64")]
fn runs_on_an_avx2_cpu_without_avx512() {
    let Some(qemu) = qemu() else {
        eprintln!("skipped: qemu-x86_64 is not installed (Debian: apt-get install qemu-user)");
        return;
    };
    let tarjama = env!("CARGO_BIN_EXE_tarjama");
    let model = common::fixtures().join("marian-tiny");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "أعرب أعضاء جمعية ويلز الوطنية عن قلقهم\n").unwrap();
    let translate = |program: &str, prefix: &[&str]| {
        let out = Command::new(program)
            .args(prefix)
            .arg(tarjama)
            .args(["translate", "--quiet", "--model"])
            .arg(&model)
            .arg(Path::new(&input))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {prefix:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let emulated = translate(qemu, &["-cpu", "Haswell"]);
    let native = translate("env", &[]);
    assert!(!emulated.trim().is_empty());
    assert_eq!(
        emulated, native,
        "the emulated AVX2 run translates differently"
    );
}

/// The whole binary, not only the paths one run takes: AVX-512 registers appear only in
/// kernels that are entered after a run-time CPU check (tarjama's and candle's AVX-512 GEMMs,
/// candle's AMX repacking, crc32fast's). Built with `target-cpu=native` on an AVX-512 machine
/// (Zen 4), 2,553 other functions used them, 8 of them in `tarjama::hub`.
#[test]
#[cfg(target_arch = "x86_64")]
fn avx512_only_in_run_time_dispatched_kernels() {
    let tarjama = env!("CARGO_BIN_EXE_tarjama");
    let Ok(out) = Command::new("objdump")
        .args(["-d", "-C", "--no-show-raw-insn", tarjama])
        .output()
    else {
        eprintln!("skipped: objdump is not installed (Debian: apt-get install binutils)");
        return;
    };
    assert!(out.status.success(), "objdump failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let dispatched = |f: &str| {
        [
            "avx512",
            "repack_x86::",
            "crc32fast::specialized::pclmulqdq",
        ]
        .iter()
        .any(|k| f.contains(k))
    };
    let mut function = "";
    let mut offenders = std::collections::BTreeSet::new();
    for line in text.lines() {
        if line.ends_with(">:") {
            function = line;
        } else if line.contains("%zmm") && !dispatched(function) {
            offenders.insert(function.to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "{} functions use AVX-512 without a run-time check, e.g. {:?}",
        offenders.len(),
        offenders.iter().take(5).collect::<Vec<_>>()
    );
}
