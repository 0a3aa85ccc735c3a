//! Model files mapped into memory rather than read: safetensors weights read out of the page
//! cache without a copy into a buffer first, saved int8 weights, and GGUF files whose weights
//! are used where they lie ([`ModelMap`]).

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

/// The environment variable that turns the mapping of GGUF files off (1, true, yes or on): they
/// are read into memory instead, for files on network filesystems (whose read errors a mapping
/// turns into `SIGBUS`) or files that must be replaceable in place.
pub const NO_MAP_VARIABLE: &str = "TARJAMA_NO_MMAP";

/// Whether [`NO_MAP_VARIABLE`] turns mapping off.
pub fn mapping_turned_off() -> bool {
    turns_off(std::env::var("TARJAMA_NO_MMAP").ok().as_deref())
}

/// A boolean variable as the Hugging Face ones read: `1`, `true`, `yes` or `on` in any case.
fn turns_off(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// A model file mapped read-only for as long as its weights are used in place
/// (`ggml::mapped_qtensor`), its pages asked for as huge pages.
///
/// Huge pages: a token reads every weight, and on 4 KB pages the address translations of a chat
/// model's 500 MB cost generation a sixth of its speed; on Linux a file mapped with
/// `MADV_HUGEPAGE` gets them where its filesystem keeps large folios (ext4 and XFS do), and
/// keeps them in the page cache for the next run.
///
/// A file must not be truncated or written in place while it is mapped (reads past a truncated
/// end are a `SIGBUS`): tarjama never writes model files, and the Hub's downloads (and
/// `models download`) replace files by renaming new ones into place, which leaves a mapped file
/// as it was. llama.cpp maps GGUF files the same way.
pub struct ModelMap {
    map: memmap2::Mmap,
}

impl ModelMap {
    pub fn new(file: &std::fs::File) -> std::io::Result<Self> {
        // SAFETY: as above: read-only, and nothing in tarjama writes to a model file.
        let map = unsafe { memmap2::Mmap::map(file) }?;
        #[cfg(target_os = "linux")]
        {
            // Advice only: a kernel without THP maps the file all the same.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Ok(Self { map })
    }

    /// Maps the pages of `range` in now, so that a load costs what it costs rather than the
    /// first prompt (llama.cpp maps with `MAP_POPULATE` for the same reason). Call it with huge
    /// pages on (after `allocator::without_huge_pages`): a page mapped while they are off stays
    /// a small one.
    pub fn fault_in(&self, range: std::ops::Range<usize>) {
        #[cfg(target_os = "linux")]
        {
            // Advice only: before Linux 5.14 (no MADV_POPULATE_READ) pages fault in when read.
            if range.start <= range.end && range.end <= self.map.len() {
                let len = range.end - range.start;
                let _ = self
                    .map
                    .advise_range(memmap2::Advice::PopulateRead, range.start, len);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = range;
    }

    /// Unmaps the pages of `range` from this process (the page cache keeps them): for bytes read
    /// once at load and then held elsewhere, which would otherwise count in the process's
    /// resident memory a second time. Whole pages go, so the edges of the tensors beside the
    /// range may go too; they fault back in when read. A range not within the file does nothing.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if range.start > range.end || range.end > self.map.len() {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: the range is within the mapping (checked above, as memmap2 does not: past
            // its end `madvise` would reach whatever is mapped next), and the mapping is a
            // shared, read-only mapping of a file: unmapped pages lose nothing, and a later read
            // faults the same bytes back in from the page cache or the file.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    range.start,
                    range.end - range.start,
                )
            };
        }
    }
}

impl std::ops::Deref for ModelMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{turns_off, ModelMap};

    #[test]
    fn the_variable_turns_mapping_off_as_hugging_face_booleans_read() {
        for on in ["1", "true", "YES", " on "] {
            assert!(turns_off(Some(on)), "{on}");
        }
        for off in [
            None,
            Some(""),
            Some("0"),
            Some("false"),
            Some("off"),
            Some("maybe"),
        ] {
            assert!(!turns_off(off), "{off:?}");
        }
    }

    #[test]
    fn released_pages_read_back_the_same_and_ranges_not_in_the_file_are_ignored() {
        let bytes: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i * 7 % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let map = ModelMap::new(&file).unwrap();
        map.fault_in(0..bytes.len());
        assert_eq!(*map, *bytes);
        map.release(100..2 * 4096 + 5);
        map.release(4096..usize::MAX);
        #[allow(clippy::reversed_empty_ranges)]
        map.release(10..3);
        map.fault_in(0..usize::MAX);
        assert_eq!(*map, *bytes);
    }
}
