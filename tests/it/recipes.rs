//! The cluster recipes in `deploy/`, run as their schedulers would run them, on the tiny fixture
//! model: every shard a process of its own with the variables the scheduler sets, one of them
//! stopped with SIGTERM mid-run and run again, and then every input translated exactly once,
//! as one unsharded run translates it.
//!
//! The commands come from the recipe files themselves (the Slurm script is run by bash; the
//! Kubernetes manifest's `command`, `args`, `env` and `completions` are read from it), so a
//! recipe cannot drift from what is tested. Only what a test machine lacks is replaced: the
//! model (the fixture, with `--beams 1 --batch-size 1` added so that a shard takes long enough
//! to be stopped midway), the binary's path, the Kubernetes volume `/data`, and the threads (one
//! a shard, as the machine's few cores run all the shards at once).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{fixtures, ntrex_lines, stderr_of, translate_cmd, tree};
use crate::shards::{records, SCHEDULER_VARS};

/// Flags added to each recipe's command: greedy, one sentence a batch.
const TEST_FLAGS: &[&str] = &["--beams", "1", "--batch-size", "1"];

fn deploy(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A shard's process: its command with a scheduler's environment, stderr read line by line.
fn start(mut cmd: Command, env: &[(String, String)], cache: &Path) -> Child {
    for var in SCHEDULER_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env("HF_HOME", cache)
        // A progress line every 20 ms, so the test sees the shard at work.
        .env("TARJAMA_PROGRESS_INTERVAL_MS", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// Runs a shard to its end; its stderr.
fn finish(cmd: Command, env: &[(String, String)], cache: &Path) -> (Option<i32>, String) {
    let out = start(cmd, env, cache).wait_with_output().unwrap();
    (out.status.code(), stderr_of(&out))
}

/// Runs a shard, sends it SIGTERM once a progress line shows `ready` true, and waits for it to
/// end: its exit code and stderr. Fails if it ends before it was stopped, or takes minutes.
fn stop_midway(
    cmd: Command,
    env: &[(String, String)],
    cache: &Path,
    ready: impl Fn(&str) -> bool,
) -> (Option<i32>, String) {
    let mut child = start(cmd, env, cache);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = String::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the shard ended, or took too long, before it was midway:\n{seen}")
            });
        seen += &line;
        seen.push('\n');
        if line.starts_with("tarjama: finished") {
            let _ = child.kill();
            panic!("the shard finished before it was stopped; give it more work:\n{seen}");
        }
        if ready(&line) {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    reader.join().unwrap();
    seen.extend(rx.try_iter().map(|l| l + "\n"));
    (code, seen)
}

/// The counts of a run's summary, `tarjama: N inputs: D translated, S already done and
/// skipped`: (translated, skipped).
fn summary(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tarjama: ") && l.contains(" inputs: "))
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let after = line.split_once(" inputs: ").unwrap().1;
    let number = |s: &str| s.trim().parse::<usize>().unwrap();
    let translated = number(after.split(" translated").next().unwrap());
    let skipped = after
        .split(", ")
        .find(|p| p.contains("already done"))
        .map_or(0, |p| number(p.split(' ').next().unwrap()));
    (translated, skipped)
}

/// Whether a plain progress line shows at least `n` sentences done.
fn sentences_at_least(line: &str, n: u64) -> bool {
    line.starts_with("tarjama: translating: ")
        && line.split(", ").any(|part| {
            part.strip_suffix(" sentences")
                .and_then(|k| k.parse::<u64>().ok())
                .is_some_and(|k| k >= n)
        })
}

/// The indices of `#SBATCH --array=A-B[:S][%T]`.
fn array_indices(script: &str) -> Vec<u32> {
    let spec = script
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --array="))
        .expect("an #SBATCH --array line");
    let range = spec.split('%').next().unwrap();
    let (range, step) = match range.split_once(':') {
        Some((r, s)) => (r, s.parse::<u32>().unwrap()),
        None => (range, 1),
    };
    let (a, b) = range.split_once('-').expect("a range of indices");
    (a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap())
        .step_by(step as usize)
        .collect()
}

#[test]
fn the_slurm_array_recipe_translates_every_record_once_through_a_sigterm_and_a_rerun() {
    let script_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/translate-array.sbatch");
    let script = deploy("slurm/translate-array.sbatch");
    assert!(
        script.contains("--shard auto"),
        "the recipe shards by itself"
    );
    let indices = array_indices(&script);
    assert!(indices.len() >= 2, "{indices:?}");

    let tmp = tempfile::tempdir().unwrap();
    let ar = ntrex_lines("ar.txt");
    let input = tmp.path().join("scraped.jsonl");
    let n = 160;
    let text: String = (0..n)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"id": format!("art-{i}"), "text": ar[300 + i]})
            )
        })
        .collect();
    fs::write(&input, text).unwrap();
    let reference = tmp.path().join("reference.jsonl");
    translate_cmd(tmp.path())
        .args(["--input-format", "jsonl", "--format", "jsonl"])
        .arg(&input)
        .arg("-o")
        .arg(&reference)
        .assert()
        .success();
    let reference: BTreeMap<String, serde_json::Value> = records(&reference).into_iter().collect();
    assert_eq!(reference.len(), n);

    let out = tmp.path().join("english");
    let task = |id: u32| {
        let mut cmd = Command::new("bash");
        cmd.arg(&script_path).args(TEST_FLAGS);
        let (min, max) = (indices[0], *indices.last().unwrap());
        let step = if indices.len() > 1 {
            indices[1] - indices[0]
        } else {
            1
        };
        let env: Vec<(String, String)> = [
            ("TARJAMA", env!("CARGO_BIN_EXE_tarjama").to_string()),
            ("TARJAMA_IN", input.display().to_string()),
            ("TARJAMA_OUT", out.display().to_string()),
            (
                "TARJAMA_MODEL",
                fixtures().join("marian-tiny").display().to_string(),
            ),
            ("SLURM_CPUS_PER_TASK", "1".to_string()),
            ("SLURM_ARRAY_TASK_ID", id.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", indices.len().to_string()),
            ("SLURM_ARRAY_TASK_MIN", min.to_string()),
            ("SLURM_ARRAY_TASK_MAX", max.to_string()),
            ("SLURM_ARRAY_TASK_STEP", step.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        (cmd, env)
    };

    // The second task is stopped as Slurm stops a task at its time limit, then resubmitted.
    let victim = indices[1];
    let part = out.join(format!("part-{victim}.jsonl"));
    let (cmd, env) = task(victim);
    let (code, stderr) = stop_midway(cmd, &env, tmp.path(), |l| sentences_at_least(l, 3));
    assert_eq!(code, Some(143), "{stderr}");
    let kept_at_stop = records(&part).len();
    assert!(
        kept_at_stop >= 3,
        "the records finished before SIGTERM are kept:\n{stderr}"
    );

    // The other tasks, side by side as Slurm runs them.
    let others: Vec<Child> = indices
        .iter()
        .filter(|&&id| id != victim)
        .map(|&id| {
            let (cmd, env) = task(id);
            start(cmd, &env, tmp.path())
        })
        .collect();
    for child in others {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }

    let (cmd, env) = task(victim);
    let (code, stderr) = finish(cmd, &env, tmp.path());
    assert_eq!(code, Some(0), "{stderr}");
    let (translated, skipped) = summary(&stderr);
    assert_eq!(
        skipped, kept_at_stop,
        "the rerun resumes after the kept records:\n{stderr}"
    );
    assert!(translated >= 1, "SIGTERM came before the end:\n{stderr}");

    // Every record exactly once over the parts, as the unsharded run translated it.
    let mut seen = BTreeMap::new();
    for id in &indices {
        for (key, record) in records(&out.join(format!("part-{id}.jsonl"))) {
            assert!(seen.insert(key.clone(), record).is_none(), "{key} twice");
        }
    }
    assert_eq!(seen.len(), n);
    for (key, record) in &seen {
        assert_eq!(record["english"], reference[key]["english"], "{key}");
    }
    let names: BTreeSet<String> = tree(&out).into_keys().collect();
    let expected: BTreeSet<String> = indices
        .iter()
        .map(|id| format!("part-{id}.jsonl"))
        .collect();
    assert_eq!(
        names, expected,
        "nothing else is left in the output directory"
    );
}

/// The manifest's field `key: value` (the first one).
fn yaml_field<'a>(manifest: &'a str, key: &str) -> &'a str {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in the manifest"))
        .trim()
}

/// The manifest's `env` entries: `- name: X` followed by `value: Y`.
fn yaml_env(manifest: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = manifest.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let name = w[0].strip_prefix("- name: ")?;
            let value = w[1].strip_prefix("value: ")?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

#[test]
fn the_kubernetes_indexed_job_recipe_translates_every_file_once_through_a_sigterm_and_a_rerun() {
    let manifest = deploy("kubernetes/translate-indexed-job.yaml");
    assert_eq!(yaml_field(&manifest, "completionMode"), "Indexed");
    let completions: u32 = yaml_field(&manifest, "completions").parse().unwrap();
    // Flow sequences of double-quoted strings: JSON.
    let command: Vec<String> = serde_json::from_str(yaml_field(&manifest, "command")).unwrap();
    let args: Vec<String> = serde_json::from_str(yaml_field(&manifest, "args")).unwrap();
    assert_eq!(command, ["tarjama"]);
    let after = |flag: &str| {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag}"));
        args[at + 1].clone()
    };
    assert_eq!(after("--shard"), "auto");
    assert_eq!(
        after("--shards").parse::<u32>().unwrap(),
        completions,
        "--shards must be the Job's completions"
    );

    let tmp = tempfile::tempdir().unwrap();
    // The volume mounted at /data.
    let data = tmp.path().join("data");
    let at_data = |arg: &str| match arg.strip_prefix("/data") {
        Some(rest) => format!("{}{rest}", data.display()),
        None => arg.to_string(),
    };
    let ar = ntrex_lines("ar.txt");
    let input = data.join("ar");
    for i in 0..48 {
        let name = input.join(format!("{}/{i:02}.ar.txt", 2020 + i % 3));
        fs::create_dir_all(name.parent().unwrap()).unwrap();
        fs::write(&name, ar[500 + 3 * i..503 + 3 * i].join("\n") + "\n").unwrap();
    }
    let reference = tmp.path().join("reference");
    translate_cmd(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(&reference)
        .assert()
        .success();
    let reference = tree(&reference);
    assert_eq!(reference.len(), 48);

    let mut pod_args: Vec<String> = args.iter().map(|a| at_data(a)).collect();
    let model = pod_args.iter().position(|a| a == "--model").unwrap() + 1;
    pod_args[model] = fixtures().join("marian-tiny").display().to_string();
    // One thread a pod: the test machine's few cores run all the pods at once.
    if let Some(threads) = pod_args.iter().position(|a| a == "--threads") {
        pod_args[threads + 1] = "1".to_string();
    }
    pod_args.extend(TEST_FLAGS.iter().map(|s| s.to_string()));
    let manifest_env: Vec<(String, String)> = yaml_env(&manifest)
        .into_iter()
        .map(|(k, v)| (k, at_data(&v)))
        .collect();
    let pod = |index: u32| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tarjama"));
        cmd.args(&pod_args);
        let mut env = manifest_env.clone();
        env.push(("JOB_COMPLETION_INDEX".to_string(), index.to_string()));
        (cmd, env)
    };
    // HF_HOME is the manifest's (under the volume), not the test's.
    let cache = data.join("hf-cache");
    fs::create_dir_all(&cache).unwrap();

    // Pod 1 is evicted once it has written a file, and replaced by a pod with its index.
    let (cmd, env) = pod(1);
    let (code, stderr) = stop_midway(cmd, &env, &cache, |l| {
        l.starts_with("tarjama: translating: ") && !l.contains(": 0/")
    });
    assert_eq!(code, Some(143), "{stderr}");
    let others: Vec<Child> = (0..completions)
        .filter(|&i| i != 1)
        .map(|i| {
            let (cmd, env) = pod(i);
            start(cmd, &env, &cache)
        })
        .collect();
    for child in others {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let (cmd, env) = pod(1);
    let (code, stderr) = finish(cmd, &env, &cache);
    assert_eq!(code, Some(0), "{stderr}");
    let (translated, skipped) = summary(&stderr);
    assert!(
        skipped >= 1,
        "the replacement pod skips the evicted pod's files:\n{stderr}"
    );
    assert!(translated >= 1, "SIGTERM came before the end:\n{stderr}");

    // The tree holds every file's translation once, as the unsharded run wrote it, and nothing
    // else: no temporary or lock file is left.
    assert_eq!(tree(&data.join("en")), reference);
}

#[test]
fn the_recipes_are_in_the_readme() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for path in [
        "deploy/slurm/translate-array.sbatch",
        "deploy/kubernetes/translate-indexed-job.yaml",
    ] {
        assert!(readme.contains(path), "README does not point at {path}");
        assert!(PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(path)
            .is_file());
    }
}

/// The image builds from what `deploy/Dockerfile`'s build stage copies and `.dockerignore` lets
/// through: the manifests, the sources, and every file the library compiles in with
/// `include_str!`/`include_bytes!` (the presets in `models/` were once left out, and the image
/// could not build). Includes after a file's first `#[cfg(test)]` are its tests' own.
#[test]
fn the_dockerfile_copies_every_file_the_binary_compiles_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = deploy("Dockerfile");
    let build_stage: Vec<&str> = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM "))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .collect();
    let copied: BTreeSet<String> = build_stage
        .iter()
        .filter_map(|l| l.strip_prefix("COPY "))
        .flat_map(|l| {
            let words: Vec<&str> = l
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let ignored: BTreeSet<String> = fs::read_to_string(root.join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();

    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", ".cargo", "src"]
        .map(String::from)
        .into();
    for entry in walkdir::WalkDir::new(root.join("src")) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = fs::read_to_string(entry.path()).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for piece in code.split("include_").skip(1) {
            let Some(rest) = piece
                .strip_prefix("str!(\"")
                .or_else(|| piece.strip_prefix("bytes!(\""))
            else {
                continue;
            };
            let relative = &rest[..rest.find('"').unwrap()];
            let target = entry.path().parent().unwrap().join(relative);
            let target = target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{}: {relative}: {e}", entry.path().display()));
            let inside = target.strip_prefix(root.canonicalize().unwrap()).unwrap();
            let top = inside.components().next().unwrap();
            needed.insert(top.as_os_str().to_string_lossy().into_owned());
        }
    }
    assert!(
        needed.contains("models"),
        "the presets are compiled in: {needed:?}"
    );
    for path in &needed {
        assert!(
            copied.contains(path),
            "deploy/Dockerfile's build stage does not COPY {path} (it copies {copied:?})"
        );
        assert!(
            !ignored.contains(path),
            ".dockerignore leaves out {path}, which the build needs"
        );
    }
}
