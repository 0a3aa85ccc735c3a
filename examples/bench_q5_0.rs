//! Throughput of the Q5_0 product (`src/models/gguf/q5_0`) on the shapes of the test chat
//! model (Qwen2.5 0.5B: 896-wide inputs), for a prompt chunk (256 rows) and one token, beside
//! candle's own quantized product.
//!
//! Usage: cargo run --release --example bench_q5_0 [THREADS]

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use tarjama::models::gguf::q5_0::Q5_0Matrix;

fn main() -> anyhow::Result<()> {
    let threads = std::env::args().nth(1).map(|t| t.parse()).transpose()?;
    tarjama::device::configure_threads(threads)?;
    let dev = Device::Cpu;
    for (rows, n, k) in [
        (256, 4864, 896),
        (256, 896, 896),
        (1, 4864, 896),
        (1, 896, 896),
        // Larger than any cache: one token through 95 MB of weights, bound by memory.
        (1, 151936, 896),
    ] {
        let w = Tensor::randn(0f32, 1., (n, k), &dev)?;
        let q = QTensor::quantize(&w, GgmlDType::Q5_0)?;
        let Some(ours) = Q5_0Matrix::from_qtensor(&q)? else {
            anyhow::bail!("this CPU lacks AVX2 and FMA: the Q5_0 kernels are not used");
        };
        let candle = QMatMul::from_qtensor(q)?;
        let x = Tensor::randn(0f32, 1., (rows, k), &dev)?;
        let macs = (rows * n * k) as f64;
        let repeats = (2e10 / macs).clamp(5.0, 2000.0) as usize;
        let time = |f: &dyn Fn() -> candle_core::Result<Tensor>| -> candle_core::Result<f64> {
            // The fastest call: on a shared machine, the one least disturbed.
            let mut best = f64::INFINITY;
            for _ in 0..=repeats {
                let start = Instant::now();
                std::hint::black_box(f()?);
                best = best.min(start.elapsed().as_secs_f64());
            }
            Ok(best)
        };
        let ours_s = time(&|| ours.matmul(&x))?;
        let candle_s = time(&|| candle.forward(&x))?;
        println!(
            "{rows:>4} x {n:>5} x {k:>4}: tarjama {:8.3} ms {:6.1} GMAC/s, candle {:8.3} ms {:6.1} GMAC/s",
            ours_s * 1e3,
            macs / ours_s / 1e9,
            candle_s * 1e3,
            macs / candle_s / 1e9
        );
    }
    Ok(())
}
