//! Reading an input document from a file or standard input.

use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::{Error, Result};

/// Reads a document from `path`, or from standard input when `path` is `None` or `-`.
///
/// The text must be UTF-8; a leading byte-order mark is removed and CRLF (or lone CR) line ends
/// become `\n`. Fails with a one-line [`Error::Input`] for a missing file, a directory, bytes
/// that are not UTF-8 (naming the offset), and input with no visible text.
pub fn read_input(path: Option<&Path>) -> Result<String> {
    match path {
        None => read_stdin(),
        Some(p) if p.as_os_str() == "-" => read_stdin(),
        Some(p) => {
            let name = p.display().to_string();
            if p.is_dir() {
                return Err(Error::input(format!(
                    "cannot read {name}: it is a directory; pass the path of a text file with one article"
                )));
            }
            let bytes = std::fs::read(p).map_err(|e| {
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
            })?;
            decode_input(bytes, &name)
        }
    }
}

fn read_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input(format!("cannot read standard input: {e}")))?;
    decode_input(bytes, "standard input")
}

/// Turns raw input bytes into document text, as [`read_input`] does; `name` says where the bytes
/// came from in error messages (a path, or "standard input").
pub fn decode_input(bytes: Vec<u8>, name: &str) -> Result<String> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Error::input(format!(
            "cannot read {name}: it is UTF-16 text, not UTF-8; convert it with `iconv -f utf-16 -t utf-8`"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let byte = e.as_bytes()[offset];
        Error::input(format!(
            "cannot read {name}: it is not UTF-8 (byte 0x{byte:02X} at byte offset {offset}); \
             if it is a Windows-1256 (Arabic Windows) file, convert it with `iconv -f cp1256 -t utf-8`"
        ))
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let text = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    };
    if super::normalize::normalize_for_model(&text).is_empty() {
        return Err(Error::input(format!(
            "cannot use {name}: it is empty or only whitespace; pass a file that contains the article's text"
        )));
    }
    Ok(text)
}
