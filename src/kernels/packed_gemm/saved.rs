//! Int8 weights as they are saved to disk and read back: the panels and scales exactly as the
//! kernel reads them, so that loading them is a copy, not a repack.

use std::borrow::Cow;

use super::{int8, isa, Isa, PackedWeight, Panels, PANEL};

/// The version of the int8 layout ([`int8::to_panels`], [`PANEL`], the padded scales). Saved
/// int8 weights record it, and files of another version are not read: change it whenever that
/// layout changes (the `layout_fingerprint` test below fails until then).
pub const INT8_LAYOUT: u32 = 1;

/// The lengths of the int8 panels and of the scales of an `[n, k]` weight.
pub fn int8_lengths(n: usize, k: usize) -> (usize, usize) {
    let panels = n.div_ceil(PANEL);
    (panels * int8::width(k) * PANEL, panels * PANEL)
}

impl PackedWeight {
    /// The int8 panels and the scales (padded to whole panels) of a weight packed by
    /// [`PackedWeight::pack_int8`]; `None` for f32 weights.
    /// Whether the weight is int8 (without converting its panels, as [`int8_parts`] may).
    ///
    /// [`int8_parts`]: PackedWeight::int8_parts
    pub fn is_int8(&self) -> bool {
        matches!(self.panels, Panels::Int8 { .. } | Panels::Int8Quads { .. })
    }

    /// The panels are in the saved layout whichever layout the kernels read here.
    pub fn int8_parts(&self) -> Option<(Cow<'_, [i8]>, &[f32])> {
        match &self.panels {
            Panels::Int8 { data, scales } => Some((Cow::Borrowed(data), scales)),
            Panels::Int8Quads { data, scales } => Some((
                Cow::Owned(int8::amx::to_pairs(data, self.n, self.k)),
                scales,
            )),
            Panels::F32(_) => None,
        }
    }

    /// An `[n, k]` int8 weight from the bytes of the panels [`PackedWeight::int8_parts`] gave
    /// (as saved, read from a mapped file) and its scales, in one pass into the layout this
    /// CPU's kernels read; `None` when their lengths are not those of that shape.
    pub fn from_int8_bytes(n: usize, k: usize, data: &[u8], scales: Vec<f32>) -> Option<Self> {
        if (data.len(), scales.len()) != int8_lengths(n, k) {
            return None;
        }
        let panels = if isa() >= Isa::Amx {
            Panels::Int8Quads {
                data: int8::amx::bytes_to_quads(data, n, k),
                scales,
            }
        } else {
            Panels::Int8 {
                data: data.iter().map(|&b| b as i8).collect(),
                scales,
            }
        };
        Some(Self { panels, n, k })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a over the packed bytes of a fixed ragged weight: a change of the layout changes it.
    #[test]
    fn layout_fingerprint() {
        let (n, k) = (70, 33);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919) % 255) as f32 - 127.0)
            .collect();
        let packed = PackedWeight::pack_int8(&w, n, k);
        let (data, scales) = packed.int8_parts().unwrap();
        let mut hash = 0xcbf29ce484222325u64;
        let bytes = data
            .iter()
            .map(|&b| b as u8)
            .chain(scales.iter().flat_map(|s| s.to_le_bytes()));
        for b in bytes {
            hash = (hash ^ b as u64).wrapping_mul(0x100000001b3);
        }
        assert_eq!(
            (INT8_LAYOUT, hash),
            (1, 0x012a_5b5e_da7d_c2a9),
            "the int8 layout changed: raise INT8_LAYOUT, so saved int8 weights of the old layout \
             are not read, and record the new fingerprint here"
        );
    }

    #[test]
    fn parts_round_trip_and_wrong_lengths_are_refused() {
        let (n, k) = (65, 5);
        let w: Vec<f32> = (0..n * k).map(|i| i as f32 - 100.0).collect();
        let packed = PackedWeight::pack_int8(&w, n, k);
        let (data, scales) = packed.int8_parts().unwrap();
        let bytes: Vec<u8> = data.iter().map(|&q| q as u8).collect();
        let back = PackedWeight::from_int8_bytes(n, k, &bytes, scales.to_vec()).unwrap();
        assert_eq!(back.int8_parts(), packed.int8_parts());
        assert!(PackedWeight::from_int8_bytes(n, k + 2, &bytes, scales.to_vec()).is_none());
        assert!(PackedWeight::pack(&w, n, k).int8_parts().is_none());
        assert!(packed.is_int8() && !PackedWeight::pack(&w, n, k).is_int8());
    }
}
