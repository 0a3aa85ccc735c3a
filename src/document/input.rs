//! Reading an input document from a file or standard input, whole or in chunks of lines.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use crate::{Error, Result};

/// How much text [`ChunkReader`] hands out at a time: enough that an ordinary article is one
/// chunk (so streaming changes nothing for it), small enough that a 100 MB archive file is
/// translated in bounded memory.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Reads a document from `path`, or from standard input when `path` is `None` or `-`.
///
/// The text must be UTF-8; a leading byte-order mark is removed and CRLF (or lone CR) line ends
/// become `\n`. Fails with a one-line [`Error::Input`] for a missing file, a directory, bytes
/// that are not UTF-8 (naming the offset), and input with no visible text.
pub fn read_input(path: Option<&Path>) -> Result<String> {
    let mut reader = ChunkReader::open(path)?;
    let mut bytes = Vec::new();
    reader
        .reader
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(&reader.name, e))?;
    decode_input(bytes, &reader.name)
}

/// Turns raw input bytes into document text, as [`read_input`] does; `name` says where the bytes
/// came from in error messages (a path, or "standard input").
pub fn decode_input(bytes: Vec<u8>, name: &str) -> Result<String> {
    let text = decode_chunk(bytes, name, 0)?;
    if super::normalize::normalize_for_model(&text).is_empty() {
        return Err(empty_error(name));
    }
    Ok(text)
}

/// An input read a chunk of whole lines at a time, so that memory stays bounded however large
/// the file is. Every chunk but the last ends with `\n`; concatenated, the chunks are exactly
/// what [`read_input`] returns for the same input.
pub struct ChunkReader {
    reader: Box<dyn BufRead + Send>,
    name: String,
    /// Bytes consumed so far, for the offsets in error messages.
    offset: u64,
    saw_text: bool,
    done: bool,
    chunk_bytes: usize,
    /// A chunk read ahead by [`ChunkReader::prefetch`].
    ahead: Option<String>,
}

impl ChunkReader {
    /// Opens `path`, or standard input for `None` or `-`, failing with one line for a missing
    /// file, a directory or a permission problem.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let (reader, name): (Box<dyn BufRead + Send>, String) = match path {
            Some(p) if p.as_os_str() != "-" => {
                let name = p.display().to_string();
                if p.is_dir() {
                    return Err(Error::input(format!(
                        "cannot read {name}: it is a directory; pass the path of a text file with one article"
                    )));
                }
                let file = File::open(p).map_err(|e| read_error(&name, e))?;
                (Box::new(BufReader::with_capacity(1 << 16, file)), name)
            }
            _ => (
                Box::new(BufReader::new(std::io::stdin())),
                "standard input".to_string(),
            ),
        };
        Ok(Self::new(reader, name))
    }

    /// Opens `path` (or standard input) for reading line by line (JSON Lines), with the errors
    /// of [`ChunkReader::open`].
    pub fn open_lines(path: Option<&Path>) -> Result<Box<dyn BufRead + Send>> {
        Ok(Self::open(path)?.reader)
    }

    /// Reads text already in memory (a JSON Lines record's field).
    pub fn from_text(text: String, name: String) -> Self {
        Self::new(Box::new(std::io::Cursor::new(text.into_bytes())), name)
    }

    fn new(reader: Box<dyn BufRead + Send>, name: String) -> Self {
        Self {
            reader,
            name,
            offset: 0,
            saw_text: false,
            done: false,
            chunk_bytes: CHUNK_BYTES,
            ahead: None,
        }
    }

    /// Sets the chunk size (tests use small ones to exercise chunk boundaries).
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Where the text comes from, for messages: a path or "standard input".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the first chunk now, so that an unusable input is reported before a model is
    /// loaded for it; [`ChunkReader::next_chunk`] returns it next.
    pub fn prefetch(&mut self) -> Result<()> {
        if self.ahead.is_none() {
            self.ahead = self.next_chunk()?;
        }
        Ok(())
    }

    /// The next chunk of whole lines, or `None` at the end. An input without any visible text
    /// is an error at its end, like [`read_input`]'s.
    pub fn next_chunk(&mut self) -> Result<Option<String>> {
        if let Some(chunk) = self.ahead.take() {
            return Ok(Some(chunk));
        }
        if self.done {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        while bytes.len() < self.chunk_bytes {
            let read = self
                .reader
                .read_until(b'\n', &mut bytes)
                .map_err(|e| read_error(&self.name, e))?;
            if read == 0 {
                self.done = true;
                break;
            }
        }
        let start = self.offset;
        self.offset += bytes.len() as u64;
        if bytes.is_empty() {
            return if self.saw_text {
                Ok(None)
            } else {
                Err(empty_error(&self.name))
            };
        }
        let text = decode_chunk(bytes, &self.name, start)?;
        if !self.saw_text {
            self.saw_text = !super::normalize::normalize_for_model(&text).is_empty();
            if self.done && !self.saw_text {
                return Err(empty_error(&self.name));
            }
        }
        Ok(Some(text))
    }
}

/// Decodes the bytes found at byte `offset` of an input: UTF-8 only (a UTF-16 or other encoding
/// is named with the command that converts it), the byte-order mark removed, line ends made
/// `\n`.
fn decode_chunk(bytes: Vec<u8>, name: &str, offset: u64) -> Result<String> {
    if offset == 0 && (bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF])) {
        return Err(Error::input(format!(
            "cannot read {name}: it is UTF-16 text, not UTF-8; convert it with `iconv -f utf-16 -t utf-8`"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let byte = e.as_bytes()[at];
        Error::input(format!(
            "cannot read {name}: it is not UTF-8 (byte 0x{byte:02X} at byte offset {}); \
             if it is a Windows-1256 (Arabic Windows) file, convert it with `iconv -f cp1256 -t utf-8`",
            offset + at as u64
        ))
    })?;
    let text = match text.strip_prefix('\u{FEFF}') {
        Some(rest) if offset == 0 => rest.to_string(),
        _ => text,
    };
    // Chunks end after a `\n`, so a CRLF pair is never split between two of them.
    Ok(if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    })
}

fn read_error(name: &str, e: std::io::Error) -> Error {
    let reason = match e.kind() {
        ErrorKind::NotFound => {
            "no such file; check the path, or pass - to read standard input".to_string()
        }
        ErrorKind::PermissionDenied => {
            "permission denied; check the file's permissions".to_string()
        }
        _ => format!("{e}"),
    };
    Error::input(format!("cannot read {name}: {reason}"))
}

fn empty_error(name: &str) -> Error {
    Error::input(format!(
        "cannot use {name}: it is empty or only whitespace; pass a file that contains the article's text"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &[u8], size: usize) -> Result<Vec<String>> {
        let mut reader = ChunkReader::new(
            Box::new(std::io::Cursor::new(text.to_vec())),
            "t".to_string(),
        )
        .with_chunk_bytes(size);
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk()? {
            out.push(chunk);
        }
        Ok(out)
    }

    #[test]
    fn chunks_are_whole_lines_and_concatenate_to_the_whole_input() {
        let text = "\u{FEFF}سطر أول\r\n\r\nسطر ثان\rثالث\nlast line without newline";
        let whole = decode_input(text.as_bytes().to_vec(), "t").unwrap();
        for size in [1, 5, 16, 1000] {
            let parts = chunks(text.as_bytes(), size).unwrap();
            assert_eq!(parts.concat(), whole, "chunk size {size}");
            for part in &parts[..parts.len() - 1] {
                assert!(part.ends_with('\n'), "{part:?}");
            }
        }
    }

    #[test]
    fn a_prefetched_chunk_comes_first() {
        let mut reader =
            ChunkReader::from_text("a\nb\n".to_string(), "t".to_string()).with_chunk_bytes(1);
        reader.prefetch().unwrap();
        reader.prefetch().unwrap();
        assert_eq!(reader.next_chunk().unwrap().as_deref(), Some("a\n"));
        assert_eq!(reader.next_chunk().unwrap().as_deref(), Some("b\n"));
        assert_eq!(reader.next_chunk().unwrap(), None);
        let mut empty = ChunkReader::from_text(" \n".to_string(), "t".to_string());
        assert!(empty.prefetch().is_err());
    }

    #[test]
    fn bad_bytes_are_reported_at_their_offset_in_the_file() {
        let mut text = "سطر\n".repeat(10).into_bytes();
        text.extend_from_slice(b"\xE1abc\n");
        let err = chunks(&text, 8).unwrap_err().to_string();
        assert!(err.contains("byte 0xE1 at byte offset 70"), "{err}");
    }

    #[test]
    fn whitespace_only_input_is_an_error_at_its_end() {
        assert!(chunks(b"  \n\n \n", 2).is_err());
        assert!(chunks(b"", 2).is_err());
        assert_eq!(chunks(b"\n\nx\n", 1).unwrap().concat(), "\n\nx\n");
    }
}
