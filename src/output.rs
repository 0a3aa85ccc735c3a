//! Writing results: stdout, or a file replaced atomically so a failed or interrupted run never
//! leaves a partial or truncated file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use crate::{Error, Result};

/// `tarjama: error`, in red on a terminal unless `NO_COLOR` is set (<https://no-color.org>).
pub fn error_prefix() -> String {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if !no_color && std::io::stderr().is_terminal() {
        "tarjama: \x1b[1;31merror\x1b[0m".to_string()
    } else {
        "tarjama: error".to_string()
    }
}

/// Temporary files are `.tarjama-<pid>-<random>.tmp`, so a later run can tell those of a killed
/// process from those of one still running.
const TEMP_PREFIX: &str = ".tarjama-";

/// Deletes the temporary files in `dir` left by tarjama processes that no longer run (a killed
/// process cannot delete its own). Only where `/proc` tells which processes run.
pub fn remove_stale_temps(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid = name
            .strip_prefix(TEMP_PREFIX)
            .filter(|rest| rest.ends_with(".tmp"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !proc.join(pid.to_string()).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Temporary files being written. A normal exit or a failed input drops them (tempfile deletes
/// on drop), but a second Ctrl-C exits at once without running destructors, so the signal
/// handler removes what is listed here ([`remove_pending`]).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Deletes the temporary files of outputs still being written.
pub fn remove_pending() {
    if let Ok(mut pending) = PENDING.lock() {
        for path in pending.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn forget_pending(path: &Path) {
    if let Ok(mut pending) = PENDING.lock() {
        pending.retain(|p| p != path);
    }
}

/// A temporary file beside its target, listed in [`PENDING`] while it exists.
pub struct PendingFile {
    temp: Option<NamedTempFile>,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            forget_pending(temp.path());
        }
    }
}

/// Where the result goes. A file target creates its temporary file up front, so an unwritable
/// path is reported before any model work is done.
pub enum OutputTarget {
    Stdout,
    File { path: PathBuf, temp: PendingFile },
}

impl OutputTarget {
    /// `None` or `-` is stdout.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
            return Ok(OutputTarget::Stdout);
        };
        if path.is_dir() {
            return Err(Error::usage(format!(
                "output path {} is a directory: give a file name, e.g. -o {}/article.en.txt",
                path.display(),
                path.display()
            )));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |source| Error::Output {
            path: path.to_path_buf(),
            source,
        };
        let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io)?;
        if let Ok(mut pending) = PENDING.lock() {
            pending.push(temp.path().to_path_buf());
        }
        Ok(OutputTarget::File {
            path: path.to_path_buf(),
            temp: PendingFile { temp: Some(temp) },
        })
    }

    /// Where the result goes, for messages.
    pub fn display(&self) -> String {
        match self {
            OutputTarget::Stdout => "<stdout>".to_string(),
            OutputTarget::File { path, .. } => path.display().to_string(),
        }
    }

    /// Appends `text`: printed at once to stdout, kept in the temporary file for a file.
    pub fn write(&mut self, text: &str) -> Result<()> {
        match self {
            OutputTarget::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .map_err(|source| Error::Output {
                        path: PathBuf::from("<stdout>"),
                        source,
                    })
            }
            OutputTarget::File { path, temp } => {
                let file = temp.temp.as_mut().expect("a pending file until committed");
                file.write_all(text.as_bytes())
                    .map_err(|source| Error::Output {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Writes `text` and commits: see [`OutputTarget::commit`].
    pub fn finish(mut self, text: &str) -> Result<()> {
        self.write(text)?;
        self.commit()
    }

    /// For a file, syncs the temporary file and renames it over the target.
    pub fn commit(self) -> Result<()> {
        let OutputTarget::File { path, mut temp } = self else {
            return Ok(());
        };
        let io = |source| Error::Output {
            path: path.clone(),
            source,
        };
        let file = temp.temp.take().expect("a pending file until committed");
        forget_pending(file.path());
        file.as_file().sync_all().map_err(io)?;
        // Temporary files are private (0600); the result gets the permissions of the file it
        // replaces, or the usual 0644 for a new file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let permissions = std::fs::metadata(&path)
                .map(|m| m.permissions())
                .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
            std::fs::set_permissions(file.path(), permissions).map_err(io)?;
        }
        file.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let target = OutputTarget::open(Some(&path)).unwrap();
        assert!(!path.exists());
        target.finish("hello\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn dropped_target_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        drop(OutputTarget::open(Some(&path)).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn removed_pending_files_leave_the_old_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let mut target = OutputTarget::open(Some(&path)).unwrap();
        target.write("partial").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        remove_pending();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        std::mem::forget(target);
    }

    #[test]
    fn temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ours = format!(".tarjama-{}-abc.tmp", std::process::id());
        // No process has pid 4194304 or more (Linux's pid_max limit).
        for name in [ours.as_str(), ".tarjama-4194305-abc.tmp", "a.en.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        remove_stale_temps(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        if Path::new("/proc/self").exists() {
            assert_eq!(left, [ours, "a.en.txt".to_string()]);
        }
    }

    #[test]
    fn missing_directory_is_an_output_error() {
        let err = OutputTarget::open(Some(Path::new("/nonexistent-dir/x.txt")))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 1);
    }
}
