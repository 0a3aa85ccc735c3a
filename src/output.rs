//! Writing results: stdout, or a file replaced atomically so a failed run never leaves a partial
//! or truncated file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::{Error, Result};

/// Where the result goes. A file target creates its temporary file up front, so an unwritable
/// path is reported before any model work is done.
pub enum OutputTarget {
    Stdout,
    File { path: PathBuf, temp: NamedTempFile },
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
        let temp = tempfile::Builder::new()
            .prefix(".tarjama-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|source| Error::Output {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(OutputTarget::File {
            path: path.to_path_buf(),
            temp,
        })
    }

    /// Writes `text` and, for a file, renames the temporary file over the target.
    pub fn finish(self, text: &str) -> Result<()> {
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
            OutputTarget::File { path, mut temp } => {
                let io = |source| Error::Output {
                    path: path.clone(),
                    source,
                };
                temp.write_all(text.as_bytes()).map_err(io)?;
                temp.as_file().sync_all().map_err(io)?;
                // Temporary files are private (0600); the result gets the permissions of the file
                // it replaces, or the usual 0644 for a new file.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let permissions = std::fs::metadata(&path)
                        .map(|m| m.permissions())
                        .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
                    std::fs::set_permissions(temp.path(), permissions).map_err(io)?;
                }
                temp.persist(&path).map_err(|e| io(e.error))?;
                Ok(())
            }
        }
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
    fn missing_directory_is_an_output_error() {
        let err = OutputTarget::open(Some(Path::new("/nonexistent-dir/x.txt")))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 1);
    }
}
