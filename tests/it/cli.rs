//! End-to-end tests of `tarjama translate` on the tiny fixture model, and of every bad-input path:
//! one clear line on stderr, a non-zero exit, no panic, no output file left behind.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

use crate::common::{fixtures, ntrex, stdout_of, tarjama, translate_cmd};

fn model_dir() -> PathBuf {
    fixtures().join("marian-tiny")
}

/// A copy of the fixture model in `tmp/model` without the file named `except`.
fn copy_model_dir(tmp: &Path, except: &str) -> PathBuf {
    let dir = tmp.join("model");
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(model_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name != except {
            fs::copy(&path, dir.join(name)).unwrap();
        }
    }
    dir
}

/// Runs a failing command and checks the shape of its error.
fn assert_clean_failure(cmd: &mut Command, expect: &str) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains(&expect.to_lowercase()),
        "stderr {stderr:?} does not mention {expect:?}"
    );
    assert!(out.stdout.is_empty(), "partial output on stdout");
    stderr
}

#[test]
fn file_in_file_out_reproduces_training_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.txt");
    let output = tmp.path().join("out.txt");
    fs::write(&input, format!("{}\n", ntrex("ar.txt", 3))).unwrap();
    translate_cmd(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        format!("{}\n", ntrex("en.txt", 3))
    );
}

#[test]
fn stdin_to_stdout_keeps_paragraphs_blank_lines_and_non_arabic_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let arabic = ntrex("ar.txt", 3);
    let input = format!("{arabic}\n\nhttps://example.com/news/1\n2024\n\n\n{arabic}\n");
    let stdout = stdout_of(translate_cmd(tmp.path()).write_stdin(input));
    let english = ntrex("en.txt", 3);
    assert_eq!(
        stdout,
        format!("{english}\n\nhttps://example.com/news/1\n2024\n\n\n{english}\n")
    );
}

#[test]
fn dash_reads_stdin_and_output_dash_is_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = stdout_of(
        translate_cmd(tmp.path())
            .args(["-", "-o", "-"])
            .write_stdin(ntrex("ar.txt", 3)),
    );
    assert_eq!(stdout, ntrex("en.txt", 3));
}

#[test]
fn legacy_pytorch_weights_give_the_same_translation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model_dir(tmp.path(), "model.safetensors");
    fs::copy(
        fixtures().join("marian-tiny-ref/pytorch_model.bin"),
        dir.join("pytorch_model.bin"),
    )
    .unwrap();
    let stdout = stdout_of(
        tarjama(tmp.path())
            .args(["translate", "--quiet", "--beams", "1", "--model"])
            .arg(&dir)
            .write_stdin(ntrex("ar.txt", 3)),
    );
    assert_eq!(stdout, ntrex("en.txt", 3));
}

#[test]
fn missing_input_file() {
    let tmp = tempfile::tempdir().unwrap();
    let output = tmp.path().join("out.txt");
    assert_clean_failure(
        translate_cmd(tmp.path())
            .arg(tmp.path().join("nope.txt"))
            .arg("-o")
            .arg(&output),
        "nope.txt",
    );
    assert!(!output.exists());
}

#[test]
fn directory_as_input() {
    let tmp = tempfile::tempdir().unwrap();
    assert_clean_failure(translate_cmd(tmp.path()).arg(tmp.path()), "directory");
}

#[test]
fn non_utf8_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("cp1256.txt");
    // "مرحبا" in Windows-1256.
    fs::write(&input, [0xe3, 0xd1, 0xcd, 0xc8, 0xc7, b'\n']).unwrap();
    let output = tmp.path().join("out.txt");
    assert_clean_failure(
        translate_cmd(tmp.path()).arg(&input).arg("-o").arg(&output),
        "UTF-8",
    );
    assert!(!output.exists());
}

#[test]
fn empty_input() {
    let tmp = tempfile::tempdir().unwrap();
    assert_clean_failure(translate_cmd(tmp.path()).write_stdin("  \n\n"), "empty");
}

#[test]
fn model_directory_missing_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model_dir(tmp.path(), "vocab.json");
    let output = tmp.path().join("out.txt");
    let mut cmd = tarjama(tmp.path());
    cmd.args(["translate", "--quiet", "--model"])
        .arg(&dir)
        .arg("-o")
        .arg(&output)
        .write_stdin("مرحبا");
    assert_clean_failure(&mut cmd, "vocab.json");
    assert!(!output.exists());
}

#[test]
fn corrupt_weights_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model_dir(tmp.path(), "");
    let weights = dir.join("model.safetensors");
    let bytes = fs::read(&weights).unwrap();
    fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let output = tmp.path().join("out.txt");
    let mut cmd = tarjama(tmp.path());
    cmd.args(["translate", "--quiet", "--model"])
        .arg(&dir)
        .arg("-o")
        .arg(&output)
        .write_stdin("مرحبا");
    assert_clean_failure(&mut cmd, "corrupt");
    assert!(!output.exists());
}

#[test]
fn unknown_preset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = tarjama(tmp.path());
    cmd.args(["translate", "--model", "opus-mt-xx-yy"])
        .write_stdin("مرحبا");
    let err = assert_clean_failure(&mut cmd, "unknown model");
    assert!(err.contains("opus-mt-ar-en"), "should list presets: {err}");
}

#[test]
fn offline_with_nothing_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = tarjama(tmp.path());
    cmd.args(["translate", "--offline", "--model", "opus-mt-ar-en"])
        .write_stdin("مرحبا");
    assert_clean_failure(&mut cmd, "offline");
    let mut cmd = tarjama(tmp.path());
    cmd.env("HF_HUB_OFFLINE", "1")
        .args(["translate", "--model", "Helsinki-NLP/opus-mt-ar-en"])
        .write_stdin("مرحبا");
    assert_clean_failure(&mut cmd, "not in the Hugging Face cache");
}

#[test]
fn unwritable_output_path() {
    let tmp = tempfile::tempdir().unwrap();
    let output = tmp.path().join("no-such-dir/out.txt");
    assert_clean_failure(
        translate_cmd(tmp.path())
            .arg("-o")
            .arg(&output)
            .write_stdin(ntrex("ar.txt", 3)),
        "cannot write",
    );
    assert!(!output.exists());
}

#[test]
fn existing_output_survives_a_failed_run() {
    let tmp = tempfile::tempdir().unwrap();
    let output = tmp.path().join("out.txt");
    fs::write(&output, "previous translation\n").unwrap();
    assert_clean_failure(
        translate_cmd(tmp.path())
            .arg(tmp.path().join("missing.txt"))
            .arg("-o")
            .arg(&output),
        "missing.txt",
    );
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "previous translation\n"
    );
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "temporary file left behind"
    );
}

#[test]
fn cuda_in_a_cpu_build_names_the_feature() {
    if cfg!(feature = "cuda") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = translate_cmd(tmp.path());
    cmd.args(["--device", "cuda"]).write_stdin("مرحبا");
    assert_clean_failure(&mut cmd, "--features cuda");
}

#[test]
fn sentence_longer_than_the_model_positions_is_split_not_truncated() {
    // 40 NTREX sentences chained with Arabic commas: one "sentence" far over 256 positions.
    let text = fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex/ar.txt"),
    )
    .unwrap();
    let clauses: Vec<&str> = text
        .lines()
        .take(40)
        .map(|l| l.trim_end_matches(['.', '؟', '!', '"', '”']))
        .collect();
    let long = clauses.join("، ");
    let tokenizer = tarjama::tokenizer::MarianTokenizer::from_dir(&model_dir()).unwrap();
    assert!(
        tokenizer.count_tokens(&long) > 256,
        "input must exceed the fixture's 256 positions"
    );
    assert_eq!(tarjama::document::split_sentences(&long).len(), 1);

    let tmp = tempfile::tempdir().unwrap();
    let stdout = stdout_of(translate_cmd(tmp.path()).write_stdin(long));
    let english = stdout;
    assert_eq!(english.lines().count(), 1);
    // Every part is translated: far more words come out than one part could hold.
    assert!(english.split_whitespace().count() > 150, "{english}");
}

#[test]
fn output_cut_at_max_length_is_retranslated_in_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = stdout_of(
        translate_cmd(tmp.path())
            .args(["--max-length", "8"])
            .write_stdin(ntrex("ar.txt", 3)),
    );
    // Seven tokens at most would fit one pass; the halves together give more.
    let words = stdout.split_whitespace().count();
    assert!(words > 7, "only {words} words: the output was truncated");
}

#[test]
fn strip_boilerplate_drops_the_footer_of_the_example_article() {
    let article =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/document/article-ar.txt");
    let lines = fs::read_to_string(&article).unwrap().lines().count();
    let tmp = tempfile::tempdir().unwrap();
    let full = translate_cmd(tmp.path()).arg(&article).output().unwrap();
    let stripped = translate_cmd(tmp.path())
        .arg(&article)
        .arg("--strip-boilerplate")
        .output()
        .unwrap();
    assert!(full.status.success() && stripped.status.success());
    let full = String::from_utf8(full.stdout).unwrap();
    let stripped = String::from_utf8(stripped.stdout).unwrap();
    assert_eq!(
        full.lines().count(),
        lines,
        "translate keeps every line by default"
    );
    assert!(stripped.lines().count() < lines);
    // Everything kept is translated exactly as in the full run.
    let kept: Vec<&str> = stripped.lines().filter(|l| !l.is_empty()).collect();
    assert!(kept.iter().all(|l| full.lines().any(|f| f == *l)));
}

/// `--quantize q8_0` (int8 weights) and `--threads` give the f32 translation of a training
/// sentence.
#[test]
fn int8_weights_and_one_thread_translate_a_training_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stdout_of(
        translate_cmd(tmp.path())
            .args(["--quantize", "q8_0", "--threads", "1"])
            .write_stdin(ntrex("ar.txt", 3)),
    );
    assert_eq!(out.trim_end(), ntrex("en.txt", 3));
}

/// Batches cut by a token budget translate exactly as the default batches: with a budget of one
/// token every sentence is its own batch, and padded-batch decoding changes no output.
#[test]
fn token_budget_batches_give_the_same_translation() {
    let tmp = tempfile::tempdir().unwrap();
    let text: String = (1..=6).map(|i| ntrex("ar.txt", i) + "\n").collect();
    let batched = stdout_of(translate_cmd(tmp.path()).write_stdin(text.clone()));
    let one_by_one = stdout_of(
        translate_cmd(tmp.path())
            .args(["--batch-tokens", "1"])
            .write_stdin(text),
    );
    assert_eq!(batched.lines().count(), 6);
    assert_eq!(one_by_one, batched);
}

/// Bad `--quantize`, `--threads` and batch values are usage errors (exit 2) that say what to use.
#[test]
fn bad_quantize_and_threads_values() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (["--quantize", "q3"], "use q8_0"),
        // 0 is the default, as RAYON_NUM_THREADS=0 is to rayon: --threads takes that variable.
        (["--threads", "two"], "--threads"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-tokens", "0"], "--batch-tokens"),
    ] {
        let out = translate_cmd(tmp.path())
            .args(args)
            .write_stdin("مرحبا")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(expect), "{args:?}: {first:?}");
        assert!(out.stdout.is_empty());
    }
}

/// Settings that cannot give a translation or a summary are usage errors (exit 2) that name the
/// flag and what to use, before any model is loaded or input read. Before, `--max-length 0` and
/// `--max-tokens 0` gave empty output with exit 0, `--repetition-penalty 0` a stuttering one,
/// NaN penalties were accepted, and `--temperature NaN` failed as a model error (exit 3).
#[test]
fn degenerate_settings_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        ("translate", &["--max-length", "0"], "at least 3"),
        ("translate", &["--max-length", "2"], "at least 3"),
        (
            "translate",
            &["--min-length", "20", "--max-length", "10"],
            "--min-length",
        ),
        ("translate", &["--beams", "0"], "--beams"),
        ("translate", &["--repetition-penalty", "0"], "above 0"),
        ("translate", &["--repetition-penalty", "-1"], "above 0"),
        ("translate", &["--repetition-penalty", "NaN"], "above 0"),
        ("translate", &["--length-penalty", "NaN"], "finite"),
        ("translate", &["--length-penalty", "inf"], "finite"),
        ("summarize", &["--max-length", "0"], "at least 3"),
        ("summarize", &["--max-tokens", "0"], "--max-tokens"),
        ("summarize", &["--temperature", "NaN"], "0 (greedy)"),
        ("summarize", &["--temperature", "-1"], "0 (greedy)"),
        ("summarize", &["--temperature", "inf"], "0 (greedy)"),
        ("summarize", &["--top-p", "0"], "above 0 and at most 1"),
        ("summarize", &["--top-p", "1.5"], "above 0 and at most 1"),
        ("summarize", &["--top-p", "NaN"], "above 0 and at most 1"),
        ("summarize", &["--repetition-penalty", "0"], "above 0"),
        (
            "eval",
            &["--max-length", "0", "--ref", "r.txt", "--src", "s.txt"],
            "at least 3",
        ),
    ];
    for (command, args, expect) in cases {
        let out = tarjama(tmp.path())
            .arg(command)
            .args(["--model"])
            .arg(model_dir())
            .args(*args)
            .write_stdin("مرحبا")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command} {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(args[0]) && first.contains(expect),
            "{command} {args:?}: {first:?}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// The edges of each range are accepted: they are settings that work.
#[test]
fn edge_settings_translate() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stdout_of(
        translate_cmd(tmp.path())
            .args([
                "--max-length",
                "3",
                "--min-length",
                "2",
                "--length-penalty",
                "-0.5",
            ])
            .args(["--repetition-penalty", "0.5", "--no-repeat-ngram-size", "0"])
            .write_stdin(ntrex("ar.txt", 3)),
    );
    assert!(out.chars().any(|c| c.is_ascii_alphabetic()), "{out:?}");
}

/// UTF-16 without a byte-order mark is reported as UTF-16 (exit 1), as it is with one.
#[test]
fn utf16_input_without_bom() {
    let tmp = tempfile::tempdir().unwrap();
    let arabic = ntrex("ar.txt", 3) + "\n";
    for (name, bytes) in [
        (
            "le.txt",
            arabic
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        ),
        (
            "be.txt",
            arabic.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ),
    ] {
        let input = tmp.path().join(name);
        fs::write(&input, bytes).unwrap();
        let mut cmd = translate_cmd(tmp.path());
        cmd.arg(&input);
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_clean_failure(&mut cmd, "UTF-16");
    }
}

/// A copy of the fixture model whose config.json does not match its weights, so that loading
/// fails inside candle with one of its errors that capture a backtrace.
fn mismatched_model(tmp: &Path) -> PathBuf {
    let dir = copy_model_dir(tmp, "");
    let config = fs::read_to_string(dir.join("config.json")).unwrap();
    let config = config.replace("\"d_model\": 128", "\"d_model\": 64");
    fs::write(dir.join("config.json"), config).unwrap();
    dir
}

/// With RUST_BACKTRACE=1 (set in many shells) an error is still one line: candle's errors
/// carried a 30-frame backtrace into the message.
#[test]
fn errors_are_one_line_with_rust_backtrace_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mismatched_model(tmp.path());
    for var in ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        let mut cmd = tarjama(tmp.path());
        cmd.env(var, "1")
            .args(["translate", "--quiet", "--model"])
            .arg(&dir)
            .write_stdin("مرحبا");
        let err = assert_clean_failure(&mut cmd, "does not match config.json");
        assert!(err.contains("shape mismatch"), "{err}");
        assert_eq!(cmd.output().unwrap().status.code(), Some(3));
    }
    // --verbose keeps it, for a bug report.
    let out = tarjama(tmp.path())
        .env("RUST_BACKTRACE", "1")
        .args(["translate", "--verbose", "--model"])
        .arg(&dir)
        .write_stdin("مرحبا")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr.contains("candle"), "no backtrace: {stderr}");
}

/// `TARJAMA_ISA` caps the kernels' instructions: every cap translates as the CPU's best does
/// (the packed f32 and int8 kernels of every level give the same bits; without AVX2 int8 is
/// candle's Q8_0, not compared), and a value that names no level
/// is a usage error (exit 2) that lists the accepted ones, before any model is loaded.
#[test]
fn every_kernel_cap_translates_alike_and_an_unknown_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let text: String = (1..=4).map(|i| ntrex("ar.txt", i) + "\n").collect();
    for quantize in [None, Some("q8_0")] {
        let run = |isa: Option<&str>| {
            let mut cmd = translate_cmd(tmp.path());
            if let Some(q) = quantize {
                cmd.args(["--quantize", q]);
            }
            match isa {
                Some(isa) => cmd.env("TARJAMA_ISA", isa),
                None => cmd.env_remove("TARJAMA_ISA"),
            };
            stdout_of(cmd.write_stdin(text.clone()))
        };
        let best = run(None);
        assert_eq!(best.lines().count(), 4);
        for isa in ["portable", "avx2", "avx512", "AVX512-VNNI", "amx"] {
            // Without AVX2, int8 is candle's Q8_0 blocks: another quantization.
            if isa == "portable" && quantize.is_some() {
                continue;
            }
            assert_eq!(run(Some(isa)), best, "TARJAMA_ISA={isa} {quantize:?}");
        }
    }
    let out = translate_cmd(tmp.path())
        .env("TARJAMA_ISA", "sse9")
        .write_stdin("مرحبا")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("TARJAMA_ISA=sse9 is not one of portable, avx2, avx512, avx512-vnni, amx"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
