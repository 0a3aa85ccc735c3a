//! `--shard I/N` on the tiny fixture model: the N parts of a directory of files, or of a JSON
//! Lines stream of records, are disjoint and together exactly the input; an item's part is
//! pinned (a change of hash would reshuffle every sharded archive between runs); `--shard auto`
//! reads Slurm's and Kubernetes' variables; mistakes are usage errors (exit code 2) in one line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use assert_cmd::Command;

use crate::common::{ntrex_lines, stderr_of, tarjama, translate_cmd, tree};

/// The scheduler variables `--shard auto` reads: removed from every command here, so that a
/// test run inside a Slurm job or a Kubernetes pod sees only what each test sets.
pub const SCHEDULER_VARS: &[&str] = &[
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

fn clean_env(mut cmd: Command) -> Command {
    for var in SCHEDULER_VARS {
        cmd.env_remove(var);
    }
    cmd
}

fn translate(cache: &Path) -> Command {
    clean_env(translate_cmd(cache))
}

/// 14 articles of one NTREX sentence each, in a tree: `(relative name, text)`.
fn write_articles(dir: &Path) -> Vec<(String, String)> {
    let ar = ntrex_lines("ar.txt");
    (0..14)
        .map(|i| {
            let name = match i % 3 {
                0 => format!("{i:02}.ar.txt"),
                1 => format!("2024/{i:02}.ar.txt"),
                _ => format!("2024/05/{i:02}.ar.txt"),
            };
            let path = dir.join(&name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = format!("{}\n", ar[i * 5]);
            fs::write(&path, &text).unwrap();
            (name, text)
        })
        .collect()
}

/// The records of a JSON Lines output, by id (as JSON).
pub fn records(path: &Path) -> Vec<(String, serde_json::Value)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (v["id"].to_string(), v)
        })
        .collect()
}

/// Checks that `parts` (what each shard wrote, by name) are disjoint and together `whole`.
fn assert_partition<T: PartialEq + std::fmt::Debug>(
    whole: &BTreeMap<String, T>,
    parts: &[BTreeMap<String, T>],
    what: &str,
) {
    let mut union = BTreeMap::new();
    for (i, part) in parts.iter().enumerate() {
        for (name, value) in part {
            assert!(
                union.insert(name.clone(), value).is_none(),
                "{what}: {name} is in two shards (again in {i})"
            );
        }
    }
    let whole: BTreeMap<String, &T> = whole.iter().map(|(k, v)| (k.clone(), v)).collect();
    assert_eq!(
        union, whole,
        "{what}: the shards together are not the input"
    );
}

#[test]
fn the_shards_of_a_directory_are_disjoint_and_together_the_whole_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_articles(&input);
    let full = tmp.path().join("full");
    translate(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(&full)
        .assert()
        .success();
    let whole = tree(&full);
    assert_eq!(whole.len(), 14);

    for count in [1, 2, 3, 7] {
        let parts: Vec<BTreeMap<String, String>> = (0..count)
            .map(|index| {
                let out = tmp.path().join(format!("out-{count}/{index}"));
                translate(tmp.path())
                    .arg("--shard")
                    .arg(format!("{index}/{count}"))
                    .arg(&input)
                    .arg("-o")
                    .arg(&out)
                    .assert()
                    .success();
                tree(&out)
            })
            .collect();
        assert_partition(&whole, &parts, &format!("{count} shards"));
        if count == 2 {
            assert!(
                parts.iter().all(|p| !p.is_empty()),
                "both halves get files: {parts:?}"
            );
        }
    }
}

/// 40 records: string ids, number ids, and records without an id (whose id is their place,
/// `in.jsonl:LINE`).
fn write_records(path: &Path) -> usize {
    let ar = ntrex_lines("ar.txt");
    let mut text = String::new();
    for i in 0..40 {
        let mut record = serde_json::json!({"text": ar[100 + i], "n": i});
        match i % 4 {
            0 => record["id"] = serde_json::json!(i * 1000),
            1 => {}
            _ => record["id"] = serde_json::json!(format!("https://example.com/{i}")),
        }
        text += &record.to_string();
        text.push('\n');
    }
    fs::write(path, text).unwrap();
    40
}

#[test]
fn the_shards_of_a_record_stream_are_disjoint_and_together_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let n = write_records(&input);
    let jsonl = ["--input-format", "jsonl", "--format", "jsonl"];
    let full = tmp.path().join("full.jsonl");
    translate(tmp.path())
        .args(jsonl)
        .arg(&input)
        .arg("-o")
        .arg(&full)
        .assert()
        .success();
    let whole: BTreeMap<String, serde_json::Value> = records(&full).into_iter().collect();
    assert_eq!(whole.len(), n);

    for count in [1, 2, 3, 7] {
        let parts: Vec<BTreeMap<String, serde_json::Value>> = (0..count)
            .map(|index| {
                let out = tmp.path().join(format!("out-{count}-{index}.jsonl"));
                translate(tmp.path())
                    .args(jsonl)
                    .arg("--shard")
                    .arg(format!("{index}/{count}"))
                    .arg(&input)
                    .arg("-o")
                    .arg(&out)
                    .assert()
                    .success();
                records(&out).into_iter().collect()
            })
            .collect();
        assert_partition(&whole, &parts, &format!("{count} shards"));
    }
}

#[test]
fn a_shard_of_records_on_stdin_keeps_its_own_and_says_how_many() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let n = write_records(&input);
    let mut kept = 0;
    for index in 0..3 {
        // Not quiet: the report is what is checked.
        let out = clean_env(tarjama(tmp.path()))
            .args(["translate", "--beams", "1", "--model"])
            .arg(crate::common::fixtures().join("marian-tiny"))
            .args(["--input-format", "jsonl", "--format", "jsonl"])
            .args(["--shard", &format!("{index}/3")])
            .write_stdin(fs::read(&input).unwrap())
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert!(out.status.success(), "{stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let here = stdout.lines().count();
        let expected = format!(
            "tarjama: shard {index}/3 (--shard {index}/3): kept {here} of {n} inputs, {} left to the other shards",
            n - here
        );
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
        kept += here;
    }
    assert_eq!(kept, n);
}

#[test]
fn an_items_shard_is_pinned() {
    // The parts these names fall in, worked out apart from tarjama (Python:
    // int.from_bytes(hashlib.sha256(name).digest()[:8], "big") % N): a change of hash would
    // send them elsewhere.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let ar = ntrex_lines("ar.txt");
    fs::write(input.join("a.ar.txt"), format!("{}\n", ar[0])).unwrap();
    fs::write(input.join("b.ar.txt"), format!("{}\n", ar[1])).unwrap();
    let part = |shard: &str| {
        let out = tmp.path().join(shard.replace('/', "-"));
        translate(tmp.path())
            .args(["--shard", shard])
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        tree(&out).into_keys().collect::<Vec<_>>()
    };
    assert_eq!(part("2/7"), ["a.en.txt"]);
    assert_eq!(part("0/7"), ["b.en.txt"]);
    assert!(part("1/7").is_empty());

    // A record's id: the number 42 and the string "https://example.com/news/1".
    let records_in = tmp.path().join("r.jsonl");
    fs::write(
        &records_in,
        format!(
            "{}\n{}\n",
            serde_json::json!({"id": 42, "text": ar[2]}),
            serde_json::json!({"id": "https://example.com/news/1", "text": ar[3]})
        ),
    )
    .unwrap();
    let ids = |shard: &str| {
        let out = translate(tmp.path())
            .args([
                "--input-format",
                "jsonl",
                "--format",
                "jsonl",
                "--shard",
                shard,
            ])
            .arg(&records_in)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect::<Vec<_>>()
    };
    let url = "\"https://example.com/news/1\"";
    assert_eq!(ids("1/2"), ["42", url]);
    assert!(ids("0/2").is_empty());
    assert_eq!(ids("0/3"), ["42"]);
    assert_eq!(ids("2/3"), [url]);
}

#[test]
fn shard_auto_reads_slurm_and_kubernetes_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_articles(&input);
    let run = |dir: &str, shard: &[&str], env: &[(&str, String)]| {
        let out = tmp.path().join(dir);
        let mut cmd = translate(tmp.path());
        cmd.args(shard).arg(&input).arg("-o").arg(&out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let result = cmd.output().unwrap();
        assert!(result.status.success(), "{}", stderr_of(&result));
        tree(&out)
    };
    for index in 0..3u32 {
        let fixed = run(
            &format!("fixed-{index}"),
            &["--shard", &format!("{index}/3")],
            &[],
        );
        // --array=1-3: the tasks are 1, 2, 3 and the shards 0, 1, 2.
        let slurm = run(
            &format!("slurm-{index}"),
            &["--shard", "auto"],
            &[
                ("SLURM_ARRAY_TASK_ID", (index + 1).to_string()),
                ("SLURM_ARRAY_TASK_COUNT", "3".to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".to_string()),
                ("SLURM_ARRAY_TASK_MAX", "3".to_string()),
            ],
        );
        assert_eq!(slurm, fixed, "Slurm task {}", index + 1);
        let kubernetes = run(
            &format!("k8s-{index}"),
            &["--shard", "auto", "--shards", "3"],
            &[("JOB_COMPLETION_INDEX", index.to_string())],
        );
        assert_eq!(kubernetes, fixed, "Kubernetes index {index}");
    }
}

#[test]
fn shard_mistakes_are_usage_errors_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_articles(&input);
    // The arguments, the environment, and what the error line says.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--shard", "3/3"], &[], "parts count from 0: the last is 2/3"),
        (&["--shard", "0/0"], &[], "N must be at least 1"),
        (&["--shard", "1of3"], &[], "must be I/N"),
        (
            &["--shard", "auto"],
            &[],
            "--shard auto found neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX",
        ),
        (
            &["--shard", "auto"],
            &[("JOB_COMPLETION_INDEX", "1")],
            "needs --shards N, the Job's completions",
        ),
        (
            &["--shard", "auto", "--shards", "2"],
            &[("JOB_COMPLETION_INDEX", "2")],
            "JOB_COMPLETION_INDEX=2 is not below --shards 2",
        ),
        (
            &["--shard", "auto"],
            &[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4")],
            "not an evenly spaced range",
        ),
        (
            &["--shard", "1/2", "--shards", "2"],
            &[],
            "--shards goes with --shard auto",
        ),
        (&["--shards", "2"], &[], "--shard <I/N|auto>"),
    ];
    for (args, env, message) in cases {
        let mut cmd = translate(tmp.path());
        cmd.args(*args)
            .arg(&input)
            .arg("-o")
            .arg(tmp.path().join("out"));
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let error_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(error_lines.len(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(
        !tmp.path().join("out").exists(),
        "nothing is written on a usage error"
    );
}

#[test]
fn shards_sharing_one_stream_file_are_told_to_use_one_each() {
    // Run one after the other, shards may add to one file (each resumes the last); side by
    // side the second is refused by the output's lock, and told what to do.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let n = write_records(&input);
    let out = tmp.path().join("all.jsonl");
    for index in 0..2 {
        translate(tmp.path())
            .args(["--input-format", "jsonl", "--format", "jsonl", "--shard"])
            .arg(format!("{index}/2"))
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
    }
    let ids: BTreeSet<String> = records(&out).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids.len(),
        n,
        "one after the other, the shards fill one file"
    );

    // A held lock, as a running shard holds it.
    let lock = tmp.path().join(".busy.jsonl.tarjama.lock");
    let held = fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    let result = translate(tmp.path())
        .args([
            "--input-format",
            "jsonl",
            "--format",
            "jsonl",
            "--shard",
            "1/2",
        ])
        .arg(&input)
        .arg("-o")
        .arg(tmp.path().join("busy.jsonl"))
        .output()
        .unwrap();
    let stderr = stderr_of(&result);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("give each shard its own file, such as -o out-$SLURM_ARRAY_TASK_ID.jsonl"),
        "{stderr}"
    );
}
