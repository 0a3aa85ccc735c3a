//! SentencePiece's text normalizer (normalizer.cc): the `precompiled_charsmap` rewrite rules,
//! then its whitespace rules (drop leading, trailing and repeated spaces, add the dummy prefix,
//! escape spaces as U+2581).
//!
//! `tokenizers`' `Precompiled` normalizer is not used: it looks rules up per grapheme cluster and
//! takes the shortest matching rule, where SentencePiece scans the raw bytes and takes the
//! longest one, so the two disagree on sequences the charsmap rewrites as a unit.

use super::proto::NormalizerSpec;
use super::trie::Trie;

pub(crate) const SPACE_SYMBOL: &str = "\u{2581}";

/// The rewrite rules of a `precompiled_charsmap`: `<u32 trie size><darts-clone double array>
/// <NUL-terminated replacements>`, the double array mapping UTF-8 byte sequences to offsets into
/// the replacements.
#[derive(Debug, Clone)]
struct CharsMap {
    units: Vec<u32>,
    replacements: Vec<u8>,
}

impl CharsMap {
    fn parse(blob: &[u8]) -> Result<Self, String> {
        let broken = || "its precompiled_charsmap (normalization rules) is truncated".to_string();
        let (size, rest) = blob.split_first_chunk::<4>().ok_or_else(broken)?;
        let size = u32::from_le_bytes(*size) as usize;
        if size > rest.len() {
            return Err(broken());
        }
        let (trie, replacements) = rest.split_at(size);
        let units = trie
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(CharsMap {
            units,
            replacements: replacements.to_vec(),
        })
    }

    /// The longest rule matching a prefix of `text`: (bytes it covers, replacement).
    fn longest_match<'a>(&'a self, text: &str) -> Option<(usize, &'a str)> {
        // darts-clone's unit layout: label in the low byte (bit 31 marks value units),
        // has-leaf in bit 8, and a relative offset to the children in the upper bits.
        let has_leaf = |unit: u32| (unit >> 8) & 1 == 1;
        let value = |unit: u32| (unit & 0x7fff_ffff) as usize;
        let label = |unit: u32| unit & 0x8000_00ff;
        let offset = |unit: u32| ((unit >> 10) << ((unit & (1 << 9)) >> 6)) as usize;

        let mut best = None;
        let mut pos = offset(*self.units.first()?);
        for (i, &byte) in text.as_bytes().iter().enumerate() {
            pos ^= byte as usize;
            let Some(&unit) = self.units.get(pos) else {
                break;
            };
            if label(unit) != byte as u32 {
                break;
            }
            pos ^= offset(unit);
            if has_leaf(unit) {
                match self.units.get(pos) {
                    Some(&leaf) => best = Some((i + 1, value(leaf))),
                    None => break,
                }
            }
        }
        let (len, at) = best?;
        if !text.is_char_boundary(len) {
            return None;
        }
        let tail = self.replacements.get(at..)?;
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Some((len, std::str::from_utf8(&tail[..end]).ok()?))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Normalizer {
    charsmap: Option<CharsMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    treat_whitespace_as_suffix: bool,
    /// User-defined symbols pass through unnormalized (spm's PrefixMatcher).
    user_defined: Trie,
}

impl Normalizer {
    pub fn new(
        spec: &NormalizerSpec,
        treat_whitespace_as_suffix: bool,
        user_defined: Trie,
    ) -> Result<Self, String> {
        let charsmap = match spec.precompiled_charsmap.as_deref() {
            Some(blob) if !blob.is_empty() => Some(CharsMap::parse(blob)?),
            _ => None,
        };
        Ok(Normalizer {
            charsmap,
            add_dummy_prefix: spec.add_dummy_prefix.unwrap_or(true),
            remove_extra_whitespaces: spec.remove_extra_whitespaces.unwrap_or(true),
            escape_whitespaces: spec.escape_whitespaces.unwrap_or(true),
            treat_whitespace_as_suffix,
            user_defined,
        })
    }

    pub fn add_dummy_prefix(&self) -> bool {
        self.add_dummy_prefix
    }

    pub fn remove_extra_whitespaces(&self) -> bool {
        self.remove_extra_whitespaces
    }

    /// The normalized form of the first unit of `input` and the bytes of `input` it covers.
    fn prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        if let Some(len) = self.user_defined.longest_prefix(input.as_bytes()) {
            return (&input[..len], len);
        }
        if let Some((len, replacement)) =
            self.charsmap.as_ref().and_then(|m| m.longest_match(input))
        {
            return (replacement, len);
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    pub fn normalize(&self, text: &str) -> String {
        let mut input = text;
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (piece, len) = self.prefix(input);
                if piece != " " {
                    break;
                }
                input = &input[len..];
            }
        }
        if input.is_empty() {
            return String::new();
        }

        let space = if self.escape_whitespaces {
            SPACE_SYMBOL
        } else {
            " "
        };
        let mut out = String::with_capacity(input.len() * 3);
        if !self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            out.push_str(space);
        }
        let mut is_prev_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut piece, len) = self.prefix(input);
            if is_prev_space {
                piece = piece.trim_start_matches(' ');
            }
            if !piece.is_empty() {
                if self.escape_whitespaces {
                    out.push_str(&piece.replace(' ', SPACE_SYMBOL));
                } else {
                    out.push_str(piece);
                }
                is_prev_space = piece.ends_with(' ');
            }
            input = &input[len..];
            if !self.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        if self.treat_whitespace_as_suffix && self.add_dummy_prefix {
            out.push_str(space);
        }
        out
    }
}
