//! `tarjama models` on a Hugging Face cache laid out as hf-hub writes it, holding the fixture
//! model under the opus-mt-ar-en preset: list, info, verify (hashes and loading), a corrupted
//! blob, rm, and a translation through the preset offline.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sha1::Digest;

use crate::common::{self, stdout_of as stdout};

pub(crate) const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub(crate) const REPO_DIR: &str = "hub/models--Helsinki-NLP--opus-mt-ar-en";

fn fixture_model() -> PathBuf {
    common::fixtures().join("marian-tiny")
}

/// `tarjama` offline, with the Hugging Face cache in `home`.
pub(crate) fn tarjama(home: &Path) -> Command {
    let mut cmd = common::tarjama(home);
    cmd.env("HF_HUB_OFFLINE", "1");
    cmd
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Puts the fixture model in `home`'s cache as the preset's revision `main`: each file a blob
/// named by the etag the Hub gives it (SHA-256 for LFS files, the Git blob SHA-1 otherwise) and
/// linked from the snapshot. Returns the total size.
pub(crate) fn cache_fixture_as_preset(home: &Path) -> u64 {
    let repo = home.join(REPO_DIR);
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("snapshots").join(COMMIT)).unwrap();
    fs::write(repo.join("refs/main"), COMMIT).unwrap();
    let mut total = 0;
    for entry in fs::read_dir(fixture_model()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = fs::read(&path).unwrap();
        total += bytes.len() as u64;
        let etag = if name.ends_with(".safetensors") || name.ends_with(".spm") {
            hex(&sha2::Sha256::digest(&bytes))
        } else {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {}\0", bytes.len()).as_bytes());
            h.update(&bytes);
            hex(&h.finalize())
        };
        fs::write(repo.join("blobs").join(&etag), &bytes).unwrap();
        std::os::unix::fs::symlink(
            Path::new("../../blobs").join(&etag),
            repo.join("snapshots").join(COMMIT).join(&name),
        )
        .unwrap();
    }
    total
}

fn preset_row(list: &str) -> String {
    list.lines()
        .find(|l| l.starts_with("opus-mt-ar-en "))
        .expect("the preset is listed")
        .to_string()
}

#[test]
fn list_info_verify_translate_and_remove_a_cached_preset() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let list = stdout(tarjama(home).args(["models", "list"]));
    for preset in [
        "opus-mt-ar-en",
        "nllb-200-distilled-600m",
        "qwen2.5-0.5b-instruct",
    ] {
        assert!(list.contains(preset), "{list}");
    }
    assert!(preset_row(&list).contains(" no "), "{list}");

    let size = cache_fixture_as_preset(home);
    let list = stdout(tarjama(home).args(["models", "list"]));
    assert!(preset_row(&list).contains(" yes "), "{list}");
    let json = stdout(tarjama(home).args(["models", "list", "--format", "json"]));
    let record: serde_json::Value = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "opus-mt-ar-en")
        .unwrap();
    assert_eq!(record["cached"], "yes");
    assert_eq!(record["cached_bytes"], size);

    let info = stdout(tarjama(home).args(["models", "info", "opus-mt-ar-en"]));
    for expect in [
        "family:      marian",
        "license:     Apache-2.0",
        "Helsinki-NLP/opus-mt-ar-en",
        "cached:      yes",
        "Tatoeba test ar→en BLEU: 49.4",
    ] {
        assert!(info.contains(expect), "{expect:?} missing in\n{info}");
    }

    let verify = stdout(tarjama(home).args(["models", "verify", "opus-mt-ar-en"]));
    assert!(
        verify.contains("ok        model.safetensors (SHA-256"),
        "{verify}"
    );
    assert!(
        verify.contains("ok        config.json (Git SHA-1"),
        "{verify}"
    );
    assert!(verify.contains("loads     opus-mt-ar-en"), "{verify}");

    // The preset resolves offline from the cache, and records carry the snapshot's commit.
    let ar = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex/ar.txt"),
    )
    .unwrap();
    let record = stdout(
        tarjama(home)
            .args(["translate", "--quiet", "--beams", "1", "--format", "jsonl"])
            .args(["--model", "opus-mt-ar-en"])
            .write_stdin(ar.lines().nth(2).unwrap()),
    );
    let record: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
    assert_eq!(record["model"], "opus-mt-ar-en");
    assert_eq!(record["model_revision"], COMMIT);

    // A flipped byte in a blob is found.
    let snapshot_weights = home
        .join(REPO_DIR)
        .join("snapshots")
        .join(COMMIT)
        .join("model.safetensors");
    let blob = fs::canonicalize(&snapshot_weights).unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let out = tarjama(home)
        .args(["models", "verify", "opus-mt-ar-en"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CORRUPT   model.safetensors"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("models rm opus-mt-ar-en"));

    let removed = stdout(tarjama(home).args(["models", "rm", "opus-mt-ar-en"]));
    assert!(removed.starts_with("removed opus-mt-ar-en"), "{removed}");
    assert!(!home.join(REPO_DIR).exists());
    let list = stdout(tarjama(home).args(["models", "list"]));
    assert!(preset_row(&list).contains(" no "), "{list}");
}

#[test]
fn model_command_errors() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let out = tarjama(home)
        .args(["models", "info", "no-such-model"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "an unknown preset is a model error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the presets are opus-mt-ar-en"));

    let out = tarjama(home)
        .args(["models", "verify", "opus-mt-ar-en"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("models download opus-mt-ar-en"));

    // Offline, a download can only say what is missing.
    let out = tarjama(home)
        .args(["models", "download", "opus-mt-ar-en"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HF_HUB_OFFLINE"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
