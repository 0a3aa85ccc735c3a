//! A bounds check of a GGUF file's header, metadata and tensor index, run before candle parses
//! them.
//!
//! candle's `gguf_file::Content::read` sizes its buffers from the file's own length fields. In
//! candle 0.11 those are capped at 2^30 and checked against the bytes left, but a file can still
//! make it divide by zero (`general.alignment = 0`), and nothing bounds the memory its metadata
//! expands to (each one-byte array element becomes a 32-byte `Value`) or the tensor shapes it
//! declares, which later size arithmetic multiplies. This walk reads the same layout without
//! keeping any of it, so every count, length and type is checked against what the file can hold
//! before anything is allocated from it; its error names the first problem in a few words.

use std::io::Read;

/// GGUF's magic number, `GGUF` read as a little-endian u32.
const MAGIC: u32 = u32::from_le_bytes(*b"GGUF");

/// GGML_MAX_DIMS in ggml.h: no tensor has more dimensions.
const MAX_DIMS: u32 = 4;

/// An array of arrays is as deep as metadata goes in practice (llama.cpp reads none); deeper
/// nesting only serves to exhaust the reader's stack.
const MAX_ARRAY_DEPTH: usize = 2;

/// Values in all metadata arrays together. The largest real vocabularies (Gemma 3: 262k tokens,
/// with scores, types and merges) hold about a million; each value costs candle 32 bytes, so this
/// caps the metadata at 512 MiB whatever the file declares.
const MAX_METADATA_VALUES: u64 = 1 << 24;

/// Metadata entries. Real files have a few dozen (the vocabulary is a handful of array
/// entries); candle keeps each in a hash map at a cost of 100 to 200 bytes, so a file of tiny
/// entries could otherwise make the reader hold 15 times its own size.
const MAX_METADATA_ENTRIES: u64 = 1 << 16;

/// Tensors. The most in a published model are about 1,100 (Llama 3.1 405B) to 2,000 (mixtures of
/// experts stored one expert per tensor); candle keeps an entry of about 150 bytes for each.
const MAX_TENSORS: u64 = 1 << 16;

/// Elements of one tensor. ggml counts them in an `int64_t`; the largest real tensors (a
/// 256k-vocabulary embedding) have a few billion.
const MAX_TENSOR_ELEMENTS: u64 = 1 << 48;

/// candle's `ValueType` codes, in the GGUF specification's order.
#[derive(Clone, Copy, PartialEq)]
enum Type {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl Type {
    fn from_code(code: u32) -> Option<Type> {
        use Type::*;
        [
            U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
        ]
        .get(code as usize)
        .copied()
    }

    /// Bytes of a fixed-size value; `None` for strings and arrays.
    fn fixed_size(self) -> Option<u64> {
        use Type::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The fewest bytes one value can take: its length prefix for a string, and type plus length
    /// for an array.
    fn min_size(self, width: u64) -> u64 {
        match self {
            Type::String => width,
            Type::Array => 4 + width,
            fixed => fixed.fixed_size().unwrap_or(width),
        }
    }
}

/// ggml types candle reads, with (elements per block, bytes per block); any other type code makes
/// candle fail, so it is rejected here with a clearer message.
fn ggml_block(code: u32) -> Option<(u64, u64)> {
    Some(match code {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2K
        11 => (256, 110), // Q3K
        12 => (256, 144), // Q4K
        13 => (256, 176), // Q5K
        14 => (256, 210), // Q6K
        15 => (256, 292), // Q8K
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

/// The file's layout, as far as this check needs it.
struct Walk<R> {
    reader: R,
    /// Bytes read so far.
    pos: u64,
    /// Bytes in the file (from where the walk started).
    len: u64,
    /// GGUF v1 has 32-bit lengths, v2 and v3 64-bit ones.
    width: u64,
    metadata_values: u64,
    /// `general.alignment` as candle will read it (the last one where the key repeats).
    alignment: Option<u64>,
}

type Check<T = ()> = Result<T, String>;

impl<R: Read> Walk<R> {
    fn left(&self) -> u64 {
        self.len - self.pos
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Check<[u8; N]> {
        if (N as u64) > self.left() {
            return Err(format!("the file ends inside {what} at byte {}", self.pos));
        }
        let mut buf = [0; N];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| format!("cannot read {what} at byte {}: {e}", self.pos))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Check<u32> {
        self.bytes(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Check<u64> {
        self.bytes(what).map(u64::from_le_bytes)
    }

    /// A length or count, in the version's width.
    fn length(&mut self, what: &str) -> Check<u64> {
        if self.width == 4 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }

    fn skip(&mut self, n: u64, what: &str) -> Check {
        if n > self.left() {
            return Err(format!(
                "{what} at byte {} needs {n} bytes but only {} are left",
                self.pos,
                self.left()
            ));
        }
        let copied = std::io::copy(&mut (&mut self.reader).take(n), &mut std::io::sink())
            .map_err(|e| format!("cannot read {what} at byte {}: {e}", self.pos))?;
        if copied != n {
            return Err(format!(
                "the file ends inside {what} at byte {}",
                self.pos + copied
            ));
        }
        self.pos += n;
        Ok(())
    }

    /// Skips a string; returns its bytes when it is short enough to be `key`.
    fn string(&mut self, what: &str, key: Option<&str>) -> Check<bool> {
        let start = self.pos;
        let len = self.length(what)?;
        if len > self.left() {
            return Err(format!(
                "{what} at byte {start} claims {len} bytes but only {} are left",
                self.left()
            ));
        }
        match key {
            Some(key) if len == key.len() as u64 => {
                let mut buf = vec![0; key.len()];
                self.reader
                    .read_exact(&mut buf)
                    .map_err(|e| format!("cannot read {what} at byte {start}: {e}"))?;
                self.pos += len;
                Ok(buf == key.as_bytes())
            }
            _ => self.skip(len, what).map(|()| false),
        }
    }

    fn value_type(&mut self, what: &str) -> Check<Type> {
        let at = self.pos;
        let code = self.u32(what)?;
        Type::from_code(code).ok_or_else(|| format!("{what} at byte {at} is unknown ({code})"))
    }

    /// Skips a value of type `ty`; `depth` counts the arrays it is in. Returns it as an integer
    /// when it is one candle would take as an alignment.
    fn value(&mut self, ty: Type, depth: usize) -> Check<Option<i64>> {
        let at = self.pos;
        match ty {
            Type::U8 => Ok(Some(self.bytes::<1>("a u8")?[0].into())),
            Type::I8 => Ok(Some((self.bytes::<1>("an i8")?[0] as i8).into())),
            Type::U16 => Ok(Some(u16::from_le_bytes(self.bytes("a u16")?).into())),
            Type::I16 => Ok(Some(i16::from_le_bytes(self.bytes("an i16")?).into())),
            Type::U32 => Ok(Some(self.u32("a u32")?.into())),
            Type::I32 => Ok(Some(i32::from_le_bytes(self.bytes("an i32")?).into())),
            Type::Bool => match self.bytes::<1>("a bool")?[0] {
                0 | 1 => Ok(None),
                b => Err(format!("the bool at byte {at} is {b}, not 0 or 1")),
            },
            Type::String => self.string("a string", None).map(|_| None),
            Type::Array => {
                self.array(depth + 1)?;
                Ok(None)
            }
            fixed => {
                self.skip(fixed.fixed_size().unwrap_or(0), "a number")?;
                Ok(None)
            }
        }
    }

    fn array(&mut self, depth: usize) -> Check {
        let at = self.pos;
        if depth > MAX_ARRAY_DEPTH {
            return Err(format!(
                "the array at byte {at} is nested {depth} deep (at most {MAX_ARRAY_DEPTH})"
            ));
        }
        let ty = self.value_type("an array's element type")?;
        let count = self.length("an array's length")?;
        let needed = count.saturating_mul(ty.min_size(self.width));
        if needed > self.left() {
            return Err(format!(
                "the array at byte {at} claims {count} elements, which need at least {needed} \
                 bytes, but only {} are left",
                self.left()
            ));
        }
        self.metadata_values = self.metadata_values.saturating_add(count);
        if self.metadata_values > MAX_METADATA_VALUES {
            return Err(format!(
                "its metadata arrays hold more than {MAX_METADATA_VALUES} values"
            ));
        }
        match ty {
            // Numbers have no invalid values, so a block of them is skipped at once.
            Type::Bool | Type::String | Type::Array => {
                for _ in 0..count {
                    self.value(ty, depth)?;
                }
                Ok(())
            }
            _ => self.skip(needed, "an array of numbers"),
        }
    }

    fn metadata_entry(&mut self) -> Check {
        let is_alignment = self.string("a metadata key", Some("general.alignment"))?;
        let ty = self.value_type("a metadata value type")?;
        let value = self.value(ty, 0)?;
        if is_alignment {
            // candle honours only these types, and a negative value not at all.
            self.alignment = match ty {
                Type::U8 | Type::U16 | Type::U32 | Type::I8 | Type::I16 | Type::I32 => {
                    value.and_then(|v| u64::try_from(v).ok())
                }
                _ => None,
            };
        }
        Ok(())
    }

    /// Checks one tensor's entry; returns where its data ends, relative to the data section.
    fn tensor_info(&mut self) -> Check<u64> {
        let at = self.pos;
        self.string("a tensor name", None)?;
        let dims = self.u32("a tensor's dimension count")?;
        if dims > MAX_DIMS {
            return Err(format!(
                "the tensor at byte {at} has {dims} dimensions (at most {MAX_DIMS})"
            ));
        }
        let mut elements: u64 = 1;
        for _ in 0..dims {
            let dim = self.length("a tensor dimension")?;
            elements = elements
                .checked_mul(dim)
                .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
                .ok_or_else(|| format!("the tensor at byte {at} has an absurd shape"))?;
        }
        let code = self.u32("a tensor type")?;
        let (block, block_bytes) = ggml_block(code)
            .ok_or_else(|| format!("the tensor at byte {at} has unknown type {code}"))?;
        if !elements.is_multiple_of(block) {
            return Err(format!(
                "the tensor at byte {at} has {elements} elements, not whole blocks of {block}"
            ));
        }
        let offset = self.u64("a tensor offset")?;
        // MAX_TENSOR_ELEMENTS keeps the size far from overflowing.
        let size = elements / block * block_bytes;
        offset
            .checked_add(size)
            .ok_or_else(|| format!("the tensor at byte {at} has an absurd offset ({offset})"))
    }
}

/// Checks that the GGUF file in `reader`, `len` bytes long from the reader's position, has a
/// header, metadata and tensor index that candle can read without failing or allocating more
/// than the file justifies. Reads up to the end of the tensor index and keeps nothing; the tensor
/// data is not read, and not checked to be all there. The error says what is wrong, with the
/// byte offset where it is.
pub fn validate_gguf<R: Read>(reader: R, len: u64) -> Result<(), String> {
    let mut walk = Walk {
        reader,
        pos: 0,
        len,
        width: 8,
        metadata_values: 0,
        alignment: None,
    };
    let magic = walk
        .u32("the header")
        .map_err(|_| format!("it is only {len} bytes long, too short for a GGUF header"))?;
    if magic == MAGIC.swap_bytes() {
        return Err("it is a big-endian GGUF file, which is not supported".into());
    }
    if magic != MAGIC {
        let bytes = magic.to_le_bytes();
        return Err(format!(
            "it does not start with `GGUF` but with {:?}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let version = walk.u32("the header")?;
    walk.width = match version {
        1 => 4,
        2 | 3 => 8,
        v => return Err(format!("its GGUF version {v} is not 1, 2 or 3")),
    };
    let tensors = walk.length("the tensor count")?;
    let entries = walk.length("the metadata count")?;
    if entries > MAX_METADATA_ENTRIES {
        return Err(format!(
            "its header claims {entries} metadata entries (at most {MAX_METADATA_ENTRIES})"
        ));
    }
    if tensors > MAX_TENSORS {
        return Err(format!(
            "its header claims {tensors} tensors (at most {MAX_TENSORS})"
        ));
    }
    // Each entry takes at least a length prefix, a u32 and one byte; each tensor a length prefix,
    // a u32 dimension count, a u32 type and a u64 offset.
    let needed = entries
        .saturating_mul(walk.width + 5)
        .saturating_add(tensors.saturating_mul(walk.width + 16));
    if needed > walk.left() {
        return Err(format!(
            "its header claims {tensors} tensors and {entries} metadata entries, which need at \
             least {needed} bytes, but the file has {len}"
        ));
    }
    for _ in 0..entries {
        walk.metadata_entry()?;
    }
    let mut data_end: u64 = 0;
    for _ in 0..tensors {
        data_end = data_end.max(walk.tensor_info()?);
    }
    let alignment = walk.alignment.unwrap_or(32);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(format!(
            "its general.alignment is {alignment}, not a power of two"
        ));
    }
    // Where candle puts the tensor data, and the end of the last tensor after it, must be
    // numbers, or later size checks overflow.
    walk.pos
        .checked_next_multiple_of(alignment)
        .and_then(|start| start.checked_add(data_end))
        .ok_or_else(|| "its tensor offsets are absurd".to_string())?;
    Ok(())
}
