//! Model files made of many tiny entries are refused before they are decoded (issue 17, row 8):
//! a 20 MB SentencePiece model of empty pieces made the binary hold 1.1 GB, a 50 MB GGUF file of
//! 2.5 million metadata keys 486 MB. The test runs in a process of its own
//! (`common::alone_in_a_process`), since the peak memory of child processes (`RUSAGE_CHILDREN`)
//! is the largest of all the children a test process has waited for.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::common::{self, fixtures};

/// Runs `tarjama translate --model <model>` on a line of Arabic; it must fail with a model error
/// that says `what`.
fn translate_fails(home: &Path, model: &Path, what: &str) {
    let out = assert_cmd::Command::cargo_bin("tarjama")
        .unwrap()
        .env("HF_HOME", home)
        .env("HF_HUB_OFFLINE", "1")
        .env("RUST_BACKTRACE", "0")
        .args(["translate", "--quiet", "--model"])
        .arg(model)
        .write_stdin("قال الوزير.\n")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(what), "{what:?} not in: {stderr}");
}

/// The largest resident size, in MB, of the children waited for so far.
fn children_peak_mb() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let peak_kb = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    };
    peak_kb / 1024
}

#[test]
fn files_of_countless_tiny_entries_are_refused_in_bounded_memory() {
    if !common::alone_in_a_process(
        module_path!(),
        "files_of_countless_tiny_entries_are_refused_in_bounded_memory",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    // The Marian fixture with a source.spm of 10 million empty pieces (field 1, length 0).
    let model = tmp.path().join("marian");
    fs::create_dir(&model).unwrap();
    for entry in fs::read_dir(fixtures().join("marian-tiny")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, model.join(path.file_name().unwrap())).unwrap();
    }
    fs::write(model.join("source.spm"), [0x0a, 0x00].repeat(10_000_000)).unwrap();
    translate_fails(&home, &model, "it has 10000000 pieces");
    let peak = children_peak_mb();
    eprintln!("peak RSS refusing a 20 MB SentencePiece model: {peak} MB");
    // The file itself is 20 MB and the program about 30 MB.
    assert!(peak < 150, "peak RSS {peak} MB: the pieces were decoded");

    // A GGUF file of 2.5 million one-byte metadata entries, each 21 bytes in the file.
    let gguf = tmp.path().join("keys.gguf");
    let mut file = std::io::BufWriter::new(fs::File::create(&gguf).unwrap());
    let entries: u64 = 2_500_000;
    file.write_all(b"GGUF").unwrap();
    file.write_all(&3u32.to_le_bytes()).unwrap();
    file.write_all(&0u64.to_le_bytes()).unwrap(); // tensors
    file.write_all(&entries.to_le_bytes()).unwrap();
    for i in 0..entries {
        let key = format!("k{i:07}");
        file.write_all(&(key.len() as u64).to_le_bytes()).unwrap();
        file.write_all(key.as_bytes()).unwrap();
        file.write_all(&0u32.to_le_bytes()).unwrap(); // u8
        file.write_all(&[1]).unwrap();
    }
    drop(file);
    translate_fails(&home, &gguf, "2500000 metadata entries");
    let peak = children_peak_mb();
    eprintln!("peak RSS refusing a 50 MB GGUF header: {peak} MB");
    assert!(peak < 150, "peak RSS {peak} MB: the metadata was read");
}
