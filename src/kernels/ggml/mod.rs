//! Products with weights of GGML's quantized types, for the chat models of GGUF files: Q5_0
//! (most tensors of small Qwen2.5 files) and Q8_0 (their output projection), on x86-64 CPUs
//! with AVX2, FMA and F16C. Elsewhere the matrices are not built and candle's kernels run.

mod filled;
mod mapped;
mod q5_0;
mod q8_0;
mod q8_rows;

pub use filled::cpu_qtensor;
pub use mapped::mapped_qtensor;
pub use q5_0::Q5_0Matrix;
pub use q8_0::Q8_0Matrix;
