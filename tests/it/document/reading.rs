//! Reading inputs: decoding errors, UTF-16 without a byte-order mark, lines of any length read
//! in pieces, and line ends.

use std::path::{Path, PathBuf};

use tarjama::document::{
    decode_input, read_input, ChunkReader, Document, CHUNK_BYTES, MAX_LINE_BYTES,
};

#[test]
fn read_input_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let check = |result: tarjama::Result<String>, expect: &[&str]| {
        let message = result.expect_err("should fail").to_string();
        assert!(!message.contains('\n'), "{message}");
        for part in expect {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    };
    let missing = dir.path().join("missing.txt");
    check(
        read_input(Some(&missing)),
        &["cannot read", "missing.txt", "no such file"],
    );
    check(read_input(Some(dir.path())), &["is a directory"]);
    let cp1256 = dir.path().join("cp1256.txt");
    std::fs::write(&cp1256, b"abc \xC7\xE1\xDA\xC7\xE1\xE3").unwrap();
    check(
        read_input(Some(&cp1256)),
        &["not UTF-8", "byte offset 4", "iconv -f cp1256 -t utf-8"],
    );
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, " \n\u{200F}\r\n\t").unwrap();
    check(read_input(Some(&empty)), &["empty"]);
    check(decode_input(vec![0xFF, 0xFE, b'a', 0], "x"), &["UTF-16"]);
}

/// UTF-16 without a byte-order mark: Arabic in UTF-16 is all bytes below 0x80 (`م` is
/// `0x45 0x06` in UTF-16LE), so it passed as UTF-8 and was translated as control characters
/// and Latin letters.
#[test]
fn utf16_without_byte_order_mark_is_reported() {
    let text = "قال الرئيس إن الاجتماع سيعقد غدا.\nThe meeting is tomorrow.\n";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let latin_le: Vec<u8> = "2024 news\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for (bytes, expect) in [
        (&le, "utf-16le"),
        (&be, "utf-16be"),
        (&latin_le, "utf-16le"),
    ] {
        let message = decode_input(bytes.clone(), "x.txt")
            .unwrap_err()
            .to_string();
        assert!(message.contains("UTF-16"), "{message}");
        assert!(
            message.contains(&format!("iconv -f {expect} -t utf-8")),
            "{message}"
        );
        // The translate and summarize commands read in chunks.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, bytes).unwrap();
        let mut reader = ChunkReader::open(Some(&path)).unwrap().with_chunk_bytes(8);
        let message = reader.next_chunk().unwrap_err().to_string();
        assert!(message.contains("UTF-16"), "{message}");
    }
    // UTF-8 text with the odd control character is still UTF-8.
    let utf8 = "قال\u{7}الرئيس\u{0}: نعم\tلا\n".repeat(3);
    assert_eq!(decode_input(utf8.clone().into_bytes(), "x").unwrap(), utf8);
}

/// Writes a 50 MB input of one line: Arabic words with `separator` between them.
fn one_line_file(dir: &Path, separator: &str) -> (PathBuf, Vec<u8>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex/ar.txt"),
    )
    .unwrap();
    let words: Vec<&str> = text
        .split(|c: char| !('\u{0621}'..='\u{064A}').contains(&c))
        .filter(|w| !w.is_empty())
        .collect();
    let mut line = Vec::with_capacity(51 << 20);
    for word in words.iter().cycle() {
        if line.len() >= 50 << 20 {
            break;
        }
        if !line.is_empty() {
            line.extend_from_slice(separator.as_bytes());
        }
        line.extend_from_slice(word.as_bytes());
    }
    let path = dir.join("line.txt");
    std::fs::write(&path, &line).unwrap();
    (path, line)
}

/// A 50 MB input without a newline is read in pieces no longer than a paragraph can be, at a
/// space when there is one and between two characters when there is none; every piece ends a
/// line, and nothing else changes. Before, the whole line was one chunk and one "sentence".
#[test]
fn a_50_mb_line_is_read_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    for separator in [" ", ""] {
        let (path, line) = one_line_file(dir.path(), separator);
        let mut reader = ChunkReader::open(Some(&path)).unwrap();
        let mut at = 0;
        let mut pieces = 0;
        while let Some(chunk) = reader.next_chunk().unwrap() {
            assert!(
                chunk.len() <= MAX_LINE_BYTES + 1,
                "a chunk of {} bytes",
                chunk.len()
            );
            let doc = Document::parse(&chunk);
            for paragraph in &doc.paragraphs {
                assert!(paragraph.source().len() <= MAX_LINE_BYTES);
                assert!(paragraph
                    .sentences()
                    .iter()
                    .all(|s| s.len() <= MAX_LINE_BYTES));
                pieces += 1;
            }
            // The input again: a line break for a space, or one added between two characters.
            let mut rest = chunk.as_bytes();
            if separator.is_empty() {
                rest = rest.strip_suffix(b"\n").unwrap_or(rest);
            }
            let end = at + rest.len();
            let expected = &line[at..end];
            assert!(
                rest.iter()
                    .zip(expected)
                    .all(|(&r, &e)| r == e || (e == b' ' && r == b'\n')),
                "the text changed near byte {at}"
            );
            at = end;
        }
        assert_eq!(at, line.len(), "text lost");
        assert!(pieces >= (50 << 20) / MAX_LINE_BYTES, "{pieces} pieces");
    }
}

/// Old Mac line ends (a lone CR) are line ends while reading too, not only after.
#[test]
fn cr_line_ends_are_read_a_line_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cr.txt");
    let line = "قال الرئيس إن الاجتماع سيعقد غدا.\r";
    std::fs::write(&path, line.repeat((4 << 20) / line.len())).unwrap();
    let mut reader = ChunkReader::open(Some(&path)).unwrap();
    let mut lines = 0;
    while let Some(chunk) = reader.next_chunk().unwrap() {
        assert!(
            chunk.len() <= CHUNK_BYTES + MAX_LINE_BYTES,
            "a chunk of {}",
            chunk.len()
        );
        assert!(chunk.ends_with('\n'));
        lines += chunk.lines().count();
    }
    assert_eq!(lines, (4 << 20) / line.len());
}

#[test]
fn read_input_strips_bom_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.txt");
    std::fs::write(&path, "\u{FEFF}سطر أول\r\n\r\nسطر ثان\r\n").unwrap();
    assert_eq!(read_input(Some(&path)).unwrap(), "سطر أول\n\nسطر ثان\n");
}
