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

/// A GGUF file being read. candle's quantized tensors own their data, so each tensor is
/// copied into memory once; reading the file (rather than mapping it, as before) keeps its pages
/// out of the process's resident memory, where a mapped file counted a second time.
pub type GgufFile = BufReader<File>;

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
    fn garbage_is_not_a_gguf_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        std::fs::write(&path, b"definitely not gguf").unwrap();
        let err = read_header(&path).err().unwrap();
        assert!(err.to_string().contains("not a readable GGUF"), "{err}");
        assert_eq!(err.exit_code(), 3);
    }
}
