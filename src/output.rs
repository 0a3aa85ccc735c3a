//! Writing results: stdout, or a file replaced atomically so a failed or interrupted run never
//! leaves a partial or truncated file behind. File locks (flock, through std) keep two runs from
//! writing one output ([`OutputLock`]) and tell a live run's temporary files from those a killed
//! run left ([`remove_stale_temps`]).

use std::fs::{File, TryLockError};
use std::io::{Read, Write};
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

/// Temporary files are `.tarjama-<pid>-<random>.tmp`. The pid only helps a person tell whose a
/// file is: pids say nothing across PID namespaces (containers sharing a volume), so ownership is
/// an exclusive lock the writer holds on its temporary file for as long as the file exists.
const TEMP_PREFIX: &str = ".tarjama-";

/// Device and inode of a file: what "the same file" means, whatever the path (hard links and
/// symbolic links included). `None` where the platform has no such numbers.
pub fn file_id(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// Whether `path` (not following a final symbolic link) still names the file open as `file`.
fn names_file(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => file_id(&a).is_some_and(|a| file_id(&b) == Some(a)),
        _ => false,
    }
}

/// Deletes the temporary files in `dir` whose writers are gone: a killed process cannot delete
/// its own, and the kernel releases its locks when it dies, whichever PID namespace it ran in.
/// A file whose lock is held, or cannot be tried (a file system without locks), is kept.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let temporary = name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp");
        if !(temporary && entry.file_type().is_ok_and(|t| t.is_file())) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // Taken, the lock is held through the removal, so a writer that has just created the
        // file cannot lock it meanwhile; it sees afterwards that its name is gone and takes
        // another ([`create_temp`]). The name is checked again because a writer that finished
        // has renamed its file away.
        if file.try_lock().is_ok() && names_file(&path, &file) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A new temporary file in `dir`, locked (see [`TEMP_PREFIX`]).
fn create_temp(dir: &Path) -> std::io::Result<NamedTempFile> {
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    // Between creating the file and locking it, another run's clean-up may take the lock and
    // delete the file; then another name is tried. A handful of tries is plenty: that window
    // is a few microseconds.
    for _ in 0..16 {
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)?;
        match temp.as_file().try_lock() {
            Ok(()) if names_file(temp.path(), temp.as_file()) => return Ok(temp),
            Ok(()) | Err(TryLockError::WouldBlock) => continue,
            // Without locks here, no clean-up can take a lock on it either, so it is safe.
            Err(TryLockError::Error(_)) => return Ok(temp),
        }
    }
    Err(std::io::Error::other(
        "its temporary files keep being deleted by another process",
    ))
}

/// Keeps two tarjama runs from writing one output file at the same time: each would rename its
/// own result over the file, and the records of all but the last would be lost.
///
/// The lock is taken on `.NAME.tarjama.lock` beside the output, not on the output itself: every
/// commit renames a new inode over the output, so a lock on the output would not cover the next
/// writer. The lock file is removed when the run ends, while still locked; a run that opened it
/// in the meantime finds once it holds the lock that the name no longer leads to its file, and
/// starts over, so two runs never both hold the lock. A killed run leaves it behind, unlocked
/// and harmless: the next run takes it over.
pub struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    /// Locks `output` for this run, or says which run has it: a usage error (exit code 2).
    pub fn acquire(output: &Path) -> Result<OutputLock> {
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        let path = dir.join(format!(".{name}.tarjama.lock"));
        let io = |source| Error::Output {
            path: output.to_path_buf(),
            source,
        };
        for _ in 0..16 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    if !names_file(&path, &file) {
                        // Its holder finished and removed it just now.
                        continue;
                    }
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let pid = match holder.trim().parse::<u32>() {
                        Ok(pid) => format!(" (pid {pid})"),
                        Err(_) => String::new(),
                    };
                    return Err(Error::usage(format!(
                        "another tarjama run is writing {}{pid}: wait for it to finish, or choose another -o",
                        output.display()
                    )));
                }
                // std has no file locks on this platform: write unguarded, as before locks.
                Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                    return Ok(OutputLock { path, _file: file })
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if !names_file(&path, &file) {
                // Removed by the run that held it between our open and our lock.
                continue;
            }
            // Only for the message another run prints; the lock itself is what counts.
            let _ = file
                .set_len(0)
                .and_then(|_| file.write_all(std::process::id().to_string().as_bytes()));
            if let Ok(mut pending) = PENDING.lock() {
                pending.push(path.clone());
            }
            return Ok(OutputLock { path, _file: file });
        }
        Err(io(std::io::Error::other(
            "its lock file keeps being replaced by other processes",
        )))
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        forget_pending(&self.path);
        // Still locked here; see the type's documentation.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Temporary files being written, and this run's output lock files. A normal exit or a failed
/// input drops them (tempfile deletes on drop), but a second Ctrl-C exits at once without running
/// destructors, so the signal handler removes what is listed here ([`remove_pending`]); the
/// locks are still held then.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Deletes the temporary files of outputs still being written, and this run's lock files.
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
        let temp = create_temp(&dir).map_err(io)?;
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
        self.write_bytes(text.as_bytes())
    }

    /// Appends `bytes`, as [`OutputTarget::write`] appends text.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            OutputTarget::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|_| out.flush())
                    .map_err(|source| match source.kind() {
                        std::io::ErrorKind::BrokenPipe => Error::StdoutClosed,
                        _ => Error::Output {
                            path: PathBuf::from("<stdout>"),
                            source,
                        },
                    })
            }
            OutputTarget::File { path, temp } => {
                let file = temp.temp.as_mut().expect("a pending file until committed");
                file.write_all(bytes).map_err(|source| Error::Output {
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

    /// [`remove_pending`] empties the process-wide list: the tests that list files take turns,
    /// or one would delete another's files.
    static PENDING_USERS: Mutex<()> = Mutex::new(());

    fn take_turn() -> std::sync::MutexGuard<'static, ()> {
        PENDING_USERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn file_appears_only_on_finish() {
        let _turn = take_turn();
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
        let _turn = take_turn();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        drop(OutputTarget::open(Some(&path)).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn removed_pending_files_leave_the_old_output() {
        let _turn = take_turn();
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

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn only_temporary_files_nobody_holds_are_removed() {
        let _turn = take_turn();
        let dir = tempfile::tempdir().unwrap();
        let mut ours = OutputTarget::open(Some(&dir.path().join("a.en.txt"))).unwrap();
        ours.write("partial").unwrap();
        // A live writer in another PID namespace: its pid means nothing here (none reaches
        // 4194304, Linux's pid_max limit), its lock does.
        let foreign = dir.path().join(".tarjama-4194305-abc.tmp");
        let held = File::create(&foreign).unwrap();
        held.lock().unwrap();
        // Left by a killed run whose pid this process now has: no lock, so stale.
        let stale = format!(".tarjama-{}-old.tmp", std::process::id());
        std::fs::write(dir.path().join(&stale), "x").unwrap();
        std::fs::write(dir.path().join("b.en.txt"), "x").unwrap();
        let before = names(dir.path());
        assert_eq!(before.len(), 4);

        remove_stale_temps(dir.path());
        let left = names(dir.path());
        assert!(!left.contains(&stale), "{left:?}");
        assert_eq!(left.len(), 3, "{left:?}");
        ours.finish(" done").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.en.txt")).unwrap(),
            "partial done"
        );

        drop(held);
        remove_stale_temps(dir.path());
        assert_eq!(names(dir.path()), ["a.en.txt", "b.en.txt"]);
    }

    #[test]
    fn an_output_is_locked_until_its_run_ends() {
        let _turn = take_turn();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let lock = OutputLock::acquire(&path).unwrap();
        assert_eq!(names(dir.path()), [".out.jsonl.tarjama.lock"]);
        let err = OutputLock::acquire(&path).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        let msg = err.to_string();
        assert!(
            msg.contains("another tarjama run is writing")
                && msg.contains(&format!("(pid {})", std::process::id())),
            "{msg}"
        );
        drop(lock);
        assert!(names(dir.path()).is_empty(), "the lock file is removed");
        drop(OutputLock::acquire(&path).unwrap());
    }

    #[test]
    fn a_lock_file_left_by_a_killed_run_is_taken_over() {
        let _turn = take_turn();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(dir.path().join(".out.txt.tarjama.lock"), "4194305").unwrap();
        drop(OutputLock::acquire(&path).unwrap());
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn missing_directory_is_an_output_error() {
        let err = OutputTarget::open(Some(Path::new("/nonexistent-dir/x.txt")))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 1);
    }
}
