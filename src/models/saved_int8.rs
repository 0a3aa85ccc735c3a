//! Int8 weights saved once (`tarjama models quantize`) and read back by `--quantize q8_0`, so an
//! int8 model loads without quantizing and repacking every linear layer at each start.
//!
//! The file is safetensors: per layer its int8 panels and scales exactly as the kernel reads
//! them ([`crate::kernels::packed_gemm::int8_lengths`]), so a load copies them out of the
//! mapped file and does no arithmetic. Its metadata says what it was made from, and a file whose key differs from the
//! weights beside it is not read:
//! - `layout`: the kernel's [`INT8_LAYOUT`]; another tarjama whose kernels read another layout
//!   refuses the file;
//! - `source`: each weights file's name, size and modification time, so weights replaced or
//!   edited since are noticed without hashing gigabytes at every load;
//! - `dtype`: the float type the weights were read as before quantizing (`--dtype`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use candle_core::DType;
use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};

use crate::kernels::mmap;
use crate::kernels::packed_gemm::{PackedWeight, INT8_LAYOUT};
use crate::{Error, Result};

/// The saved int8 weights of a model, beside its weights.
pub const FILE_NAME: &str = "tarjama-q8_0.safetensors";

const FORMAT: &str = "tarjama-int8";

/// Why saved int8 weights cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Missing,
    /// Made from other weights, by another layout or from another dtype.
    Stale(String),
    /// Not a readable file of this format.
    Corrupt(String),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing => f.write_str("missing"),
            Unusable::Stale(why) => write!(f, "stale: {why}"),
            Unusable::Corrupt(why) => write!(f, "corrupt: {why}"),
        }
    }
}

/// Whether saved int8 weights serve on `device`: the CPU int8 kernel runs there.
pub fn applies(device: &candle_core::Device) -> bool {
    device.is_cpu() && crate::kernels::packed_gemm::available()
}

/// The key of a model's weights files: name, size and modification time (ns) of each.
pub fn source_key(paths: &[PathBuf]) -> Result<String> {
    let entries = paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).map_err(|e| {
                Error::model(format!("cannot read weights file {}: {e}", path.display()))
            })?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            Ok(serde_json::json!([name, meta.len(), mtime.to_string()]))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::Value::Array(entries).to_string())
}

fn dtype_name(dtype: DType) -> String {
    format!("{dtype:?}").to_ascii_lowercase()
}

/// The file's metadata, checked against what this load needs; the layer shapes when it fits.
fn check_metadata(
    metadata: &Option<HashMap<String, String>>,
    source_key: &str,
    dtype: DType,
) -> Result<BTreeMap<String, (usize, usize)>, Unusable> {
    let corrupt = |why: &str| Unusable::Corrupt(why.to_string());
    let meta = metadata
        .as_ref()
        .ok_or_else(|| corrupt("it has no tarjama metadata"))?;
    let get = |key: &str| meta.get(key).map(String::as_str);
    if get("format") != Some(FORMAT) {
        return Err(corrupt("it is not a tarjama int8 file"));
    }
    let layout = get("layout").unwrap_or("?");
    if layout != INT8_LAYOUT.to_string() {
        return Err(Unusable::Stale(format!(
            "it holds int8 layout {layout} (tarjama {}), this tarjama reads layout {INT8_LAYOUT}",
            get("tarjama").unwrap_or("?")
        )));
    }
    if get("source") != Some(source_key) {
        return Err(Unusable::Stale(
            "the model's weights files changed (size or modification time) since it was written"
                .to_string(),
        ));
    }
    let wanted = dtype_name(dtype);
    let made_from = get("dtype").unwrap_or("?");
    if made_from != wanted {
        return Err(Unusable::Stale(format!(
            "it was quantized from {made_from} weights, this run reads them as {wanted}"
        )));
    }
    serde_json::from_str(get("shapes").unwrap_or(""))
        .map_err(|e| Unusable::Corrupt(format!("its layer shapes do not parse ({e})")))
}

/// A mapped saved int8 file whose metadata fits: the mapping, where its data starts, its
/// tensors and its layers' shapes.
struct Mapped {
    map: Mmap,
    data_start: usize,
    metadata: Metadata,
    shapes: BTreeMap<String, (usize, usize)>,
}

fn map_file(path: &Path, source_key: &str, dtype: DType) -> Result<Mapped, Unusable> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => return Err(Unusable::Corrupt(format!("it cannot be read ({e})"))),
    };
    let map = mmap::map_read_only(&file)
        .map_err(|e| Unusable::Corrupt(format!("it cannot be mapped ({e})")))?;
    // Checks the header against the file's length, and that the tensors tile the data.
    let (header, metadata) = SafeTensors::read_metadata(&map)
        .map_err(|e| Unusable::Corrupt(format!("it is not a complete safetensors file ({e})")))?;
    let shapes = check_metadata(metadata.metadata(), source_key, dtype)?;
    Ok(Mapped {
        map,
        data_start: 8 + header,
        metadata,
        shapes,
    })
}

/// Whether the file at `path` is usable for weights with `source_key` read as `dtype`, from its
/// header alone.
pub fn check(path: &Path, source_key: &str, dtype: DType) -> Result<(), Unusable> {
    map_file(path, source_key, dtype).map(drop)
}

/// Int8 weights of a saved file, handed to the layers as they load.
#[derive(Debug)]
pub struct SavedInt8 {
    layers: Mutex<HashMap<String, PackedWeight>>,
}

impl SavedInt8 {
    /// Reads the file at `path` if it fits weights with `source_key` read as `dtype`.
    ///
    /// The weights are copied out of the mapping, not used in place: the page cache maps a file
    /// in 4 KiB pages, and the int8 product over the 62834 × 512 output projection (16 rows)
    /// ran 7–13% slower from there than from a copy on transparent huge pages (medians of three
    /// runs on a shared 2-core Xeon), while the copy costs about 0.08 s of a tc-big load.
    pub fn open(path: &Path, source_key: &str, dtype: DType) -> Result<Self, Unusable> {
        let file = map_file(path, source_key, dtype)?;
        let bytes = |name: &str, dtype: Dtype| {
            let info = file
                .metadata
                .info(name)
                .filter(|info| info.dtype == dtype)?;
            let (start, end) = info.data_offsets;
            file.map.get(file.data_start + start..file.data_start + end)
        };
        let shapes: Vec<_> = file.shapes.iter().collect();
        let layers = shapes
            .into_par_iter()
            .map(|(name, &(n, k))| {
                let weight = bytes(&format!("{name}.q"), Dtype::I8)
                    .zip(bytes(&format!("{name}.scales"), Dtype::F32))
                    .and_then(|(q, scales)| {
                        let scales: Vec<f32> = scales
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect();
                        PackedWeight::from_int8_bytes(n, k, q, scales)
                    })
                    .ok_or_else(|| {
                        Unusable::Corrupt(format!("layer {name} is missing or of the wrong size"))
                    })?;
                Ok((name.clone(), weight))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(Self {
            layers: Mutex::new(layers),
        })
    }

    /// The `[n, k]` layer `name`, once; `None` if the file has no such layer.
    pub fn take(&self, name: &str, n: usize, k: usize) -> Option<PackedWeight> {
        let mut layers = self.layers.lock().ok()?;
        let fits = layers
            .get(name)
            .is_some_and(|w| (w.out_dim(), w.in_dim()) == (n, k));
        fits.then(|| layers.remove(name)).flatten()
    }

    /// The layers no load has taken.
    pub fn untaken(&self) -> usize {
        self.layers.lock().map_or(0, |l| l.len())
    }
}

/// Int8 weights recorded as the layers quantize them at load, to be saved.
#[derive(Debug, Default)]
pub struct Int8Recorder {
    layers: Mutex<BTreeMap<String, PackedWeight>>,
}

impl Int8Recorder {
    pub fn record(&self, name: &str, weight: &PackedWeight) {
        if weight.is_int8() {
            if let Ok(mut layers) = self.layers.lock() {
                layers.insert(name.to_string(), weight.clone());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.layers.lock().map_or(0, |l| l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The recorded layers as the bytes of a saved int8 file for weights with `source_key`,
    /// read as `dtype`. The header is written here rather than by `safetensors::serialize`,
    /// whose metadata is a `HashMap` serialized in a different order each run: the same weights
    /// give the same file.
    pub fn to_bytes(&self, source_key: &str, dtype: DType) -> Result<Vec<u8>> {
        let layers = self
            .layers
            .lock()
            .map_err(|_| Error::model("int8 recording failed"))?;
        let shapes: BTreeMap<&str, (usize, usize)> = layers
            .iter()
            .map(|(name, w)| (name.as_str(), (w.out_dim(), w.in_dim())))
            .collect();
        let metadata = BTreeMap::from([
            ("format", FORMAT.to_string()),
            ("layout", INT8_LAYOUT.to_string()),
            ("tarjama", env!("CARGO_PKG_VERSION").to_string()),
            ("source", source_key.to_string()),
            ("dtype", dtype_name(dtype)),
            (
                "shapes",
                serde_json::to_string(&shapes).expect("shapes serialize"),
            ),
        ]);
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!(metadata));
        let mut data: Vec<u8> = Vec::new();
        for (name, weight) in layers.iter() {
            let (q, scales) = weight.int8_parts().expect("only int8 layers are recorded");
            let start = data.len();
            data.extend(q.iter().map(|&v| v as u8));
            let tensor = |dtype: &str, start: usize, end: usize, count: usize| serde_json::json!({"dtype": dtype, "shape": [count], "data_offsets": [start, end]});
            header.insert(
                format!("{name}.q"),
                tensor("I8", start, data.len(), q.len()),
            );
            let start = data.len();
            data.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
            let entry = tensor("F32", start, data.len(), scales.len());
            header.insert(format!("{name}.scales"), entry);
        }
        // safetensors pads the header with spaces to 8 bytes, so the data is aligned.
        let mut header = serde_json::Value::Object(header).to_string().into_bytes();
        header.resize(header.len().next_multiple_of(8), b' ');
        let mut bytes = Vec::with_capacity(8 + header.len() + data.len());
        bytes.extend((header.len() as u64).to_le_bytes());
        bytes.extend(header);
        bytes.extend(data);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Int8Recorder {
        let recorder = Int8Recorder::default();
        let w: Vec<f32> = (0..70 * 33).map(|i| (i % 19) as f32 - 9.0).collect();
        recorder.record("a.weight", &PackedWeight::pack_int8(&w, 70, 33));
        recorder.record("b.weight", &PackedWeight::pack_int8(&w, 33, 70));
        recorder.record("f32.weight", &PackedWeight::pack(&w, 70, 33));
        recorder
    }

    #[test]
    fn saved_weights_read_back_bit_for_bit_and_only_for_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let recorder = recorded();
        assert_eq!(recorder.len(), 2, "f32 layers are not recorded");
        std::fs::write(&path, recorder.to_bytes("key", DType::F32).unwrap()).unwrap();

        let saved = SavedInt8::open(&path, "key", DType::F32).unwrap();
        assert!(saved.take("a.weight", 70, 34).is_none(), "shape checked");
        let a = saved.take("a.weight", 70, 33).unwrap();
        let original = recorder.layers.lock().unwrap()["a.weight"].clone();
        assert_eq!(a.int8_parts(), original.int8_parts());
        assert!(saved.take("a.weight", 70, 33).is_none(), "taken once");
        assert_eq!(saved.untaken(), 1);

        assert!(matches!(
            SavedInt8::open(&path, "other", DType::F32),
            Err(Unusable::Stale(_))
        ));
        assert!(matches!(
            check(&path, "key", DType::F16),
            Err(Unusable::Stale(_))
        ));
        assert_eq!(
            check(&dir.path().join("none"), "key", DType::F32),
            Err(Unusable::Missing)
        );

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert!(matches!(
            check(&path, "key", DType::F32),
            Err(Unusable::Corrupt(_))
        ));
    }

    #[test]
    fn another_layout_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = recorded().to_bytes("key", DType::F32).unwrap();
        let header = format!("\"layout\":\"{INT8_LAYOUT}\"");
        let at = bytes
            .windows(header.len())
            .position(|w| w == header.as_bytes())
            .unwrap();
        // The same length, so the header's size stays right.
        let value = at + header.len() - 1 - INT8_LAYOUT.to_string().len();
        bytes[value..at + header.len() - 1].fill(b'X');
        std::fs::write(&path, &bytes).unwrap();
        let err = check(&path, "key", DType::F32).unwrap_err();
        assert!(err.to_string().contains("layout X"), "{err}");
    }
}
