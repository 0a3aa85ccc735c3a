//! Where a run's results go: the output lock, a killed run's temporary files, the resumed JSON
//! Lines stream and the commit rules, written once for every command (`translate`,
//! `summarize`, and `eval --save-hyp`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::batch::{Destination, Input, Plan};
use crate::cli::OutputFormat;
use crate::output::{self, OutputLock, OutputTarget};
use crate::{Error, Result};

/// The ids of the records in a JSON Lines output being resumed, and the lines themselves (they
/// are copied into the new file, so the finished work is kept).
pub fn existing_records(path: &Path) -> Result<(HashSet<String>, String)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => {
            return Err(Error::input(format!(
                "cannot read {} to resume it: {e}; pass --force to replace it",
                path.display()
            )))
        }
    };
    let mut ids = HashSet::new();
    let mut kept = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("id").cloned());
        match id {
            Some(id) => {
                ids.insert(id.to_string());
                kept.push_str(line);
                kept.push('\n');
            }
            None => {
                return Err(Error::input(format!(
                    "{} is not a tarjama JSON Lines output (a line has no \"id\"): pass --force to replace it, or choose another -o",
                    path.display()
                )))
            }
        }
    }
    Ok((ids, kept))
}

/// Where a run's results go, opened before any model is loaded, so that a bad or busy output
/// path costs nothing. Shared by `translate` and `summarize`, so that both lock, clean up, resume
/// and commit the same way.
pub struct Sink {
    /// The JSON Lines stream (to a file or stdout), with `--format jsonl`.
    stream: Option<Stream>,
    /// The file of a single text result; committed when its input is done.
    single: Option<OutputTarget>,
    /// Output directories of per-input results already cleared of a killed run's temporary
    /// files.
    cleaned: HashSet<PathBuf>,
    /// Held until the run ends; dropped last.
    _lock: Option<OutputLock>,
}

impl Sink {
    /// Locks the output file (if any) against other runs, clears its directory of a killed run's
    /// temporary files, and opens it; a stream being resumed gets the records of the earlier run
    /// copied in (unless `force`), whose ids are returned so those inputs are skipped.
    pub fn open(plan: &Plan, force: bool) -> Result<(Sink, HashSet<String>)> {
        // Locked before the earlier records are read, so no other run changes them between that
        // read and this run's commit.
        let lock = match &plan.destination {
            Destination::File(path) => Some(OutputLock::acquire(path).map_err(|e| {
                match (&plan.shard, e) {
                    // Shards run side by side: each needs an output of its own.
                    (Some(_), Error::Usage(msg)) => Error::usage(format!(
                        "{msg}; with --shard, give each shard its own file, such as \
                         -o out-$SLURM_ARRAY_TASK_ID.jsonl"
                    )),
                    (_, e) => e,
                }
            })?),
            _ => None,
        };
        let mut outputs = Sink {
            stream: None,
            single: None,
            cleaned: HashSet::new(),
            _lock: lock,
        };
        let mut done_ids = HashSet::new();
        match (&plan.destination, plan.format) {
            (Destination::File(path), format) => {
                outputs.clean(path);
                if format == OutputFormat::Jsonl {
                    let (ids, kept) = if force {
                        Default::default()
                    } else {
                        existing_records(path)?
                    };
                    let mut target = OutputTarget::open(Some(path))?;
                    target.write(&kept)?;
                    done_ids = ids;
                    outputs.stream = Some(Stream {
                        target,
                        written: 0,
                        // Without --force every earlier record is copied in.
                        replaces: force && std::fs::metadata(path).is_ok_and(|m| m.len() > 0),
                    });
                } else {
                    outputs.single = Some(OutputTarget::open(Some(path))?);
                }
            }
            (_, OutputFormat::Jsonl) => {
                outputs.stream = Some(Stream {
                    target: OutputTarget::Stdout,
                    written: 0,
                    replaces: false,
                })
            }
            _ => {}
        }
        // A killed run leaves temporary files beside per-input results that this run may skip
        // as done and so never open.
        for path in plan
            .inputs
            .iter()
            .filter_map(|input| input.output.as_deref())
        {
            outputs.clean(path);
        }
        Ok((outputs, done_ids))
    }

    /// One file written by a command that reads `inputs` (`eval --save-hyp`): refused when it is
    /// one of them, locked against other runs, cleared of a killed run's temporary files, and
    /// opened; [`Sink::take_single`] gives its target.
    pub fn single_file(path: &Path, inputs: &[&Path], flag: &str) -> Result<Sink> {
        if let Some(input) = inputs.iter().find(|input| same_file(input, path)) {
            return Err(Error::usage(format!(
                "{flag} {} is the input {}: writing it would replace that file; choose another",
                path.display(),
                input.display()
            )));
        }
        let mut sink = Sink {
            stream: None,
            single: None,
            cleaned: HashSet::new(),
            _lock: Some(OutputLock::acquire(path)?),
        };
        sink.clean(path);
        sink.single = Some(OutputTarget::open(Some(path))?);
        Ok(sink)
    }

    /// Removes a killed run's temporary files from the directory of `path`, once per directory.
    fn clean(&mut self, path: &Path) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if self.cleaned.insert(dir.to_path_buf()) {
            output::remove_stale_temps(dir);
        }
    }

    /// Opens the result file of one input ([`Destination::PerInput`]), creating its directory.
    pub fn open_per_input(&mut self, path: &Path) -> Result<OutputTarget> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Output {
                path: path.to_path_buf(),
                source,
            })?;
        }
        self.clean(path);
        OutputTarget::open(Some(path))
    }

    /// The target of the single text result: its file, opened up front, or stdout.
    pub fn take_single(&mut self) -> OutputTarget {
        self.single.take().unwrap_or(OutputTarget::Stdout)
    }

    /// Appends a record to the JSON Lines stream.
    pub fn write_record(&mut self, record: &serde_json::Value) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.write_record(record),
            None => OutputTarget::Stdout.write(&format!("{record}\n")),
        }
    }

    /// Ends the run: commits the stream as [`keep_stream`] decides (`completed`: the run ended
    /// without error, though some inputs may have failed), removes what was not committed, and
    /// releases the lock.
    pub fn close(mut self, completed: bool) -> Result<()> {
        match self.stream.take() {
            Some(stream) if keep_stream(completed, stream.written, stream.replaces) => {
                stream.target.commit()
            }
            // Dropping the target deletes its temporary file.
            _ => Ok(()),
        }
    }
}

/// A JSON Lines output and what this run has put in it.
struct Stream {
    target: OutputTarget,
    /// Records written by this run (not counting those copied from the earlier run).
    written: usize,
    /// Whether committing drops records the file holds now (`--force` over a non-empty file).
    replaces: bool,
}

impl Stream {
    fn write_record(&mut self, record: &serde_json::Value) -> Result<()> {
        self.target.write(&format!("{record}\n"))?;
        self.written += 1;
        Ok(())
    }
}

/// Whether a JSON Lines stream replaces its file when the run ends.
///
/// A completed run's stream is its result, even when some inputs failed (they are reported,
/// exit code 1), but it never empties a file that held records: `--force` with nothing written.
///
/// A run that failed or was interrupted has complete records worth keeping (a rerun resumes
/// after them), but commits them only over a file whose every record it holds too, i.e. one it
/// resumed: after `--force` the earlier records were not copied, and a few new ones must not
/// replace them all; a rerun of the same command redoes everything anyway. With no new record
/// there is nothing to commit, so a failed run creates no empty file.
fn keep_stream(completed: bool, written: usize, replaces: bool) -> bool {
    if completed {
        written > 0 || !replaces
    } else {
        written > 0 && !replaces
    }
}

/// Whether two paths are one file: the same device and inode (hard links, symbolic links and
/// `a/../b` spellings included), or the same path where either does not exist.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) => match (output::file_id(&ma), output::file_id(&mb)) {
            (Some(x), Some(y)) => x == y,
            _ => a.canonicalize().ok() == b.canonicalize().ok(),
        },
        _ => a == b,
    }
}

/// The regular files among the inputs, by device and inode, with their names for messages.
/// Standard input counts when it is redirected from a file (`< article.txt`).
pub(super) fn input_files(inputs: &[Input]) -> HashMap<(u64, u64), String> {
    let mut files = HashMap::new();
    for input in inputs {
        let metadata = match &input.path {
            Some(path) => std::fs::metadata(path).ok(),
            None => stdin_metadata(),
        };
        if let Some(id) = metadata
            .filter(|m| m.is_file())
            .and_then(|m| output::file_id(&m))
        {
            let name = match &input.path {
                Some(path) => path.display().to_string(),
                None => "standard input".to_string(),
            };
            files.entry(id).or_insert(name);
        }
    }
    files
}

#[cfg(unix)]
fn stdin_metadata() -> Option<std::fs::Metadata> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    std::fs::File::from(fd).metadata().ok()
}

#[cfg(not(unix))]
fn stdin_metadata() -> Option<std::fs::Metadata> {
    None
}

/// The input that `target` is, if it exists and is one.
pub(super) fn input_at<'a>(
    inputs: &'a HashMap<(u64, u64), String>,
    target: &Path,
) -> Option<&'a str> {
    let id = output::file_id(&std::fs::metadata(target).ok()?)?;
    inputs.get(&id).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_committed_only_when_no_record_is_lost() {
        // completed, records written, replacing an earlier stream (--force) -> commit?
        assert!(keep_stream(true, 3, false));
        assert!(keep_stream(true, 3, true));
        assert!(keep_stream(true, 0, false), "a resumed or new stream");
        assert!(!keep_stream(true, 0, true), "would empty the file");
        assert!(keep_stream(false, 3, false), "resumed: a superset");
        assert!(
            !keep_stream(false, 3, true),
            "fewer records than the file had"
        );
        assert!(!keep_stream(false, 0, false), "nothing new");
        assert!(!keep_stream(false, 0, true));
    }
}
