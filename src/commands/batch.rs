//! Runs over many inputs: which files, where each result goes, what is already done, and the
//! report at the end. Shared by `translate` and `summarize`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::cli::{BatchArgs, InputFormat, OutputFormat};

pub use super::records::{Next, Record, Records, MAX_RECORD_BYTES};
use super::shard::Shard;
pub use super::sink::{existing_records, Sink};
use super::sink::{input_at, input_files, same_file};
use crate::pipeline::Progress;
use crate::{Error, Result};

/// Output-name suffixes that a directory walk never takes as inputs: they are what tarjama
/// writes, often into the same tree.
const OUTPUT_SUFFIXES: &[&str] = &[".en.txt", ".summary.txt"];

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One text result, or a JSON Lines stream, on stdout.
    Stdout,
    /// One text result, or a JSON Lines stream, in this file.
    File(PathBuf),
    /// Each input's result in its own file ([`Input::output`]).
    PerInput,
}

/// One input file (or standard input).
#[derive(Debug, Clone)]
pub struct Input {
    /// `None` is standard input.
    pub path: Option<PathBuf>,
    /// The name in records and messages: the path below the directory it was found in, else the
    /// path as given; `-` for standard input.
    pub id: String,
    /// Its result file, with [`Destination::PerInput`].
    pub output: Option<PathBuf>,
}

/// The inputs of a run and where their results go, worked out before any model is loaded so
/// that a mistake on the command line costs nothing.
#[derive(Debug)]
pub struct Plan {
    pub inputs: Vec<Input>,
    pub destination: Destination,
    pub format: OutputFormat,
    pub input_format: InputFormat,
    /// Whether the run reports per input and a summary (several inputs, or records, or a
    /// shard).
    pub many: bool,
    /// The part of the inputs this run does (`--shard`): `inputs` holds only its files already;
    /// records are sorted as they are read.
    pub shard: Option<Shard>,
    /// Input files left to the other shards.
    pub elsewhere: usize,
}

impl Plan {
    pub fn new(args: &BatchArgs, default_output_suffix: &str) -> Result<Plan> {
        let shard = Shard::resolve(args.shard, args.shards, &|name| std::env::var(name).ok())?;
        let input_suffix = args.input_suffix.as_deref().unwrap_or(".ar.txt");
        let output_suffix = args
            .output_suffix
            .as_deref()
            .unwrap_or(default_output_suffix);
        if output_suffix.is_empty() || output_suffix.contains('/') {
            return Err(Error::usage(format!(
                "--output-suffix {output_suffix:?} must be a non-empty file-name ending such as .en.txt"
            )));
        }
        let records = args.input_format == InputFormat::Jsonl;
        let format = match (args.format, records) {
            (OutputFormat::Json, _) => OutputFormat::Jsonl,
            (OutputFormat::Text, true) => {
                return Err(Error::usage(
                    "--input-format jsonl needs --format jsonl: records are written as records",
                ))
            }
            (f, _) => f,
        };

        let mut inputs = Vec::new();
        let mut from_directory = false;
        let mut stdin_seen = false;
        let given: Vec<PathBuf> = if args.inputs.is_empty() {
            vec![PathBuf::from("-")]
        } else {
            args.inputs.clone()
        };
        for path in &given {
            if path.as_os_str() == "-" {
                if std::mem::replace(&mut stdin_seen, true) {
                    return Err(Error::usage("standard input (-) is given twice"));
                }
                inputs.push(Input {
                    path: None,
                    id: "-".to_string(),
                    output: None,
                });
            } else if path.is_dir() {
                from_directory = true;
                let wanted = |name: &str| {
                    if records {
                        name.ends_with(".jsonl")
                    } else if args.input_suffix.is_some() {
                        name.ends_with(input_suffix)
                    } else {
                        name.ends_with(".txt")
                            && !name.ends_with(output_suffix)
                            && !OUTPUT_SUFFIXES.iter().any(|s| name.ends_with(s))
                    }
                };
                let mut found = Vec::new();
                walk(path, args.follow_symlinks, &wanted, &mut found)?;
                if found.is_empty() {
                    return Err(Error::input(format!(
                        "directory {} holds no {} files",
                        path.display(),
                        if records {
                            "*.jsonl".to_string()
                        } else if args.input_suffix.is_some() {
                            format!("*{input_suffix}")
                        } else {
                            "*.txt".to_string()
                        }
                    )));
                }
                for file in found {
                    let relative = file.strip_prefix(path).unwrap_or(&file).to_path_buf();
                    inputs.push(Input {
                        id: relative.display().to_string(),
                        path: Some(file),
                        output: Some(relative),
                    });
                }
            } else {
                // A missing or unreadable file is reported when its turn comes, so the others
                // are still done.
                let name = path.file_name().map(PathBuf::from).unwrap_or_default();
                inputs.push(Input {
                    id: path.display().to_string(),
                    path: Some(path.clone()),
                    output: Some(name),
                });
            }
        }
        let many = records || inputs.len() > 1 || from_directory;
        let output = args.output.as_deref().filter(|p| p.as_os_str() != "-");
        let destination = if format == OutputFormat::Jsonl {
            match output {
                None => Destination::Stdout,
                Some(p) if p.is_dir() => {
                    return Err(Error::usage(format!(
                        "--format jsonl writes one stream, and {} is a directory: give a file such as -o {}/translations.jsonl",
                        p.display(),
                        p.display()
                    )))
                }
                Some(p) => Destination::File(p.to_path_buf()),
            }
        } else if !many {
            match output {
                None => Destination::Stdout,
                Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
                    Destination::PerInput
                }
                Some(p) => Destination::File(p.to_path_buf()),
            }
        } else {
            if stdin_seen {
                return Err(Error::usage(
                    "standard input cannot be mixed with files in text format: use --format jsonl, or save it to a file",
                ));
            }
            if let Some(p) = output.filter(|p| p.is_file()) {
                return Err(Error::usage(format!(
                    "{} is a file, but several inputs need a directory for their results: give -o DIR, or --format jsonl for one stream",
                    p.display()
                )));
            }
            Destination::PerInput
        };

        let input_files = match destination {
            Destination::Stdout => HashMap::new(),
            _ => input_files(&inputs),
        };
        if let Destination::File(target) = &destination {
            if let Some(input) = input_at(&input_files, target) {
                let target = target.display().to_string();
                let which = if input == target {
                    String::new()
                } else {
                    format!(" ({input}, the same file)")
                };
                return Err(Error::usage(format!(
                    "-o {target} is also an input{which}: writing the result would replace it; choose another output file"
                )));
            }
        }
        if destination == Destination::PerInput {
            let mut seen = HashSet::new();
            for input in &mut inputs {
                let Some(path) = &input.path else {
                    return Err(Error::usage(
                        "standard input has no file name: give -o FILE for its result",
                    ));
                };
                let relative = input.output.take().unwrap_or_default();
                let name = output_name(&relative, input_suffix, output_suffix);
                let target = match output {
                    Some(dir) => dir.join(name),
                    // Beside the input.
                    None => path.with_file_name(name.file_name().unwrap_or_default()),
                };
                if same_file(&target, path) {
                    return Err(Error::usage(format!(
                        "the result of {} would overwrite it: choose another --output-suffix",
                        path.display()
                    )));
                }
                if let Some(other) = input_at(&input_files, &target) {
                    return Err(Error::usage(format!(
                        "the result of {} would overwrite {other}, which is also an input: choose another --output-suffix or -o DIR",
                        path.display()
                    )));
                }
                if !seen.insert(target.clone()) {
                    return Err(Error::usage(format!(
                        "two inputs would both be written to {}: translate them into different directories",
                        target.display()
                    )));
                }
                input.output = Some(target);
            }
        } else {
            for input in &mut inputs {
                input.output = None;
            }
        }
        // Every shard works out the same plan (outputs, checks) from the whole input, and then
        // keeps its part, so that the parts fit together.
        let mut elsewhere = 0;
        if let (Some(shard), InputFormat::Text) = (&shard, args.input_format) {
            let before = inputs.len();
            inputs.retain(|input| shard.keeps(&input.id));
            elsewhere = before - inputs.len();
        }
        Ok(Plan {
            inputs,
            destination,
            format,
            input_format: args.input_format,
            many: many || shard.is_some(),
            shard,
            elsewhere,
        })
    }

    /// The total size of the input files, when every input is a file.
    pub fn total_bytes(&self) -> Option<u64> {
        self.inputs
            .iter()
            .map(|i| {
                i.path
                    .as_deref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
            })
            .sum()
    }
}

/// `a/b.ar.txt` → `a/b.en.txt`; a name without the input suffix loses `.txt` (if any) and gets
/// the output suffix.
fn output_name(relative: &Path, input_suffix: &str, output_suffix: &str) -> PathBuf {
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(input_suffix)
        .or_else(|| name.strip_suffix(".txt"))
        .unwrap_or(&name);
    relative.with_file_name(format!("{stem}{output_suffix}"))
}

/// Regular files below `dir` whose names pass `wanted`, sorted, skipping hidden entries (our own
/// temporary and lock files among them).
///
/// Links to directories are followed only with `follow`, as ripgrep's `-L`: followed, they may
/// lead out of the tree (results written beside the inputs land there) or back into it. walkdir
/// recognises a link to a directory the walk is already inside (by device and inode); such a
/// loop is reported, as ripgrep reports it, and the walk goes on without it. Links to files are
/// read either way: whatever they point to, their results are written in the tree.
fn walk(
    dir: &Path,
    follow: bool,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = walkdir::WalkDir::new(dir)
        .follow_links(follow)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.loop_ancestor().is_some() => {
                eprintln!("tarjama: warning: {e}; it is not followed again");
                continue;
            }
            // A dangling link is not a file to read, followed or not.
            Err(e) if e.path().is_some_and(|p| p.is_symlink() && !p.exists()) => continue,
            Err(e) => {
                let at = e.path().unwrap_or(dir).display().to_string();
                let reason = e
                    .io_error()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string());
                return Err(Error::input(format!(
                    "cannot read directory {at}: {reason}"
                )));
            }
        };
        let kind = entry.file_type();
        let is_file = kind.is_file() || (kind.is_symlink() && entry.path().is_file());
        if is_file && wanted(&entry.file_name().to_string_lossy()) {
            out.push(entry.into_path());
        }
    }
    Ok(())
}

/// For a run over one input: opens it and reads its first chunk, so that an unusable input is
/// the run's error before any model is loaded. Runs over many inputs report bad ones as they
/// come and return `None` here.
pub fn read_single_ahead(plan: &Plan, records: &mut Records) -> Result<Option<Next>> {
    if plan.many {
        return Ok(None);
    }
    match records.next() {
        Some(Next::Record(mut record)) => {
            record.reader.prefetch()?;
            Ok(Some(Next::Record(record)))
        }
        Some(Next::Failed(_, e)) => Err(e),
        other => Ok(other),
    }
}

/// How a run over several inputs went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Some inputs failed; the others were written (exit code 1).
    SomeFailed,
}

/// Counts what happened to each input and prints the summary at the end.
pub struct RunLog {
    many: bool,
    done: usize,
    skipped: usize,
    failed: Vec<String>,
    shard: Option<Shard>,
    /// Inputs (files or records) left to the other shards.
    elsewhere: usize,
}

impl RunLog {
    pub fn new(plan: &Plan) -> Self {
        Self {
            many: plan.many,
            done: 0,
            skipped: 0,
            failed: Vec::new(),
            shard: plan.shard.clone(),
            elsewhere: plan.elsewhere,
        }
    }

    /// A record of another shard passed over; `bytes` count as read, so that the progress's
    /// rate and ETA, over bytes of all shards alike, stay right.
    pub fn other_shard(&mut self, bytes: usize, progress: &Progress) {
        self.elsewhere += 1;
        progress.advance_bytes(bytes);
    }

    pub fn done(&mut self, progress: &Progress) {
        self.done += 1;
        progress.file_done();
    }

    pub fn skipped(&mut self, progress: &Progress) {
        self.skipped += 1;
        progress.file_done();
    }

    /// Reports a failed input. With a single input its error is the run's error, as is an error
    /// that ends the run whatever the input (a closed standard output).
    pub fn failed(&mut self, name: &str, error: Error, progress: &Progress) -> Result<()> {
        if !self.many || !error.is_per_input() {
            return Err(error);
        }
        progress.println(&format!("tarjama: error: {error}"));
        progress.file_done();
        let mut line = error.to_string();
        if !line.contains(name) {
            line = format!("{name}: {line}");
        }
        self.failed.push(line);
        Ok(())
    }

    /// Prints the summary of a run over several inputs (`verb`: "translated", "summarized").
    pub fn finish(self, verb: &str, quiet: bool) -> Outcome {
        if self.many && (!quiet || !self.failed.is_empty()) {
            let total = self.done + self.skipped + self.failed.len();
            if let Some(shard) = &self.shard {
                eprintln!(
                    "tarjama: shard {}/{} ({}): kept {total} of {} inputs, {} left to the other shards",
                    shard.index,
                    shard.count,
                    shard.source,
                    total + self.elsewhere,
                    self.elsewhere
                );
            }
            let mut summary = format!("tarjama: {total} inputs: {} {verb}", self.done);
            if self.skipped > 0 {
                summary += &format!(
                    ", {} already done and skipped (--force redoes them)",
                    self.skipped
                );
            }
            if !self.failed.is_empty() {
                summary += &format!(", {} failed:", self.failed.len());
            }
            eprintln!("{summary}");
            for line in &self.failed {
                eprintln!("  {line}");
            }
        }
        if self.failed.is_empty() {
            Outcome::Success
        } else {
            Outcome::SomeFailed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_replace_the_input_suffix() {
        let name = |p: &str| output_name(Path::new(p), ".ar.txt", ".en.txt");
        assert_eq!(name("2024/a.ar.txt"), PathBuf::from("2024/a.en.txt"));
        assert_eq!(name("b.txt"), PathBuf::from("b.en.txt"));
        assert_eq!(name("c.html"), PathBuf::from("c.html.en.txt"));
    }
}
