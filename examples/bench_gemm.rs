//! GFLOP/s of the packed linear-layer product (`src/kernels/packed_gemm.rs`), f32 and int8
//! weights (for int8 the figure counts integer operations, GOPS), on the shapes of the
//! opus-mt-ar-en-shaped benchmark model: an encoder batch (700 rows) through its 512×2048,
//! 2048×512 and 512×512 layers, and a decoding step (16 rows) through the 62834-word output
//! projection and an FFN layer, plus small in-cache shapes; then the same for the default model,
//! opus-mt-tc-big-ar-en (d_model 1024, FFN 4096, 61109 words), with its decoding step's layers.
//!
//! Usage: cargo run --release --example bench_gemm [f32|int8]
//! (with an argument, only that weight type is timed). Beside wall-clock speed it prints the
//! operations per second of CPU time (see `cpu_seconds`).

use std::time::Instant;

use tarjama::kernels::packed_gemm::{matmul, PackedWeight};

fn main() -> anyhow::Result<()> {
    tarjama::device::configure_threads(None)?;
    if !tarjama::kernels::packed_gemm::available() {
        anyhow::bail!(
            "this CPU has neither AVX-512 nor AVX2 with FMA: the packed product is not used"
        );
    }
    let shapes = [
        (6, 64, 256),
        (60, 128, 256),
        (700, 2048, 512),
        (700, 512, 2048),
        (700, 512, 512),
        (16, 62834, 512),
        (16, 2048, 512),
        (700, 4096, 1024),
        (700, 1024, 4096),
        (700, 1024, 1024),
        (16, 61109, 1024),
        (16, 1024, 1024),
        (16, 4096, 1024),
        (16, 1024, 4096),
    ];
    let only = std::env::args().nth(1);
    for (m, n, k) in shapes {
        // Deterministic values in [-0.5, 0.5).
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let flops = 2.0 * (m * n * k) as f64;
        for (name, weight) in [
            ("f32", PackedWeight::pack(&w, n, k)),
            ("int8", PackedWeight::pack_int8(&w, n, k)),
        ] {
            if only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let repeats = (2e10 / flops).max(3.0) as usize;
            std::hint::black_box(matmul(&x, m, &weight, None));
            let cpu_start = cpu_seconds();
            let start = Instant::now();
            for _ in 0..repeats {
                std::hint::black_box(matmul(&x, m, &weight, None));
            }
            let secs = start.elapsed().as_secs_f64() / repeats as f64;
            let per_cpu_second = match (cpu_start, cpu_seconds()) {
                (Some(a), Some(b)) => {
                    format!(
                        ", {:6.1} per CPU-second",
                        flops * repeats as f64 / (b - a) / 1e9
                    )
                }
                _ => String::new(),
            };
            println!(
                "{m:>4} x {n:>5} x {k:>4} {name:<4}: {:8.3} ms {:6.1} GFLOP/s{per_cpu_second}",
                secs * 1e3,
                flops / secs / 1e9
            );
        }
    }
    Ok(())
}

/// CPU time of all this process's threads so far, in seconds, from Linux's scheduler statistics
/// (nanoseconds on a CPU, per thread); `None` elsewhere. On a shared machine, where waiting for
/// a core stretches wall time, it measures the kernels themselves, with `RAYON_NUM_THREADS=1`:
/// with more threads, one that waits at candle's barrier for a descheduled one spins, and counts.
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}
