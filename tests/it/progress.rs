//! `--progress` for logs, on the tiny fixture model: off a terminal `auto` and `plain` write a
//! line every interval (done, rate, ETA) and `json` an object a line; `none` and `--quiet` write
//! none. `TARJAMA_PROGRESS_INTERVAL_MS` shortens the 10 s interval so the tests need not wait.

use std::fs;
use std::path::Path;

use crate::common::{fixtures, ntrex_lines, stderr_of, tarjama};

/// Four articles of 25 NTREX lines.
fn articles(dir: &Path) {
    let ar = ntrex_lines("ar.txt");
    fs::create_dir_all(dir).unwrap();
    for i in 0..4 {
        let text = ar[i * 25..(i + 1) * 25].join("\n") + "\n";
        fs::write(dir.join(format!("{i}.ar.txt")), text).unwrap();
    }
}

/// `translate` over four articles with `args`, `--quiet` left out; its stderr.
fn run(args: &[&str], interval_ms: u64) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    articles(&input);
    // Not translate_cmd: it is quiet, and these tests are about what a run prints.
    let mut cmd = tarjama(tmp.path());
    cmd.args(["translate", "--beams", "1", "--model"])
        .arg(fixtures().join("marian-tiny"))
        .args(args)
        .arg(&input)
        .arg("-o")
        .arg(tmp.path().join("out"));
    cmd.env("TARJAMA_PROGRESS_INTERVAL_MS", interval_ms.to_string());
    let out = cmd.output().unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(fs::read_dir(tmp.path().join("out")).unwrap().count(), 4);
    stderr
}

/// The numbers of a plain line: `tarjama: translating: 2/4 files, 120 sentences, 12.3
/// sentences/s, 45% of 1.2 kB, eta 4s, 3s elapsed`: (files done, sentences, percent).
fn plain_numbers(line: &str) -> (u64, u64, u64) {
    let body = line.split_once(": ").unwrap().1.split_once(": ").unwrap().1;
    let parts: Vec<&str> = body.split(", ").collect();
    let files: u64 = parts[0].strip_suffix("/4 files").unwrap().parse().unwrap();
    let sentences: u64 = parts[1]
        .strip_suffix(" sentences")
        .unwrap()
        .parse()
        .unwrap();
    assert!(parts[2].ends_with(" sentences/s"), "{line}");
    let percent: u64 = parts[3].split_once('%').unwrap().0.parse().unwrap();
    assert!(parts.last().unwrap().ends_with(" elapsed"), "{line}");
    (files, sentences, percent)
}

#[test]
fn plain_progress_writes_lines_that_only_go_forward_and_a_last_one() {
    for args in [&["--progress", "plain"][..], &[][..]] {
        // `auto` off a terminal (a pipe here) is `plain`.
        let stderr = run(args, 20);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                l.starts_with("tarjama: translating: ") || l.starts_with("tarjama: finished: ")
            })
            .collect();
        assert!(lines.len() >= 2, "{args:?}: {stderr}");
        let numbers: Vec<(u64, u64, u64)> = lines.iter().map(|l| plain_numbers(l)).collect();
        for pair in numbers.windows(2) {
            assert!(
                pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1 && pair[0].2 <= pair[1].2,
                "{args:?}: {stderr}"
            );
        }
        for (line, (_, _, percent)) in lines.iter().zip(&numbers).take(lines.len() - 1) {
            assert!(line.starts_with("tarjama: translating: "), "{line}");
            // Until something is done there is no rate to reckon the time left with.
            assert_eq!(line.contains(", eta "), *percent > 0, "{line}");
        }
        let last = lines.last().unwrap();
        assert!(last.starts_with("tarjama: finished: 4/4 files, "), "{last}");
        assert!(last.contains("100% of "), "{last}");
        assert!(
            stderr.contains("tarjama: 4 inputs: 4 translated"),
            "{stderr}"
        );
    }
}

#[test]
fn json_progress_writes_one_object_a_line() {
    let stderr = run(&["--progress", "json"], 20);
    let objects: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(objects.len() >= 2, "{stderr}");
    let total = objects[0]["total"].as_u64().unwrap();
    let mut done = 0;
    for object in &objects {
        assert_eq!(object["unit"], "bytes", "{object}");
        assert_eq!(object["total"].as_u64(), Some(total), "{object}");
        let now = object["done"].as_u64().unwrap();
        assert!(done <= now && now <= total, "{object}");
        done = now;
        assert!(object["rate"].as_f64().unwrap() >= 0.0, "{object}");
        assert!(object["elapsed_s"].as_f64().unwrap() >= 0.0, "{object}");
        assert!(object.get("eta_s").is_some(), "{object}");
        assert_eq!(object["files"], 4, "{object}");
    }
    let last = objects.last().unwrap();
    assert_eq!(last["event"], "finished", "{last}");
    assert_eq!(last["done"].as_u64(), Some(total));
    assert_eq!(last["files_done"], 4);
    assert!(objects[..objects.len() - 1]
        .iter()
        .all(|o| o["event"] == "progress"));
    // Nothing but the objects and the summary.
    for line in stderr.lines().filter(|l| !l.starts_with('{')) {
        assert_eq!(line, "tarjama: 4 inputs: 4 translated", "{stderr}");
    }
}

#[test]
fn none_quiet_and_short_runs_write_no_progress() {
    for args in [
        &["--progress", "none"][..],
        &["--progress", "json", "--quiet"][..],
    ] {
        let stderr = run(args, 20);
        assert!(
            !stderr.contains("tarjama: translating") && !stderr.contains('{'),
            "{args:?}: {stderr}"
        );
    }
    // A run shorter than the interval leaves its log as it was.
    let stderr = run(&["--progress", "plain"], 600_000);
    assert_eq!(stderr, "tarjama: 4 inputs: 4 translated\n");
}
