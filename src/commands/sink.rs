//! Where a run's results go: the output lock, a killed run's temporary files, the resumed JSON
//! Lines stream and the commit rules, written once for every command (`translate`,
//! `summarize`, and `eval --save-hyp`).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use super::batch::{Destination, Input, Plan};
use crate::cli::OutputFormat;
use crate::output::{self, OutputLock, OutputTarget};
use crate::{Error, Result};

/// What a JSON Lines output being resumed holds, read as a stream (only the ids are kept).
#[derive(Debug, Default)]
pub struct Resumed {
    /// The ids (as JSON) of its records.
    pub ids: HashSet<String>,
    /// Its size in bytes, 0 when it does not exist.
    pub len: u64,
    /// The bytes before a record cut off mid-line by a killed run: the output is cut back to
    /// this, and the record is redone.
    pub whole: u64,
    /// Whether the last whole record has no line end (a file edited by hand): one is added
    /// before the next record.
    pub needs_newline: bool,
}

/// Reads the ids of the records in a JSON Lines output being resumed, one line at a time, so a
/// large output costs only its ids in memory and is never rewritten. Its last line may be a
/// record a kill cut off (no line end, not valid JSON): it is left out of `whole`. Any other line
/// without an id means the file is not a tarjama output, and the run refuses to append to it.
pub fn existing_records(path: &Path) -> Result<Resumed> {
    let cannot = |e: std::io::Error| {
        Error::input(format!(
            "cannot read {} to resume it: {e}; pass --force to replace it",
            path.display()
        ))
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Resumed::default()),
        Err(e) => return Err(cannot(e)),
    };
    let mut resumed = Resumed {
        len: file.metadata().map_err(cannot)?.len(),
        ..Resumed::default()
    };
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(cannot)?;
        if n == 0 {
            break;
        }
        let ended = line.ends_with(b"\n");
        let text = String::from_utf8_lossy(&line);
        if !text.trim().is_empty() {
            let id = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("id").cloned());
            match id {
                Some(id) => {
                    resumed.ids.insert(id.to_string());
                    resumed.needs_newline = !ended;
                }
                // Only the last line lacks a line end: records are written whole with theirs.
                None if !ended => break,
                None => {
                    return Err(Error::input(format!(
                        "{} is not a tarjama JSON Lines output (a line has no \"id\"): pass --force to replace it, or choose another -o",
                        path.display()
                    )))
                }
            }
        }
        resumed.whole += n as u64;
    }
    Ok(resumed)
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
    /// temporary files, and opens it; the ids of the records a stream being resumed holds
    /// (unless `force`) are returned so those inputs are skipped.
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
                    let (stream, ids) = Stream::open_file(path, force)?;
                    outputs.stream = Some(stream);
                    done_ids = ids;
                } else {
                    outputs.single = Some(OutputTarget::open(Some(path))?);
                }
            }
            (_, OutputFormat::Jsonl) => {
                outputs.stream = Some(Stream {
                    out: StreamOut::Stdout,
                    written: 0,
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

    /// Makes the records written so far durable (fsync): called once a window of records is
    /// written, so that a kill, even `kill -9`, loses at most the window in flight.
    pub fn sync(&mut self) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.sync(),
            None => Ok(()),
        }
    }

    /// Ends the run: a stream appended in place is synced (and a completed run with no record
    /// still leaves its, empty, file); a stream replacing an earlier one with `--force` is
    /// committed as [`keep_stream`] decides (`completed`: the run ended without error, though
    /// some inputs may have failed). What is not committed is removed, and the lock released.
    pub fn close(mut self, completed: bool) -> Result<()> {
        let Some(mut stream) = self.stream.take() else {
            return Ok(());
        };
        match stream.out {
            StreamOut::Stdout => Ok(()),
            StreamOut::Append { .. } => {
                if completed {
                    stream.file()?;
                }
                stream.sync()
            }
            StreamOut::Replace(target) => {
                if keep_stream(completed, stream.written, true) {
                    target.commit()
                } else {
                    // Dropping the target deletes its temporary file.
                    Ok(())
                }
            }
        }
    }
}

/// A JSON Lines output and what this run has put in it.
struct Stream {
    out: StreamOut,
    /// Records written by this run (not counting those of an earlier run).
    written: usize,
}

/// Where a JSON Lines stream goes.
enum StreamOut {
    Stdout,
    /// Records are appended to the output itself, new or resumed, so each is kept as soon as it
    /// is synced: an earlier run's records are never copied or rewritten. The file is created
    /// with the first record, so a run that finishes none creates nothing.
    Append {
        path: PathBuf,
        file: Option<std::fs::File>,
        /// A line end the resumed file's last record lacks, written before the next record.
        needs_newline: bool,
        /// Written since the last sync.
        unsynced: bool,
    },
    /// `--force` over a file that holds records: a temporary file renamed over it at the end,
    /// so that a run that fails early leaves the earlier records.
    Replace(OutputTarget),
}

impl Stream {
    /// The stream of `-o path`, and the ids it holds already (none with `force`). A record a
    /// killed run cut off at the end is removed now; everything before it stays as it is.
    fn open_file(path: &Path, force: bool) -> Result<(Stream, HashSet<String>)> {
        let io = |source| Error::Output {
            path: path.to_path_buf(),
            source,
        };
        if force && std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            let stream = Stream {
                out: StreamOut::Replace(OutputTarget::open(Some(path))?),
                written: 0,
            };
            return Ok((stream, HashSet::new()));
        }
        let resumed = if force {
            Resumed::default()
        } else {
            existing_records(path)?
        };
        let mut file = None;
        if resumed.whole < resumed.len {
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io)?;
            f.set_len(resumed.whole).map_err(io)?;
            f.sync_all().map_err(io)?;
            eprintln!(
                "tarjama: note: {} ended with a record cut off by a killed run; it is removed and done again",
                path.display()
            );
            file = Some(f);
        }
        let stream = Stream {
            out: StreamOut::Append {
                path: path.to_path_buf(),
                file,
                needs_newline: resumed.needs_newline,
                unsynced: false,
            },
            written: 0,
        };
        Ok((stream, resumed.ids))
    }

    /// The appended file, opened (or created) on first use.
    fn file(&mut self) -> Result<&mut std::fs::File> {
        let StreamOut::Append { path, file, .. } = &mut self.out else {
            unreachable!("only appended streams have a file of their own")
        };
        if file.is_none() {
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&*path)
                .map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                })?;
            *file = Some(opened);
        }
        Ok(file.as_mut().expect("opened above"))
    }

    fn write_record(&mut self, record: &serde_json::Value) -> Result<()> {
        let mut line = format!("{record}\n");
        match &mut self.out {
            StreamOut::Stdout => OutputTarget::Stdout.write(&line)?,
            StreamOut::Replace(target) => target.write(&line)?,
            StreamOut::Append {
                path,
                needs_newline,
                unsynced,
                ..
            } => {
                let path = path.clone();
                if std::mem::take(needs_newline) {
                    line.insert(0, '\n');
                }
                *unsynced = true;
                // One write per record: a kill cuts at most this line, which a resumed run
                // recognises and redoes.
                self.file()?
                    .write_all(line.as_bytes())
                    .map_err(|source| Error::Output { path, source })?;
            }
        }
        self.written += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let StreamOut::Append {
            path,
            file: Some(file),
            unsynced,
            ..
        } = &mut self.out
        else {
            return Ok(());
        };
        if std::mem::take(unsynced) {
            file.sync_data().map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?;
        }
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
