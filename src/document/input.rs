//! Reading an input document from a file or standard input, whole or in chunks of lines.

use std::fs::File;
use std::io::{BufRead, ErrorKind, Read};
use std::path::Path;

use super::language;
use super::pipe::Source;
use crate::{Error, Result};

/// How much text [`ChunkReader`] hands out at a time: enough that an ordinary article is one
/// chunk (so streaming changes nothing for it), small enough that a 100 MB archive file is
/// translated in bounded memory.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The longest line [`ChunkReader`] hands out whole. A longer one is not a paragraph but text
/// that lost its line breaks (an archive flattened onto one line, text with no spaces), and
/// holding it whole made memory grow with it (a 50 MB line took 3.2 GB); it is cut into pieces
/// of at most this many bytes, each a line of its own. 16 KiB is some 3,000 Arabic words, longer
/// than any paragraph of an article, and a cut at a sentence end changes no translation, as
/// sentences are translated one by one.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

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
/// what [`read_input`] returns for the same input, except that a line longer than
/// [`MAX_LINE_BYTES`] comes in pieces that end a line each: cut after a sentence end and a space
/// when there is one, else at a space, and the space becomes the line break; with no space, a
/// line break is added between two characters.
///
/// From a pipe (standard input that is not a file, a FIFO), a chunk also ends when the writer
/// has sent nothing more for a moment, so each paragraph is translated as soon as it arrives.
pub struct ChunkReader {
    reader: Source,
    name: String,
    /// Input bytes consumed so far, for the offsets in error messages.
    offset: u64,
    saw_text: bool,
    done: bool,
    chunk_bytes: usize,
    max_line: usize,
    /// The rest of a line that was cut: the start of the next chunk.
    carry: Vec<u8>,
    /// A chunk read ahead by [`ChunkReader::prefetch`].
    ahead: Option<String>,
    /// Whether the text's language is still to be checked ([`ChunkReader::expecting_arabic`]).
    check_language: bool,
}

/// How [`ChunkReader::read_line`] ended a line.
enum LineEnd {
    /// At `\n` or at the end of the input, with the line's length (0: the input is over).
    Whole(usize),
    /// Cut short; `added` is 1 if the line break was added to the input's bytes.
    Cut { added: usize },
}

impl ChunkReader {
    /// Opens `path`, or standard input for `None` or `-`, failing with one line for a missing
    /// file, a directory or a permission problem.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let (reader, name): (Source, String) = match path {
            Some(p) if p.as_os_str() != "-" => {
                let name = p.display().to_string();
                if p.is_dir() {
                    return Err(Error::input(format!(
                        "cannot read {name}: it is a directory; pass the path of a text file with one article"
                    )));
                }
                let file = File::open(p).map_err(|e| read_error(&name, e))?;
                (Source::file(file), name)
            }
            _ => (Source::stdin(), "standard input".to_string()),
        };
        Ok(Self::new(reader, name))
    }

    /// Opens `path` (or standard input) for reading line by line (JSON Lines), with the errors
    /// of [`ChunkReader::open`].
    pub fn open_lines(path: Option<&Path>) -> Result<Source> {
        Ok(Self::open(path)?.reader)
    }

    /// Reads text already in memory (a JSON Lines record's field).
    pub fn from_text(text: String, name: String) -> Self {
        Self::new(
            Source::Ready(Box::new(std::io::Cursor::new(text.into_bytes()))),
            name,
        )
    }

    fn new(reader: Source, name: String) -> Self {
        Self {
            reader,
            name,
            offset: 0,
            saw_text: false,
            done: false,
            chunk_bytes: CHUNK_BYTES,
            max_line: MAX_LINE_BYTES,
            carry: Vec::new(),
            ahead: None,
            check_language: false,
        }
    }

    /// Refuses text in another language than Arabic (Persian, Urdu, English, ...) with an
    /// [`Error::Input`] naming it, instead of its first chunk. The first chunks with enough
    /// letters decide: a file's first chunk holds a whole article; from a pipe, a short title
    /// may come first and go through before the paragraph that decides.
    pub fn expecting_arabic(mut self) -> Self {
        self.check_language = true;
        self
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

    /// Whether the next chunk can be read without waiting on a pipe's writer (see
    /// [`Source::ready`]).
    pub fn ready(&mut self) -> bool {
        self.ahead.is_some() || self.done || !self.carry.is_empty() || self.reader.ready()
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
        let mut added = 0;
        while bytes.len() < self.chunk_bytes {
            match self
                .read_line(&mut bytes)
                .map_err(|e| read_error(&self.name, e))?
            {
                LineEnd::Whole(0) => {
                    self.done = true;
                    break;
                }
                // A pipe's writer has sent no more yet: what is here is translated now.
                LineEnd::Whole(_) if !self.reader.ready() => break,
                LineEnd::Whole(_) => {}
                // A piece ends its chunk, so that an added line break is always the chunk's
                // last byte and the offsets of bad bytes before it stay those of the input.
                LineEnd::Cut { added: n } => {
                    added = n;
                    break;
                }
            }
        }
        let start = self.offset;
        self.offset += (bytes.len() - added) as u64;
        if bytes.is_empty() {
            return if self.saw_text {
                Ok(None)
            } else {
                Err(empty_error(&self.name))
            };
        }
        let text = decode_chunk(bytes, &self.name, start)?;
        if self.check_language {
            let arabic =
                language::require_arabic(&text, &self.name).inspect_err(|_| self.done = true)?;
            self.check_language = !arabic;
        }
        if !self.saw_text {
            self.saw_text = !super::normalize::normalize_for_model(&text).is_empty();
            if self.done && !self.saw_text {
                return Err(empty_error(&self.name));
            }
        }
        Ok(Some(text))
    }

    /// Appends the next line to `bytes`, or the next piece of a line over `max_line` bytes.
    fn read_line(&mut self, bytes: &mut Vec<u8>) -> std::io::Result<LineEnd> {
        let start = bytes.len();
        bytes.append(&mut self.carry);
        // The rest of a cut line may hold that line's end, at its end.
        if !bytes[start..].ends_with(b"\n") {
            // Two bytes over the limit tell a line of `max_line` bytes and its `\r\n` from a
            // longer one.
            let room = (self.max_line + 2).saturating_sub(bytes.len() - start);
            (&mut self.reader)
                .take(room as u64)
                .read_until(b'\n', bytes)?;
        }
        let line = &bytes[start..];
        let text = line
            .strip_suffix(b"\n")
            .map_or(line, |l| l.strip_suffix(b"\r").unwrap_or(l));
        // Without a line end, a line within the limit is the input's last.
        if text.len() <= self.max_line {
            return Ok(LineEnd::Whole(line.len()));
        }
        let (end, added) = match cut_point(line, self.max_line) {
            Cut::AfterCr(end) => (end, 0),
            Cut::AtSpace(space) => {
                bytes[start + space] = b'\n';
                (space + 1, 0)
            }
            Cut::Between(end) => (end, 1),
        };
        self.carry = bytes.split_off(start + end);
        if added == 1 {
            bytes.push(b'\n');
        }
        Ok(LineEnd::Cut { added })
    }
}

/// Where a line over the limit is cut.
#[derive(Debug, PartialEq, Eq)]
enum Cut {
    /// After the CR at `end - 1`: a line end of old Macs, which only decoding turns into `\n`.
    AfterCr(usize),
    /// At the space or tab at this index, which becomes the line break.
    AtSpace(usize),
    /// Between the characters before and after this index; a line break is added there.
    Between(usize),
}

/// Where to cut `line`, which is longer than `max` bytes, so that the piece before the cut has
/// at most `max` bytes: after a CR, else at a space that follows a sentence end, else at any
/// space or tab, else between two characters. Only ASCII bytes are looked for, and they never
/// occur inside a multi-byte UTF-8 character.
fn cut_point(line: &[u8], max: usize) -> Cut {
    const SENTENCE_ENDS: [&str; 7] = [".", "!", "?", "؟", "؛", "…", "۔"];
    // A CR right after `max` bytes ends a line of `max` bytes. It is never one of a CRLF pair:
    // a line that ends with one is cut only when it is longer.
    if let Some(cr) = line[..=max].iter().rposition(|&b| b == b'\r') {
        return Cut::AfterCr(cr + 1);
    }
    let window = &line[..max];
    // A space at the start would leave an empty piece.
    let spaces = || {
        (1..max)
            .rev()
            .filter(|&i| matches!(window[i], b' ' | b'\t'))
    };
    let after_sentence = spaces().find(|&i| {
        SENTENCE_ENDS
            .iter()
            .any(|end| window[..i].ends_with(end.as_bytes()))
    });
    if let Some(space) = after_sentence.or_else(|| spaces().next()) {
        return Cut::AtSpace(space);
    }
    // A UTF-8 continuation byte (0b10xxxxxx) is inside a character: the cut goes before the
    // next byte that starts one. Bytes that are not UTF-8 are cut anywhere; decoding reports
    // them.
    let boundary = (1..=max).rev().take(4).find(|&i| line[i] & 0xC0 != 0x80);
    Cut::Between(boundary.unwrap_or(max))
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
    let sniffed = if offset == 0 {
        utf16_without_bom(&bytes)
    } else {
        None
    };
    if let Some(encoding) = sniffed {
        // Without a byte-order mark iconv cannot tell the byte order, so it is named.
        return Err(Error::input(format!(
            "cannot read {name}: it is {encoding} text without a byte-order mark, not UTF-8; \
             convert it with `iconv -f {} -t utf-8`",
            encoding.to_lowercase()
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

/// Tells UTF-16 without a byte-order mark by its first 4 KiB: most code units of Arabic or
/// Latin text have a high byte of 0x06 or 0x00, control characters that UTF-8 text hardly ever
/// holds, and all bytes of Arabic UTF-16 are below 0x80, so it would pass as UTF-8. Returns
/// "UTF-16LE" or "UTF-16BE" when at least 30% of the bytes at one parity are controls (tab and
/// line ends aside) and at most 10% at the other.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static str> {
    let sample = &bytes[..bytes.len().min(4096)];
    let units = sample.len() / 2;
    let control = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
    let (mut even, mut odd) = (0, 0);
    for unit in sample.chunks_exact(2) {
        even += usize::from(control(unit[0]));
        odd += usize::from(control(unit[1]));
    }
    let many = |n: usize| units > 0 && n * 10 >= units * 3;
    let few = |n: usize| n * 10 <= units;
    if many(odd) && few(even) {
        Some("UTF-16LE")
    } else if many(even) && few(odd) {
        Some("UTF-16BE")
    } else {
        None
    }
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
            Source::Ready(Box::new(std::io::Cursor::new(text.to_vec()))),
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

    fn pieces(text: &str, max_line: usize) -> Vec<String> {
        let mut reader = ChunkReader::from_text(text.to_string(), "t".to_string());
        reader.max_line = max_line;
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            out.push(chunk);
        }
        out
    }

    #[test]
    fn long_lines_are_cut_at_a_sentence_end_then_a_space() {
        // Arabic letters take two bytes: the first line is 43 bytes.
        assert_eq!(
            pieces("قال هذا. ثم ذهب إلى البيت\nسطر\n", 18),
            ["قال هذا.\n", "ثم ذهب\n", "إلى البيت\nسطر\n"]
        );
        assert_eq!(pieces("aa bb cc dd ee", 9), ["aa bb cc\n", "dd ee"]);
        assert_eq!(pieces("aaa\tbbbbbbb", 9), ["aaa\n", "bbbbbbb"]);
        // A line of the limit is whole, with its line end.
        assert_eq!(pieces("aaaa bbbb\ncc", 9), ["aaaa bbbb\ncc"]);
        assert_eq!(pieces("aaaa bbbb\r\ncc", 9), ["aaaa bbbb\ncc"]);
        assert_eq!(pieces("aaaa bbbbc\n", 9), ["aaaa\n", "bbbbc\n"]);
        assert_eq!(pieces("aaaa bbbbc", 9), ["aaaa\n", "bbbbc"]);
    }

    #[test]
    fn long_words_are_cut_between_characters() {
        // Two-byte letters, an odd limit: the cut backs up to the start of a letter.
        let word = "كلمة".repeat(3);
        let parts = pieces(&word, 5);
        assert_eq!(parts.concat().replace('\n', ""), word);
        for part in &parts[..parts.len() - 1] {
            assert!(part.len() <= 5 && part.ends_with('\n'), "{part:?}");
        }
        // Four-byte characters.
        assert_eq!(pieces("😀😀😀", 5), ["😀\n", "😀\n", "😀"]);
    }

    #[test]
    fn old_mac_line_ends_cut_a_long_line_where_they_are() {
        assert_eq!(pieces("aa\rbb\rcc dd", 8), ["aa\nbb\n", "cc dd"]);
        assert_eq!(pieces("aa\rbbbbbb", 2), ["aa\n", "bb\n", "bb\n", "bb"]);
        // A CRLF pair is never split, nor taken for a lone CR.
        for max in 1..6 {
            let parts = pieces("ab\r\ncd efgh\r\n\r\nij", max);
            let text = parts.concat();
            assert_eq!(text.replace(['\n', ' '], ""), "abcdefghij", "{parts:?}");
            // The one blank line of the input.
            assert_eq!(text.matches("\n\n").count(), 1, "{parts:?}");
            assert!(!text.contains("\n\n\n"), "{parts:?}");
        }
    }

    #[test]
    fn bad_bytes_after_cuts_are_reported_at_their_offset_in_the_file() {
        // Two added line breaks before the bad byte must not shift its offset.
        let mut text = "كلمة".repeat(4).into_bytes();
        text.push(0xE1);
        let mut reader = ChunkReader::new(
            Source::Ready(Box::new(std::io::Cursor::new(text))),
            "t".into(),
        );
        reader.max_line = 7;
        let err = loop {
            match reader.next_chunk() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("byte 0xE1 at byte offset 32"), "{err}");
    }

    #[test]
    fn whitespace_only_input_is_an_error_at_its_end() {
        assert!(chunks(b"  \n\n \n", 2).is_err());
        assert!(chunks(b"", 2).is_err());
        assert_eq!(chunks(b"\n\nx\n", 1).unwrap().concat(), "\n\nx\n");
    }
}
