//! Reading the GGUF container: the header, metadata and tensor index of a file, checked before
//! candle parses them ([`validate_gguf`]) and against the file's length. Model-agnostic, so both
//! the chat models (`models::gguf`) and their tokenizers (`tokenizer::gguf`) read files through it.

mod validate;

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use candle_core::quantized::gguf_file;

use crate::{Error, Result};

pub use validate::validate_gguf;

/// A GGUF file being read: its header through the buffer, its tensors at their offsets (or
/// through a mapping of the file: [`ReadAt::file`]).
pub type GgufFile = BufReader<File>;

/// A GGUF file's bytes, readable at any offset from several threads at once, so that a model's
/// tensors load in parallel; still a reader for code that reads them one after the other.
pub trait ReadAt: Read + Seek + Sync {
    /// Fills `buf` with the bytes at `offset`, or fails with `UnexpectedEof` past the end.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;

    /// The file the bytes are in, for a loader that maps it instead; `None` for bytes in memory.
    fn file(&self) -> Option<&File> {
        None
    }
}

impl ReadAt for GgufFile {
    fn file(&self) -> Option<&File> {
        Some(self.get_ref())
    }

    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self.get_ref(), buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                self.get_ref(),
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// GGUF bytes in memory (tests, fuzzing).
impl<T: AsRef<[u8]> + Sync> ReadAt for std::io::Cursor<T> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let bytes = self.get_ref().as_ref();
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| bytes.get(start..start.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Reads a GGUF header (metadata and tensor index, no tensor data) and checks that the file
/// holds all the tensor data the header announces.
pub fn read_header(path: &Path) -> Result<(gguf_file::Content, GgufFile)> {
    let file = File::open(path)
        .map_err(|e| Error::model(format!("cannot open GGUF file {}: {e}", path.display())))?;
    let mut file = BufReader::new(file);
    let content = read_content(&mut file, path)?;
    check_complete(&content, &mut file, path)?;
    Ok((content, file))
}

/// Reads the header, metadata and tensor index of the GGUF file `reader` is at the start of,
/// after [`validate_gguf`] has checked that candle can do so without absurd allocations or a
/// panic (candle trusts the file's length fields more than a damaged download deserves). The
/// reader is left after the tensor index; `path` names the file in errors.
pub fn read_content<R: Read + Seek>(reader: &mut R, path: &Path) -> Result<gguf_file::Content> {
    let unreadable = |why: &dyn std::fmt::Display| {
        Error::model(format!(
            "{} is not a readable GGUF file ({why}): it is damaged, truncated or not a GGUF \
             model; download it again",
            path.display()
        ))
    };
    let io = |e: std::io::Error| unreadable(&e);
    let start = reader.stream_position().map_err(io)?;
    let end = reader.seek(std::io::SeekFrom::End(0)).map_err(io)?;
    reader.seek(std::io::SeekFrom::Start(start)).map_err(io)?;
    validate_gguf(&mut *reader, end.saturating_sub(start)).map_err(|why| unreadable(&why))?;
    reader.seek(std::io::SeekFrom::Start(start)).map_err(io)?;
    gguf_file::Content::read(reader).map_err(|e| unreadable(&crate::error::candle_one_line(&e)))
}

/// A truncated download still has a valid header; the last tensor then ends past the file end.
/// The sizes cannot overflow: [`validate_gguf`] has bounded them.
pub fn check_complete<R: Seek>(
    content: &gguf_file::Content,
    file: &mut R,
    path: &Path,
) -> Result<()> {
    let file_len = file
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| Error::model(format!("cannot read {}: {e}", path.display())))?;
    let data_end = content
        .tensor_infos
        .values()
        .map(|info| {
            let elements = info.shape.elem_count() as u64;
            let block = info.ggml_dtype.block_size() as u64;
            info.offset + elements / block * info.ggml_dtype.type_size() as u64
        })
        .max()
        .unwrap_or(0)
        + content.tensor_data_offset;
    if data_end > file_len {
        return Err(Error::model(format!(
            "GGUF file {} is truncated: its tensors need {data_end} bytes but the file has {file_len}; download it again",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_at_reads_files_and_bytes_alike_and_stops_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        let bytes: Vec<u8> = (0..=255).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = BufReader::new(File::open(&path).unwrap());
        let cursor = std::io::Cursor::new(bytes.as_slice());
        for reader in [&file as &dyn ReadAt, &cursor] {
            let mut buf = [0u8; 4];
            reader.read_exact_at(&mut buf, 250).unwrap();
            assert_eq!(buf, [250, 251, 252, 253]);
            let err = reader.read_exact_at(&mut buf, 254).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(reader.read_exact_at(&mut buf, u64::MAX).is_err());
        }
    }

    #[test]
    fn garbage_is_not_a_gguf_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        std::fs::write(&path, b"definitely not gguf").unwrap();
        let err = read_header(&path).err().unwrap();
        assert!(err.to_string().contains("not a readable GGUF"), "{err}");
        assert_eq!(err.exit_code(), 3);
    }
}
