//! Saved int8 weights (`tarjama models quantize`): read back by `--quantize q8_0` they give the
//! ids quantizing at load gives, for every encoder-decoder family; stale or corrupt files are
//! noticed, not read, and rewritten by the command; and the command's errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};
use tarjama::device::Precision;
use tarjama::hub::{self, HubOptions};
use tarjama::pipeline::{int8, Seq2Seq};

use crate::common::{self, stderr_of, stdout_of as stdout};

const SAVED: &str = "tarjama-q8_0.safetensors";

/// A copy of fixture model `name` in `dir`, so nothing is written beside the committed one.
fn copy_fixture(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    fs::create_dir_all(&to).unwrap();
    for entry in fs::read_dir(common::fixtures().join(name)).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    to
}

fn load_q8(model: &Path) -> Seq2Seq {
    let files = hub::resolve(model.to_str().unwrap(), &HubOptions::default()).unwrap();
    let precision = Precision {
        dtype: DType::F32,
        quantize: Some(GgmlDType::Q8_0),
    };
    let mut model = Seq2Seq::load(&files, &Device::Cpu, precision).unwrap();
    model.generation.num_beams = 1;
    model.generation.max_length = 24;
    model
}

fn generate(model: &Seq2Seq) -> Vec<Vec<u32>> {
    // Their first words: the fixtures have 128 positions, and some tokenizers split Arabic finely.
    let lines: Vec<String> = common::ntrex_lines("ar.txt")[..8]
        .iter()
        .map(|l| l.split_whitespace().take(10).collect::<Vec<_>>().join(" "))
        .collect();
    let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
    texts
        .chunks(4)
        .flat_map(|batch| model.generate_ids(batch).unwrap())
        .collect()
}

/// Whether this CPU runs the int8 kernel the saved weights are for; else says the test skips.
fn int8_kernel() -> bool {
    let runs = int8::saved_applies();
    if !runs {
        eprintln!("skipped: this CPU has neither AVX2 with FMA nor AVX-512");
    }
    runs
}

#[test]
fn saved_int8_weights_give_the_ids_of_quantizing_at_load_in_every_family() {
    if !int8_kernel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "marian-tiny",
        "bart-tiny",
        "mbart-tiny",
        "nllb-tiny",
        "t5-tiny",
    ] {
        let model = copy_fixture(name, dir.path());
        let at_load = load_q8(&model);
        assert!(
            at_load.int8_origin().unwrap().contains("quantized at load"),
            "{name}: {:?}",
            at_load.int8_origin()
        );
        let expected = generate(&at_load);

        let files = hub::resolve(model.to_str().unwrap(), &HubOptions::default()).unwrap();
        let made = int8::make(&files).unwrap();
        assert_eq!(made.path, model.join(SAVED));
        assert!(made.layers > 0);
        fs::write(&made.path, &made.bytes).unwrap();

        let saved = load_q8(&model);
        assert_eq!(
            saved.int8_origin(),
            Some(format!("int8 read from {}", made.path.display()).as_str()),
            "{name}"
        );
        assert_eq!(generate(&saved), expected, "{name}");
        eprintln!("{name}: {} layers read back, same ids", made.layers);
    }
}

/// The command line on a copy of the Marian fixture: saved once, then up to date; the weights
/// touched, so the file is stale and not read; rewritten; then garbage and truncated files.
#[test]
fn stale_and_corrupt_saved_weights_are_not_read_and_the_command_rewrites_them() {
    if !int8_kernel() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let model = copy_fixture("marian-tiny", home.path());
    let saved = model.join(SAVED);
    let quantize = || {
        let mut cmd = common::tarjama(home.path());
        cmd.args(["models", "quantize"]).arg(&model);
        cmd
    };
    let translate = || {
        let mut cmd = common::tarjama(home.path());
        cmd.args([
            "translate",
            "--beams",
            "1",
            "--quantize",
            "q8_0",
            "--verbose",
            "--model",
        ])
        .arg(&model)
        .write_stdin(common::ntrex("ar.txt", 1) + "\n");
        cmd.output().unwrap()
    };
    let expected = translate();
    assert!(expected.status.success(), "{}", stderr_of(&expected));
    assert!(stderr_of(&expected).contains("int8 quantized at load (`tarjama models quantize"));

    let out = stdout(&mut quantize());
    assert!(out.contains("int8 weights of 33 layers saved to"), "{out}");
    let written = fs::metadata(&saved).unwrap().modified().unwrap();
    let out = stdout(&mut quantize());
    assert!(out.contains("are up to date"), "{out}");
    assert_eq!(fs::metadata(&saved).unwrap().modified().unwrap(), written);
    let read = translate();
    assert!(
        stderr_of(&read).contains(&format!("int8 read from {}", saved.display())),
        "{}",
        stderr_of(&read)
    );
    assert_eq!(read.stdout, expected.stdout);

    // The weights replaced in place since: newer modification time, same size.
    let weights = fs::File::options()
        .write(true)
        .open(model.join("model.safetensors"))
        .unwrap();
    weights
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let stale = translate();
    let err = stderr_of(&stale);
    assert!(stale.status.success(), "{err}");
    assert!(
        err.contains("warning: not reading the saved int8 weights")
            && err.contains("stale: the model's weights files changed")
            && err.contains("int8 quantized at load"),
        "{err}"
    );
    assert_eq!(stale.stdout, expected.stdout);
    let out = stdout(&mut quantize());
    assert!(
        out.contains("replacing") && out.contains("(stale:"),
        "{out}"
    );
    assert!(stderr_of(&translate()).contains("int8 read from"));

    let bytes = fs::read(&saved).unwrap();
    for (what, content) in [
        ("garbage", b"not safetensors at all".to_vec()),
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
    ] {
        fs::write(&saved, content).unwrap();
        let run = translate();
        let err = stderr_of(&run);
        assert!(run.status.success(), "{what}: {err}");
        assert!(err.contains("(corrupt:"), "{what}: {err}");
        assert_eq!(run.stdout, expected.stdout, "{what}");
        let out = stdout(&mut quantize());
        assert!(
            out.contains("replacing") && out.contains("(corrupt:"),
            "{what}: {out}"
        );
        assert_eq!(
            fs::read(&saved).unwrap(),
            bytes,
            "{what}: rewritten the same"
        );
    }
    // Nothing but the saved file was added beside the weights: no temporary files left.
    let mut names: Vec<String> = fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert!(names.contains(&SAVED.to_string()));
    assert_eq!(names.len(), 8, "{names:?}");
}

/// A preset in the Hugging Face cache gets its file in its snapshot, beside its weights, and
/// `models rm` removes it with the rest.
#[test]
fn a_cached_preset_is_quantized_in_its_snapshot_and_removed_with_it() {
    if !int8_kernel() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    crate::models_cli::cache_fixture_as_preset(home.path());
    let tarjama = || crate::models_cli::tarjama(home.path());
    let info = || stdout(tarjama().args(["models", "info", "opus-mt-ar-en"]));
    assert!(info().contains("int8:        not saved (`tarjama models quantize opus-mt-ar-en`"));
    let out = stdout(tarjama().args(["models", "quantize", "opus-mt-ar-en"]));
    let snapshot = home
        .path()
        .join(crate::models_cli::REPO_DIR)
        .join("snapshots")
        .join(crate::models_cli::COMMIT);
    assert!(
        out.contains(&snapshot.join(SAVED).display().to_string()),
        "{out}"
    );
    assert!(snapshot.join(SAVED).is_file());
    let info = info();
    assert!(info.contains("int8:        saved, 1.2 MB ("), "{info}");
    let run = tarjama()
        .args(["translate", "--quiet", "--verbose", "--quantize", "q8_0"])
        .args(["--model", "opus-mt-ar-en"])
        .write_stdin(common::ntrex("ar.txt", 2) + "\n")
        .output()
        .unwrap();
    assert!(
        stderr_of(&run).contains("int8 read from"),
        "{}",
        stderr_of(&run)
    );
    stdout(tarjama().args(["models", "rm", "opus-mt-ar-en"]));
    assert!(!home.path().join(crate::models_cli::REPO_DIR).exists());
}

/// Runs `cmd`, which must fail with `code` and a one-line error containing `says`.
fn fails(code: i32, says: &str, cmd: &mut assert_cmd::Command) {
    let out = cmd.output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(says), "{says:?} not in {err}");
}

#[test]
fn the_command_refuses_what_it_cannot_quantize_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let quantize = |model: &Path| {
        let mut cmd = common::tarjama(home.path());
        cmd.env("HF_HUB_OFFLINE", "1")
            .args(["models", "quantize"])
            .arg(model);
        cmd
    };
    let gguf = common::fixtures().join("gguf-tiny/qwen2.gguf");
    fails(
        2,
        "is a GGUF chat model, quantized already",
        &mut quantize(&gguf),
    );
    fails(
        2,
        "is a GGUF chat model",
        common::tarjama(home.path()).args(["models", "quantize", "qwen2.5-0.5b-instruct"]),
    );
    fails(
        3,
        "unknown model",
        &mut quantize(Path::new("no-such-model")),
    );
    let empty = home.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fails(3, "config.json", &mut quantize(&empty));
    fails(
        3,
        "not in the Hugging Face cache",
        common::tarjama(home.path())
            .env("HF_HUB_OFFLINE", "1")
            .args(["models", "quantize", "opus-mt-ar-en"]),
    );
    if !int8_kernel() {
        return;
    }
    // A directory where the file goes is left alone.
    let model = copy_fixture("marian-tiny", home.path());
    fs::create_dir(model.join(SAVED)).unwrap();
    fails(
        1,
        "a directory of that name is in the way",
        &mut quantize(&model),
    );
    fs::remove_dir(model.join(SAVED)).unwrap();
    // A model directory that is not writable (unless this runs as root, who may write anyway).
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&model, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(model.join("probe"), "").is_ok() {
        fs::remove_file(model.join("probe")).unwrap();
        eprintln!("skipped the read-only directory: this user writes anyway");
    } else {
        fails(1, "cannot write", &mut quantize(&model));
        assert!(!model.join(SAVED).exists());
    }
    fs::set_permissions(&model, fs::Permissions::from_mode(0o755)).unwrap();
}
