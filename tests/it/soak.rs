//! Soak: a directory of 200 inputs, 10 of them bad in the ways the reliability audit found,
//! translated by two runs at once into one output tree while a third run is killed with SIGKILL
//! mid-run and run again. Afterwards every good input has exactly one output, identical to what a
//! lone run writes; the bad ones have none; no temporary or lock file remains; no input changed.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Every file under `dir` (links not followed), by path relative to it, with its sha256.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let digest = if meta.is_file() {
                    format!("{:x}", Sha256::digest(fs::read(&path).unwrap()))
                } else {
                    format!("link to {}", fs::read_link(&path).unwrap().display())
                };
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), digest);
            }
        }
    }
    files
}

const BAD: usize = 10;

/// 190 articles of one or two NTREX sentences (some in subdirectories), the 10 bad files, a
/// directory-symlink loop and a directory symlink out of the tree.
fn make_inputs(dir: &Path, outside: &Path) {
    let lines: Vec<String> = fs::read_to_string(common::shared_data().join("ntrex/ar.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for i in 0..190 {
        let sub = dir.join(format!("section-{}", i % 4));
        fs::create_dir_all(&sub).unwrap();
        let text = format!("{}\n\n{}\n", lines[2 * i], lines[2 * i + 1]);
        fs::write(sub.join(format!("article-{i:03}.txt")), text).unwrap();
    }
    let arabic = lines[500].as_bytes().to_vec();
    let utf16 = |big_endian: bool, bom: bool| -> Vec<u8> {
        let mut bytes = if bom {
            if big_endian {
                vec![0xfe, 0xff]
            } else {
                vec![0xff, 0xfe]
            }
        } else {
            Vec::new()
        };
        for unit in lines[501].encode_utf16() {
            let pair = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            bytes.extend_from_slice(&pair);
        }
        bytes
    };
    let mut late_cp1256 = arabic.clone();
    while late_cp1256.len() < 300 * 1024 {
        late_cp1256.extend_from_slice(b"\n\nA line of page furniture, no Arabic in it.");
    }
    late_cp1256.extend_from_slice(b"\n\xc7\xe1\xd1\xc6\xed\xd3\n");
    let bad: [(&str, Vec<u8>); BAD] = [
        (
            "bad-cp1256.txt",
            b"\xc7\xe1\xd1\xc6\xed\xd3 \xc7\xe1\xe3\xca\xcd\xcf\xc9\n".to_vec(),
        ),
        ("bad-cp1256-late.txt", late_cp1256),
        ("bad-utf16le-bom.txt", utf16(false, true)),
        ("bad-utf16le.txt", utf16(false, false)),
        ("bad-utf16be.txt", utf16(true, false)),
        ("bad-empty.txt", Vec::new()),
        ("bad-blank.txt", b" \n\n\t\n".to_vec()),
        (
            "bad-png.txt",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(),
        ),
        (
            "bad-gzip.txt",
            b"\x1f\x8b\x08\0\0\0\0\0\0\x03\xcb\x48\xcd\xc9".to_vec(),
        ),
        (
            "bad-latin1.txt",
            b"caf\xe9 cr\xe8me br\xfbl\xe9e\n".to_vec(),
        ),
    ];
    let bad_dir = dir.join("section-1");
    for (name, bytes) in bad {
        fs::write(bad_dir.join(name), bytes).unwrap();
    }
    fs::create_dir_all(outside).unwrap();
    fs::write(outside.join("elsewhere.txt"), &arabic).unwrap();
    std::os::unix::fs::symlink(dir, dir.join("section-2/loop")).unwrap();
    std::os::unix::fs::symlink(outside, dir.join("section-3/outside")).unwrap();
}

fn translate(input: &Path, output: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tarjama"));
    cmd.args(["translate", "--quiet", "--beams", "1", "--model"])
        .arg(common::fixtures().join("marian-tiny"))
        .arg(input)
        .arg("-o")
        .arg(output)
        .env("HF_HOME", cache)
        .env_remove("HF_HUB_OFFLINE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn concurrent_killed_and_rerun_batches_lose_and_duplicate_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, outside, cache) = (
        tmp.path().join("in"),
        tmp.path().join("outside"),
        tmp.path().join("hf"),
    );
    make_inputs(&input, &outside);
    let inputs_before = tree(&input);
    let outside_before = tree(&outside);

    // A lone run: the outputs every other run must reproduce, and the bad inputs it reports.
    let lone = tmp.path().join("lone");
    let out = translate(&input, &lone, &cache).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = tree(&lone);
    assert_eq!(expected.len(), 190, "{stderr}\n{:?}", expected.keys());
    assert!(expected
        .keys()
        .all(|p| p.to_string_lossy().contains("article-")));

    // Two runs into one tree, and a third killed with SIGKILL while it works, then rerun.
    let shared = tmp.path().join("shared");
    let first = translate(&input, &shared, &cache).spawn().unwrap();
    let second = translate(&input, &shared, &cache).spawn().unwrap();
    let mut killed = translate(&input, &shared, &cache).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    killed.kill().unwrap();
    killed.wait().unwrap();
    for run in [first, second] {
        let out = run.wait_with_output().unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rerun = translate(&input, &shared, &cache).output().unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );

    let written = tree(&shared);
    let extra: Vec<_> = written
        .keys()
        .filter(|p| !expected.contains_key(*p))
        .collect();
    assert!(extra.is_empty(), "files no lone run writes: {extra:?}");
    for (path, digest) in &expected {
        assert_eq!(
            written.get(path),
            Some(digest),
            "{} differs from the lone run's",
            path.display()
        );
    }
    assert_eq!(tree(&input), inputs_before, "an input changed");
    assert_eq!(
        tree(&outside),
        outside_before,
        "a file outside the tree changed"
    );
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Found by the soak test: a record that fails after its first chunk entered the window, with
/// every input before it already done (a rerun), was dropped while that chunk still waited, and
/// the next flush panicked ("chunks belong to open records", exit 101).
#[test]
fn a_rerun_over_an_input_that_fails_late_reports_it_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, cache) = (
        tmp.path().join("in"),
        tmp.path().join("out"),
        tmp.path().join("hf"),
    );
    fs::create_dir_all(&input).unwrap();
    let lines: Vec<String> = fs::read_to_string(common::shared_data().join("ntrex/ar.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for (i, line) in lines.iter().take(2).enumerate() {
        fs::write(input.join(format!("article-{i}.txt")), line).unwrap();
    }
    let mut late = lines[500].as_bytes().to_vec();
    while late.len() < 300 * 1024 {
        late.extend_from_slice(b"\n\nA line of page furniture, no Arabic in it.");
    }
    late.extend_from_slice(b"\n\xc7\xe1\xd1\xc6\xed\xd3\n");
    fs::write(input.join("bad-late.txt"), late).unwrap();
    for run in ["first", "rerun"] {
        let out = translate(&input, &output, &cache).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{run}: {stderr}");
        assert!(
            stderr.contains("bad-late.txt: it is not UTF-8"),
            "{run}: {stderr}"
        );
        assert_eq!(tree(&output).len(), 2, "{run}");
    }
}
