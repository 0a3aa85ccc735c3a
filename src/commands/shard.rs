//! `--shard I/N`: one of N disjoint parts of a run's inputs, so that N processes (a Slurm job
//! array, a Kubernetes Indexed Job) share an archive without talking to each other.
//!
//! An item's part is a hash of its name (a file's id, the path below the directory it was found
//! in; a record's id) modulo N, not its position: a rerun picks the same items whatever else was
//! added or went missing meanwhile, and every process decides alone, reading nothing but its own
//! items' names. Parts count from 0, as `SLURM_ARRAY_TASK_ID` (of `--array=0-N`) and
//! `JOB_COMPLETION_INDEX` do.

use sha2::{Digest, Sha256};

use crate::cli::ShardArg;
use crate::{Error, Result};

/// The part of the inputs this run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
    /// Where the numbers came from, for the report: `--shard 1/4`, or the variables read.
    pub source: String,
}

impl Shard {
    /// The shard `--shard` and `--shards` ask for, reading the scheduler's variables through
    /// `env` for `auto`. Every mistake is a usage error: a shard that is not what the user meant
    /// would silently do the wrong part.
    pub fn resolve(
        arg: Option<ShardArg>,
        shards: Option<u32>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>> {
        match arg {
            None => Ok(None),
            Some(ShardArg::Part { index, count }) => {
                if shards.is_some() {
                    return Err(Error::usage(
                        "--shards goes with --shard auto: --shard I/N names the count itself",
                    ));
                }
                Ok(Some(Shard {
                    index,
                    count,
                    source: format!("--shard {index}/{count}"),
                }))
            }
            Some(ShardArg::Auto) => {
                if env("SLURM_ARRAY_TASK_ID").is_some() {
                    slurm(shards, env).map(Some)
                } else if env("JOB_COMPLETION_INDEX").is_some() {
                    kubernetes(shards, env).map(Some)
                } else {
                    Err(Error::usage(
                        "--shard auto found neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor \
                         JOB_COMPLETION_INDEX (a Kubernetes Indexed Job): give --shard I/N",
                    ))
                }
            }
        }
    }

    /// Whether the item named `key` is in this part.
    pub fn keeps(&self, key: &str) -> bool {
        part_of(key, self.count) == self.index
    }
}

/// The part (of `count`) that the item named `key` falls in.
///
/// SHA-256 of the name, its first 8 bytes as a big-endian number, modulo `count`. The hash must
/// give the same answer on every machine and with every build of tarjama, or the shards of one
/// job, or a rerun with a newer binary, would split the items differently and miss some:
/// std's `DefaultHasher` promises neither, while SHA-256 is a fixed standard (FIPS 180-4) and
/// `sha2` is a dependency already. Its cost, well under a microsecond a name, is nothing next to
/// translating the item. The bias of a 64-bit number modulo a small count is below 1e-9.
pub fn part_of(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) % u64::from(count.max(1))) as u32
}

/// A record's key: its id, a string as it is, another JSON value (a number) as JSON.
pub fn record_key(id: &serde_json::Value) -> String {
    match id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A Slurm array task's shard: the array's indices need not start at 0 (`--array=1-8`) nor be
/// consecutive (`--array=0-30:10`), so the shard is the task's position in the array, worked out
/// from the first index and the step; SLURM_ARRAY_TASK_COUNT is the number of tasks. An array of
/// scattered indices (`--array=1,5,6`) has no such position and is refused.
fn slurm(shards: Option<u32>, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
    let number = |name: &str| -> Result<Option<u32>> {
        match env(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u32>().map(Some).map_err(|_| {
                Error::usage(format!(
                    "--shard auto: {name}={v:?} is not a whole number; give --shard I/N"
                ))
            }),
        }
    };
    let id = number("SLURM_ARRAY_TASK_ID")?.unwrap_or_default();
    let Some(count) = number("SLURM_ARRAY_TASK_COUNT")? else {
        return Err(Error::usage(
            "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not \
             (Slurm older than 17.11?): give --shard I/N",
        ));
    };
    let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
    let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
    let max = number("SLURM_ARRAY_TASK_MAX")?;
    let mut source = format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_COUNT={count}");
    if min != 0 {
        source += &format!(", SLURM_ARRAY_TASK_MIN={min}");
    }
    if step != 1 {
        source += &format!(", SLURM_ARRAY_TASK_STEP={step}");
    }
    let index = id
        .checked_sub(min)
        .filter(|offset| offset % step == 0)
        .map(|offset| offset / step);
    let evenly_spaced = count > 0
        && max.is_none_or(|max| {
            u64::from(min) + u64::from(count - 1) * u64::from(step) == u64::from(max)
        });
    let index = match index {
        Some(index) if evenly_spaced && index < count => index,
        _ => {
            return Err(Error::usage(format!(
                "--shard auto: the array's indices ({source}{}) are not an evenly spaced range \
                 such as --array=0-{}: use one, or give --shard I/N",
                max.map(|m| format!(", SLURM_ARRAY_TASK_MAX={m}"))
                    .unwrap_or_default(),
                count.max(1) - 1
            )))
        }
    };
    if let Some(n) = shards.filter(|&n| n != count) {
        return Err(Error::usage(format!(
            "--shards {n} disagrees with the Slurm array's {count} tasks \
             (SLURM_ARRAY_TASK_COUNT): drop --shards, Slurm's count is used"
        )));
    }
    Ok(Shard {
        index,
        count,
        source,
    })
}

/// A Kubernetes Indexed Job's shard: the pod's index is in JOB_COMPLETION_INDEX, but the
/// number of completions is only in the Job's spec, so it comes from `--shards`.
fn kubernetes(shards: Option<u32>, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
    let value = env("JOB_COMPLETION_INDEX").unwrap_or_default();
    let Ok(index) = value.trim().parse::<u32>() else {
        return Err(Error::usage(format!(
            "--shard auto: JOB_COMPLETION_INDEX={value:?} is not a whole number; give --shard I/N"
        )));
    };
    let Some(count) = shards else {
        return Err(Error::usage(format!(
            "--shard auto in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX={index}) needs \
             --shards N, the Job's completions"
        )));
    };
    if index >= count {
        return Err(Error::usage(format!(
            "JOB_COMPLETION_INDEX={index} is not below --shards {count}: \
             set --shards to the Job's completions"
        )));
    }
    Ok(Shard {
        index,
        count,
        source: format!("JOB_COMPLETION_INDEX={index}, --shards {count}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(arg: ShardArg, shards: Option<u32>, vars: &[(&str, &str)]) -> Result<Shard> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Shard::resolve(Some(arg), shards, &env).map(|s| s.expect("a shard"))
    }

    fn usage_line(result: Result<Shard>) -> String {
        let err = result.expect_err("a usage error");
        assert_eq!(err.exit_code(), 2, "{err}");
        err.to_string()
    }

    #[test]
    fn slurm_arrays_are_numbered_from_their_first_index_by_their_step() {
        let at = |vars: &[(&str, &str)]| resolve(ShardArg::Auto, None, vars).unwrap();
        let s = at(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
        ]);
        assert_eq!((s.index, s.count), (3, 4));
        // --array=1-8
        let s = at(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
        ]);
        assert_eq!((s.index, s.count), (0, 8));
        assert!(s.source.contains("SLURM_ARRAY_TASK_MIN=1"), "{}", s.source);
        // --array=10-40:10
        let s = at(&[
            ("SLURM_ARRAY_TASK_ID", "30"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "40"),
            ("SLURM_ARRAY_TASK_STEP", "10"),
        ]);
        assert_eq!((s.index, s.count), (2, 4));
        // --shards agreeing with the array is accepted.
        let s = resolve(
            ShardArg::Auto,
            Some(2),
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
        )
        .unwrap();
        assert_eq!((s.index, s.count), (1, 2));
    }

    #[test]
    fn scattered_or_inconsistent_slurm_indices_are_refused() {
        // --array=1,5,6: three tasks, but 1 + 2 * 1 != 6.
        let msg = usage_line(resolve(
            ShardArg::Auto,
            None,
            &[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "6"),
            ],
        ));
        assert!(msg.contains("evenly spaced"), "{msg}");
        let msg = usage_line(resolve(
            ShardArg::Auto,
            None,
            &[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
        ));
        assert!(msg.contains("--shard I/N"), "{msg}");
        let msg = usage_line(resolve(
            ShardArg::Auto,
            None,
            &[("SLURM_ARRAY_TASK_ID", "0")],
        ));
        assert!(msg.contains("SLURM_ARRAY_TASK_COUNT"), "{msg}");
        let msg = usage_line(resolve(
            ShardArg::Auto,
            Some(3),
            &[
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
        ));
        assert!(msg.contains("--shards 3 disagrees"), "{msg}");
        let msg = usage_line(resolve(
            ShardArg::Auto,
            None,
            &[
                ("SLURM_ARRAY_TASK_ID", "x"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
        ));
        assert!(msg.contains("not a whole number"), "{msg}");
    }

    #[test]
    fn kubernetes_indexes_need_the_count_from_shards() {
        let s = resolve(ShardArg::Auto, Some(5), &[("JOB_COMPLETION_INDEX", "4")]).unwrap();
        assert_eq!((s.index, s.count), (4, 5));
        let msg = usage_line(resolve(
            ShardArg::Auto,
            None,
            &[("JOB_COMPLETION_INDEX", "0")],
        ));
        assert!(msg.contains("needs --shards N"), "{msg}");
        let msg = usage_line(resolve(
            ShardArg::Auto,
            Some(5),
            &[("JOB_COMPLETION_INDEX", "5")],
        ));
        assert!(msg.contains("not below --shards 5"), "{msg}");
    }

    #[test]
    fn auto_without_a_scheduler_and_shards_with_a_fixed_part_are_refused() {
        let msg = usage_line(resolve(ShardArg::Auto, None, &[]));
        assert!(
            msg.contains("SLURM_ARRAY_TASK_ID") && msg.contains("JOB_COMPLETION_INDEX"),
            "{msg}"
        );
        let msg = usage_line(resolve(ShardArg::Part { index: 0, count: 2 }, Some(2), &[]));
        assert!(msg.contains("--shards goes with --shard auto"), "{msg}");
    }

    #[test]
    fn parts_are_pinned_so_a_change_of_hash_is_caught() {
        // Computed apart from this code, with Python's hashlib:
        // int.from_bytes(sha256(key).digest()[:8], "big") % count. A change here would
        // reshuffle every sharded archive between runs, which must never happen silently.
        let pinned = [
            ("a.ar.txt", 7, 2),
            ("b.ar.txt", 7, 0),
            ("2024/05/article-17.ar.txt", 7, 1),
            ("https://example.com/news/1", 3, 2),
            ("42", 2, 1),
        ];
        for (key, count, part) in pinned {
            assert_eq!(part_of(key, count), part, "{key} of {count}");
        }
        assert_eq!(record_key(&serde_json::json!(42)), "42");
        assert_eq!(record_key(&serde_json::json!("x")), "x");
    }
}
