//! Device and dtype selection from the `--device` and `--dtype` flags.

use std::str::FromStr;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};

use crate::{Error, Result};

/// What the user asked for with `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            "metal" | "mps" => Ok(DeviceChoice::Metal),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceChoice::Cuda)
                    .map_err(|_| format!("invalid CUDA ordinal in {s:?}: use cuda:0, cuda:1, …")),
                None => Err(format!(
                    "unknown device {s:?}: use auto, cpu, cuda, cuda:N or metal"
                )),
            },
        }
    }
}

/// What the user asked for with `--dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DTypeChoice {
    Auto,
    F32,
    F16,
    Bf16,
}

impl FromStr for DTypeChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DTypeChoice::Auto),
            "f32" | "float32" => Ok(DTypeChoice::F32),
            "f16" | "float16" | "half" => Ok(DTypeChoice::F16),
            "bf16" | "bfloat16" => Ok(DTypeChoice::Bf16),
            _ => Err(format!("unknown dtype {s:?}: use auto, f32, f16 or bf16")),
        }
    }
}

/// Opens the requested device. `auto` takes CUDA, then Metal, when compiled in and present.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(device) = Device::new_cuda(0) {
                    return Ok(device);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(device) = Device::new_metal(0) {
                    return Ok(device);
                }
            }
            Ok(Device::Cpu)
        }
        DeviceChoice::Cuda(ordinal) => {
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::usage(
                    "this tarjama was built without CUDA support: rebuild with `cargo build --release --features cuda`, or use --device cpu",
                ));
            }
            Device::new_cuda(ordinal).map_err(|e| {
                Error::usage(format!(
                    "cannot open CUDA device {ordinal}: {e}. Check `nvidia-smi` and the device number"
                ))
            })
        }
        DeviceChoice::Metal => {
            if !candle_core::utils::metal_is_available() {
                return Err(Error::usage(
                    "this tarjama was built without Metal support: rebuild with `cargo build --release --features metal`, or use --device cpu",
                ));
            }
            Device::new_metal(0)
                .map_err(|e| Error::usage(format!("cannot open the Metal device: {e}")))
        }
    }
}

/// f32 on CPU (half precision is slow there and changes results). On GPUs bf16, which keeps
/// f32's range, where the hardware computes in it (CUDA compute capability 8.0, Ampere, and
/// later; Metal), else f16, whose overflow the models clamp as transformers does.
pub fn select_dtype(choice: DTypeChoice, device: &Device) -> DType {
    match choice {
        DTypeChoice::F32 => DType::F32,
        DTypeChoice::F16 => DType::F16,
        DTypeChoice::Bf16 => DType::BF16,
        DTypeChoice::Auto if device.is_cpu() => DType::F32,
        DTypeChoice::Auto => gpu_half_dtype(cuda_compute_capability(device)),
    }
}

/// The half-precision dtype for a GPU of the given CUDA compute capability (`None`: not CUDA).
fn gpu_half_dtype(compute_capability: Option<(i32, i32)>) -> DType {
    match compute_capability {
        Some((major, _)) if major < 8 => DType::F16,
        _ => DType::BF16,
    }
}

/// The CUDA compute capability of `device`, when it is a CUDA device that reports one.
pub fn cuda_compute_capability(device: &Device) -> Option<(i32, i32)> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        return cuda.cuda_stream().context().compute_capability().ok();
    }
    let _ = device;
    None
}

/// A short name for messages: `cpu`, `cuda:0`, `metal`.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("metal".parse(), Ok(DeviceChoice::Metal));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert!("tpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn parses_dtypes_and_defaults_to_f32_on_cpu() {
        assert_eq!("bf16".parse(), Ok(DTypeChoice::Bf16));
        assert!("f8".parse::<DTypeChoice>().is_err());
        assert_eq!(select_dtype(DTypeChoice::Auto, &Device::Cpu), DType::F32);
        assert_eq!(select_dtype(DTypeChoice::F16, &Device::Cpu), DType::F16);
    }

    #[test]
    fn auto_dtype_on_gpus_is_bf16_from_ampere_on() {
        assert_eq!(gpu_half_dtype(Some((9, 0))), DType::BF16); // H100/H200
        assert_eq!(gpu_half_dtype(Some((8, 0))), DType::BF16); // A100
        assert_eq!(gpu_half_dtype(Some((7, 5))), DType::F16); // T4
        assert_eq!(gpu_half_dtype(Some((6, 1))), DType::F16);
        assert_eq!(gpu_half_dtype(None), DType::BF16); // Metal
        assert_eq!(cuda_compute_capability(&Device::Cpu), None);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_names_the_feature() {
        let err = select_device(DeviceChoice::Cuda(0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}

/// Sets the number of CPU threads for candle's kernels and tarjama's own parallel code (both run
/// on rayon), before either has started a thread pool. The default is the physical cores this
/// process may run on (a second hyper-thread on a core shares its vector units), unless
/// `RAYON_NUM_THREADS` says otherwise.
pub fn configure_threads(requested: Option<usize>) -> Result<usize> {
    let from_env = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = requested
        .or(from_env)
        .unwrap_or_else(|| num_cpus::get_physical().clamp(1, allowed));
    // candle sizes its pools from this variable when it first needs them.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| {
            Error::usage(format!(
                "cannot start {threads} threads ({e}): lower --threads"
            ))
        })?;
    Ok(threads)
}

/// How a model's weights are held: a float dtype, and optionally its linear layers quantized at
/// load time (`--quantize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    pub dtype: DType,
    pub quantize: Option<GgmlDType>,
}

impl From<DType> for Precision {
    fn from(dtype: DType) -> Self {
        Self {
            dtype,
            quantize: None,
        }
    }
}

/// `--quantize`: the formats encoder-decoder weights can be quantized to at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizeChoice {
    /// int8 weights in blocks of 32 with one f16 scale each (GGML's Q8_0).
    Q8_0,
}

impl QuantizeChoice {
    pub fn format(self) -> GgmlDType {
        match self {
            QuantizeChoice::Q8_0 => GgmlDType::Q8_0,
        }
    }
}

impl FromStr for QuantizeChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "q8_0" | "q8" | "int8" => Ok(QuantizeChoice::Q8_0),
            _ => Err(format!("unknown quantization {s:?}: use q8_0 (int8)")),
        }
    }
}
