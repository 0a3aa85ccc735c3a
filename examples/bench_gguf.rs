//! Throughput of tarjama's GGUF products beside candle's, on the shapes of the test chat model
//! (Qwen2.5 0.5B: 896-wide inputs): Q5_0 (`src/kernels/ggml/q5_0`) for a prompt chunk (256 rows)
//! and one token, and one token through the Q8_0 output projection (`src/kernels/ggml/q8_0.rs`).
//!
//! Usage: cargo run --release --example bench_gguf [THREADS]

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use tarjama::kernels::ggml::Q5_0Matrix;
use tarjama::kernels::ggml::Q8_0Matrix;

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
        let ours_s = best_of(repeats, &|| ours.matmul(&x))?;
        let candle_s = best_of(repeats, &|| candle.forward(&x))?;
        println!(
            "{rows:>4} x {n:>5} x {k:>4}: tarjama {:8.3} ms {:6.1} GMAC/s, candle {:8.3} ms {:6.1} GMAC/s",
            ours_s * 1e3,
            macs / ours_s / 1e9,
            candle_s * 1e3,
            macs / candle_s / 1e9
        );
    }
    // The output projection: larger than any cache, bound by memory.
    let (n, k) = (151936, 896);
    let w = Tensor::randn(0f32, 1., (n, k), &dev)?;
    let q = std::sync::Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0)?);
    let Some(ours) = Q8_0Matrix::from_arc(q.clone())? else {
        anyhow::bail!("this CPU lacks AVX2 and FMA: the Q8_0 kernel is not used");
    };
    let candle = QMatMul::from_arc(q)?;
    let x = Tensor::randn(0f32, 1., (1, k), &dev)?;
    let macs = (n * k) as f64;
    let ours_s = best_of(20, &|| Ok(ours.matmul_one(&x)?.expect("one row")))?;
    let candle_s = best_of(20, &|| candle.forward(&x))?;
    println!(
        "   1 x {n:>5} x {k:>4} Q8_0: tarjama {:8.3} ms {:6.1} GMAC/s, candle {:8.3} ms {:6.1} GMAC/s",
        ours_s * 1e3,
        macs / ours_s / 1e9,
        candle_s * 1e3,
        macs / candle_s / 1e9
    );
    Ok(())
}

/// The fastest of `repeats + 1` calls: on a shared machine, the one least disturbed.
fn best_of(
    repeats: usize,
    f: &dyn Fn() -> candle_core::Result<Tensor>,
) -> candle_core::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..=repeats {
        let start = Instant::now();
        std::hint::black_box(f()?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}
