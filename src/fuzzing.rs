//! The bodies of the fuzz targets in `fuzz/`, kept in the library so that
//! `tests/fuzz_regressions.rs` replays the inputs the fuzzers found through exactly the same
//! code. Each takes arbitrary bytes, must not panic, and asserts the invariants its code keeps
//! by design; a failed assertion is a bug, as a panic is.

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file;

use crate::document::{self, Document, Paragraph};
use crate::models::gguf::{check_complete, validate_gguf};
use crate::tokenizer::{GgufTokenizer, MarianTokenizer, SentencePiece};

/// Text with Arabic, Latin, digits, spaces to escape and a spelled byte piece, for tokenizers
/// built from fuzzed files.
const SAMPLE: &str = "قال الوزير: hello  world 2024! \u{2581}<0x41> ١٢";

fn no_space(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The user's input path: bytes decoded as `read_input` does, parsed, stripped of site
/// furniture, segmented, reassembled, and packed into windows as the summarizer does.
pub fn document(data: &[u8]) {
    // Taken from the input, so the fuzzer also varies the limits.
    let max_chars = 1 + usize::from(data.first().copied().unwrap_or(0) % 64);
    let Ok(text) = document::decode_input(data.to_vec(), "fuzz input") else {
        return;
    };
    let mut doc = Document::parse(&text);
    let lines = text.strip_suffix('\n').unwrap_or(&text).split('\n').count();
    assert_eq!(doc.paragraphs.len(), lines, "one paragraph per line");
    for paragraph in &doc.paragraphs {
        check_paragraph(paragraph, max_chars);
    }
    check_reassembly(&doc);

    let non_blank = |doc: &Document| {
        let blank = doc.paragraphs.iter().filter(|p| **p == Paragraph::Blank);
        doc.paragraphs.len() - blank.count()
    };
    let (before, count_before) = (non_blank(&doc), doc.paragraphs.len());
    let removed = doc.strip_boilerplate();
    assert_eq!(
        non_blank(&doc) + removed,
        before,
        "only non-blank removals count"
    );
    assert!(doc.paragraphs.len() <= count_before);
    check_reassembly(&doc);

    let chars = |s: &str| s.chars().count();
    let paragraphs: Vec<String> = doc
        .paragraphs
        .iter()
        .map(|p| document::normalize_for_model(p.source()))
        .filter(|p| !p.is_empty())
        .collect();
    let fits = |s: &str| Ok::<_, ()>(chars(s) <= max_chars);
    let cut = |s: &str| document::split_long(s, max_chars, &chars);
    let windows = document::pack_windows(&paragraphs, "\n\n", &fits, &cut).unwrap();
    assert_eq!(
        no_space(&windows.concat()),
        no_space(&paragraphs.concat()),
        "packing loses no text"
    );
}

fn check_paragraph(paragraph: &Paragraph, max_chars: usize) {
    let source = paragraph.source();
    assert!(!source.contains('\n'));
    let normalized = document::normalize_for_model(source);
    assert_eq!(
        document::normalize_for_model(&normalized),
        normalized,
        "normalizing twice changes nothing"
    );
    let Paragraph::Text { sentences, .. } = paragraph else {
        return;
    };
    assert!(!sentences.is_empty(), "an Arabic line has a sentence");
    for sentence in sentences {
        assert!(!sentence.is_empty() && sentence.trim() == sentence && !sentence.contains('\n'));
    }
    assert_eq!(
        no_space(&sentences.concat()),
        no_space(&normalized),
        "segmentation loses no text"
    );
    let chars = |s: &str| s.chars().count();
    for sentence in sentences {
        let parts = document::split_long(sentence, max_chars, &chars);
        assert!(parts.iter().all(|p| !p.is_empty()));
        assert_eq!(
            no_space(&parts.concat()),
            no_space(sentence),
            "splitting loses no text"
        );
    }
}

/// Reassembling the sentences as their own translations keeps every line in its place.
fn check_reassembly(doc: &Document) {
    let sentences: Vec<String> = doc.sentences().map(str::to_string).collect();
    assert_eq!(sentences.len(), doc.sentence_count());
    let out = doc.reassemble(&sentences);
    if !doc.paragraphs.is_empty() {
        let lines = doc.paragraphs.len() + usize::from(doc.trailing_newline);
        assert_eq!(out.split('\n').count(), lines, "one line per paragraph");
    }
}

/// The fixture Marian tokenizer, loaded once per process.
fn marian() -> &'static MarianTokenizer {
    static TOKENIZER: OnceLock<MarianTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny");
        MarianTokenizer::from_dir(&dir).expect("the marian-tiny fixture loads")
    })
}

/// An even first byte: the rest is a SentencePiece model file, which must load or fail with an
/// error, and if it loads, encode and decode. An odd one: the rest is text for the fixture
/// Marian tokenizer, and also a list of ids to decode.
pub fn sentencepiece(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(spm) = SentencePiece::from_bytes(rest) else {
            return;
        };
        let pieces = spm.encode_pieces(SAMPLE);
        let ids = spm.encode_ids(SAMPLE);
        assert_eq!(pieces.len(), ids.len());
        assert!(ids.iter().all(|&id| (id as usize) < spm.len()));
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        spm.decode_pieces(&refs);
        return;
    }
    let tok = marian();
    let text = String::from_utf8_lossy(rest);
    let ids = tok.encode(&text);
    assert_eq!(ids.last(), Some(&tok.eos_id()), "</s> ends every encoding");
    assert_eq!(tok.count_tokens(&text), ids.len());
    tok.decode(&ids);
    tok.normalize(&text);
    tok.source_spm().encode_ids(&text);
    let raw: Vec<u32> = rest
        .chunks(2)
        .map(|c| u32::from(u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .collect();
    tok.decode(&raw);
    tok.decode_keeping_special(&raw);
}

/// A GGUF file's header, metadata and tensor index: [`validate_gguf`] must accept or reject it;
/// what it accepts, candle must read, and the size checks and the tokenizer builder must handle
/// without panicking.
pub fn gguf_metadata(data: &[u8]) {
    if validate_gguf(data, data.len() as u64).is_err() {
        return;
    }
    // candle's own limits (2^30 bytes or elements) are beyond any input this small, so every
    // file the validator accepts is one candle reads.
    let content = gguf_file::Content::read(&mut Cursor::new(data))
        .unwrap_or_else(|e| panic!("validate_gguf accepted a file candle rejects: {e}"));
    let _ = check_complete(&content, &mut Cursor::new(data), Path::new("fuzz.gguf"));
    let Ok(tok) = GgufTokenizer::from_content(&content) else {
        return;
    };
    if let Ok(ids) = tok.encode(SAMPLE, true) {
        let _ = tok.decode(&ids);
        let _ = tok.decode_skip_special(&ids);
    }
}
