//! SentencePiece models (`.spm`/`.model` files), encoding and decoding as the sentencepiece
//! library does (sentencepiece_processor.cc), for unigram and BPE models.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

mod encode;
mod normalizer;
mod proto;
pub(super) mod t5_spiece;
mod trie;

pub(super) use normalizer::SPACE_SYMBOL;

use crate::{Error, Result};
use encode::Vocab;
use normalizer::Normalizer;
use proto::{model_type, piece_type, ModelProto, NormalizerSpec};
use trie::Trie;

/// Bytes of a model file. Real ones are under 5 MB (NLLB's, mT5's and Gemma's, with 256k pieces
/// and a normalization table); the file is read whole.
const MAX_MODEL_BYTES: u64 = 1 << 26;

/// Pieces of a model. The largest real vocabularies have about 256k (NLLB, mT5, Gemma). Each
/// piece costs about 60 bytes once decoded, plus its share of the maps and the trie, whatever
/// its size in the file: 2 bytes for an empty one, so the count is capped before decoding.
const MAX_PIECES: usize = 1 << 20;

/// What SentencePiece prints for `<unk>` when decoding, unless the model says otherwise.
const DEFAULT_UNK_SURFACE: &str = " \u{2047} ";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Algorithm {
    Unigram { min_score: f32, max_score: f32 },
    Bpe,
}

#[derive(Debug, Clone)]
pub struct SentencePiece {
    pieces: Vec<String>,
    scores: Vec<f32>,
    kinds: Vec<i32>,
    /// NORMAL, USER_DEFINED and UNUSED pieces (spm's `pieces_`).
    normal: HashMap<String, u32>,
    /// UNKNOWN, CONTROL and BYTE pieces (spm's `reserved_id_map_`), looked up first.
    reserved: HashMap<String, u32>,
    trie: Trie,
    user_defined: Trie,
    unk_id: u32,
    algorithm: Algorithm,
    byte_fallback: bool,
    normalizer: Normalizer,
    denormalizer: Option<Normalizer>,
    unk_surface: String,
    normalizer_name: String,
}

impl SentencePiece {
    /// Loads a serialized `ModelProto`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let unusable = |why: String| {
            Error::model(format!(
                "{} is not a usable SentencePiece model: {why}. Re-download the model files",
                path.display()
            ))
        };
        let unreadable = |e: std::io::Error| {
            Error::model(format!(
                "cannot read SentencePiece model {}: {e}. Check the path, or re-download the model",
                path.display()
            ))
        };
        // The size is checked before the file is read whole.
        let len = std::fs::metadata(path).map_err(unreadable)?.len();
        if len > MAX_MODEL_BYTES {
            return Err(unusable(too_large(len)));
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        Self::from_bytes(&bytes).map_err(unusable)
    }

    /// Parses a serialized `ModelProto`; the error says what is wrong with it.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        if bytes.len() as u64 > MAX_MODEL_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
        let count = count_pieces(bytes)?;
        if count > MAX_PIECES {
            return Err(format!(
                "it has {count} pieces, more than the {MAX_PIECES} any real model comes near"
            ));
        }
        let proto =
            ModelProto::decode(bytes).map_err(|e| format!("it does not parse as one ({e})"))?;
        if proto.pieces.is_empty() {
            return Err("it has no pieces".into());
        }
        let trainer = proto.trainer_spec.clone().unwrap_or_default();
        let byte_fallback = trainer.byte_fallback.unwrap_or(false);

        let n = proto.pieces.len();
        let (mut pieces, mut scores, mut kinds) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut normal, mut reserved) = (HashMap::new(), HashMap::new());
        let (mut trie, mut user_defined) = (Trie::new(), Trie::new());
        let mut unk_id = None;
        let mut bytes_found = [false; 256];
        for (id, p) in proto.pieces.iter().enumerate() {
            let piece = p.piece.clone().unwrap_or_default();
            let kind = p.kind();
            if piece.is_empty() {
                return Err(format!("piece {id} is empty"));
            }
            let is_normal = matches!(
                kind,
                piece_type::NORMAL | piece_type::USER_DEFINED | piece_type::UNUSED
            );
            let map = if is_normal {
                &mut normal
            } else {
                &mut reserved
            };
            if map.insert(piece.clone(), id as u32).is_some() {
                return Err(format!("piece {piece:?} is defined twice"));
            }
            if is_normal {
                trie.insert(piece.as_bytes(), id as u32);
            }
            match kind {
                piece_type::USER_DEFINED => user_defined.insert(piece.as_bytes(), id as u32),
                piece_type::UNKNOWN if unk_id.is_some() => {
                    return Err("it defines two unknown pieces".into())
                }
                piece_type::UNKNOWN => unk_id = Some(id as u32),
                piece_type::BYTE => match piece_to_byte(&piece) {
                    Some(b) if byte_fallback => bytes_found[b as usize] = true,
                    _ => return Err(format!("byte piece {piece:?} is invalid")),
                },
                _ => {}
            }
            pieces.push(piece);
            scores.push(p.score.unwrap_or(0.0));
            kinds.push(kind);
        }
        let unk_id = unk_id.ok_or("it has no unknown piece (<unk>)")?;
        if byte_fallback && bytes_found.contains(&false) {
            return Err("it uses byte fallback but lacks some of the 256 byte pieces".into());
        }

        let algorithm = match trainer.model_type.unwrap_or(model_type::UNIGRAM) {
            model_type::UNIGRAM => {
                let (min_score, max_score) = encode::score_range(&scores, &kinds);
                Algorithm::Unigram {
                    min_score,
                    max_score,
                }
            }
            model_type::BPE => Algorithm::Bpe,
            other => {
                let name = match other {
                    model_type::WORD => "word",
                    model_type::CHAR => "char",
                    _ => "unknown",
                };
                return Err(format!(
                    "its model type {other} ({name}) is not supported, only unigram and BPE are"
                ));
            }
        };

        let spec = proto.normalizer_spec.clone().unwrap_or_default();
        let suffix = trainer.treat_whitespace_as_suffix.unwrap_or(false);
        let normalizer = Normalizer::new(&spec, suffix, user_defined.clone())?;
        let denormalizer = match &proto.denormalizer_spec {
            Some(d)
                if d.precompiled_charsmap
                    .as_ref()
                    .is_some_and(|m| !m.is_empty()) =>
            {
                Some(Normalizer::new(d, false, Trie::new())?)
            }
            _ => None,
        };
        Ok(SentencePiece {
            pieces,
            scores,
            kinds,
            normal,
            reserved,
            trie,
            user_defined,
            unk_id,
            algorithm,
            byte_fallback,
            normalizer,
            denormalizer,
            unk_surface: trainer
                .unk_surface
                .unwrap_or_else(|| DEFAULT_UNK_SURFACE.to_string()),
            normalizer_name: spec_name(&spec),
        })
    }

    /// The number of pieces in the model.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// The name of the model's normalization rules (`nmt_nfkc`, `identity`, …).
    pub fn normalizer_name(&self) -> &str {
        &self.normalizer_name
    }

    /// Whether `piece` is one of the model's pieces (of any type).
    pub fn contains(&self, piece: &str) -> bool {
        self.reserved.contains_key(piece) || self.normal.contains_key(piece)
    }

    /// The id of `piece`, or the unknown id when the model lacks it (as spm's `PieceToId`).
    pub fn piece_to_id(&self, piece: &str) -> u32 {
        self.reserved
            .get(piece)
            .or_else(|| self.normal.get(piece))
            .copied()
            .unwrap_or(self.unk_id)
    }

    pub fn id_to_piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    /// `text` after the model's normalization and whitespace rules, as segmentation sees it.
    pub fn normalize(&self, text: &str) -> String {
        self.normalizer.normalize(text)
    }

    /// The pieces of `text` (spm's `EncodeAsPieces`).
    pub fn encode_pieces(&self, text: &str) -> Vec<String> {
        self.encode(text)
            .into_iter()
            .map(|(piece, _)| piece)
            .collect()
    }

    /// The ids of `text` (spm's `EncodeAsIds`).
    pub fn encode_ids(&self, text: &str) -> Vec<u32> {
        self.encode(text).into_iter().map(|(_, id)| id).collect()
    }

    fn encode(&self, text: &str) -> Vec<(String, u32)> {
        let normalized = self.normalizer.normalize(text);
        let piece_to_id = |piece: &str| self.piece_to_id(piece);
        let normal_id = |piece: &str| self.normal.get(piece).copied();
        let vocab = Vocab {
            scores: &self.scores,
            kinds: &self.kinds,
            trie: &self.trie,
            user_defined: &self.user_defined,
            unk_id: self.unk_id,
            piece_to_id: &piece_to_id,
            normal_id: &normal_id,
        };
        let spans = match self.algorithm {
            Algorithm::Unigram {
                min_score,
                max_score,
            } => encode::unigram(&normalized, &vocab, min_score, max_score),
            Algorithm::Bpe => encode::bpe(&normalized, &vocab),
        };

        // As spm's PopulateSentencePieceText: runs of unknown pieces become one piece, or with
        // byte fallback each unknown piece becomes its UTF-8 bytes.
        let mut out: Vec<(String, u32)> = Vec::with_capacity(spans.len());
        let mut prev_unknown = false;
        for (start, end, id) in spans {
            let piece = &normalized[start..end];
            let unknown = self.kind(id) == piece_type::UNKNOWN;
            if unknown && self.byte_fallback {
                for byte in piece.bytes() {
                    let byte_piece = format!("<0x{byte:02X}>");
                    let byte_id = self.piece_to_id(&byte_piece);
                    out.push((byte_piece, byte_id));
                }
            } else if unknown && prev_unknown {
                if let Some(last) = out.last_mut() {
                    last.0.push_str(piece);
                }
            } else {
                out.push((piece.to_string(), id));
            }
            prev_unknown = unknown;
        }
        out
    }

    fn kind(&self, id: u32) -> i32 {
        self.kinds
            .get(id as usize)
            .copied()
            .unwrap_or(piece_type::NORMAL)
    }

    /// Joins pieces back into text (spm's `DecodePieces`): U+2581 becomes a space and the first
    /// one is dropped, control pieces vanish, `<unk>` reads " ⁇ ", byte pieces are reassembled
    /// into UTF-8, and pieces the model lacks are copied verbatim.
    pub fn decode_pieces(&self, pieces: &[&str]) -> String {
        let mut text = String::new();
        let mut bytes = Vec::new();
        let mut is_bos_ws = true;
        let mut bos_ws_seen = false;
        for &piece in pieces {
            let id = self.piece_to_id(piece);
            if self.kind(id) == piece_type::BYTE {
                bytes.push(piece_to_byte(piece).unwrap_or(0));
                continue;
            }
            flush_bytes(&mut bytes, &mut text);
            if bos_ws_seen || !text.is_empty() {
                is_bos_ws = false;
            }
            bos_ws_seen = self.decode_piece(piece, id, is_bos_ws, &mut text);
        }
        flush_bytes(&mut bytes, &mut text);
        match &self.denormalizer {
            Some(d) => d.normalize(&text),
            None => text,
        }
    }

    /// Appends one decoded piece; returns whether it consumed the sentence's leading space.
    fn decode_piece(&self, piece: &str, id: u32, is_bos_ws: bool, text: &mut String) -> bool {
        match self.kind(id) {
            piece_type::CONTROL => return false,
            piece_type::UNKNOWN => {
                if self.pieces[id as usize] == piece {
                    text.push_str(&self.unk_surface);
                } else {
                    text.push_str(piece);
                }
                return false;
            }
            _ => {}
        }
        let n = &self.normalizer;
        let mut rest = piece;
        let mut has_bos_ws = false;
        if is_bos_ws && (n.add_dummy_prefix() || n.remove_extra_whitespaces()) {
            if let Some(stripped) = piece.strip_prefix(SPACE_SYMBOL) {
                rest = stripped;
                has_bos_ws = true;
            }
            // With extra whitespace removed, every leading space of the text is dropped.
            if n.remove_extra_whitespaces() {
                has_bos_ws = false;
            }
        }
        text.push_str(&rest.replace(SPACE_SYMBOL, " "));
        has_bos_ws
    }
}

/// Appends collected byte pieces as UTF-8, each invalid byte as U+FFFD (as spm does).
fn flush_bytes(bytes: &mut Vec<u8>, text: &mut String) {
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for _ in chunk.invalid() {
            text.push('\u{fffd}');
        }
    }
    bytes.clear();
}

fn too_large(len: u64) -> String {
    format!("it is {len} bytes long, more than the {MAX_MODEL_BYTES} any real model comes near")
}

/// The pieces a serialized `ModelProto` holds (its top-level field 1), counted without decoding
/// them, with prost's own wire-format primitives (public for prost's generated code).
fn count_pieces(bytes: &[u8]) -> std::result::Result<usize, String> {
    use prost::encoding::{decode_key, skip_field, DecodeContext};
    let mut buf = bytes;
    let mut count = 0;
    while !buf.is_empty() {
        let (tag, wire_type) =
            decode_key(&mut buf).map_err(|e| format!("it does not parse as one ({e})"))?;
        if tag == 1 {
            count += 1;
        }
        skip_field(wire_type, tag, &mut buf, DecodeContext::default())
            .map_err(|e| format!("it does not parse as one ({e})"))?;
    }
    Ok(count)
}

/// `<0x41>` → 0x41; only the exact uppercase two-digit form spm writes counts.
fn piece_to_byte(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    let valid = hex.len() == 2 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'));
    valid.then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

fn spec_name(spec: &NormalizerSpec) -> String {
    spec.name.clone().unwrap_or_else(|| "identity".to_string())
}
