//! Safetensors weights mapped into memory rather than read: a model's weights are used where
//! they lie in the page cache, without a copy.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

/// The weights of the safetensors files `paths`, memory-mapped.
///
/// A mapped file must not change while it is mapped: tarjama maps model files only, and never
/// writes to them. The safetensors header is checked against the file's size before any tensor
/// is read.
pub fn safetensors<P: AsRef<Path>>(
    paths: &[P],
    dtype: DType,
    device: &Device,
) -> candle_core::Result<VarBuilder<'static>> {
    // SAFETY: as above: the files are mapped read-only and nothing in tarjama writes to them.
    unsafe { VarBuilder::from_mmaped_safetensors(paths, dtype, device) }
}

/// `file` mapped read-only, for a reader that copies what it needs out before it returns.
///
/// tarjama writes the files it maps this way (saved int8 weights) to a temporary file renamed
/// into place, never in place, so a mapping is never of a file being written.
pub fn map_read_only(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: as above; the mapping lives only while its reader copies out of it.
    unsafe { memmap2::Mmap::map(file) }
}
