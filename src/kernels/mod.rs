//! The CPU kernels: the products of the linear layers (f32 and int8, [`packed_gemm`]) and of
//! the GGML weight types ([`ggml`]), one-query attention ([`attention`]), the exponential of
//! softmaxes ([`exp`]), work split over candle's thread pool ([`parallel`]), the cache's row
//! gather ([`gather`]), the choice of tokens over a row of logits ([`top_k`]) and the mapping of
//! weight files ([`mmap`]).
//!
//! All of tarjama's `unsafe` code is here, behind safe functions that check what the unsafe
//! code relies on (the crate root denies `unsafe` everywhere else; `allocator` says why it keeps
//! its calls into mimalloc). Which vector instructions run is decided once, at the first kernel call: [`isa`]
//! (on CPUs with AMX that first call also asks Linux for the tiles' state, `amx`).

#![deny(unsafe_op_in_unsafe_fn)]

mod amx;
pub mod attention;
pub mod exp;
pub mod gather;
pub mod ggml;
pub mod mmap;
pub mod packed_gemm;
pub mod parallel;
pub mod top_k;

use std::sync::OnceLock;

/// The vector instructions the kernels run on, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// None of those below: the portable code (what the compiler vectorises for the target),
    /// and candle's own kernels where tarjama has no portable one.
    Portable,
    /// x86-64 with AVX2, FMA and F16C (Intel Haswell, AMD Zen and later).
    Avx2,
    /// [`Isa::Avx2`] and AVX-512F: the f32 linear-layer product uses 16-lane registers.
    Avx512,
    /// [`Isa::Avx512`], AVX-512BW and AVX512_VNNI (Intel Ice Lake, Sapphire Rapids, AMD Zen 4
    /// and later): the int8 linear-layer product fuses its multiply and add (`vpdpwssd`).
    Avx512Vnni,
    /// [`Isa::Avx512Vnni`] and AMX's tiles with their int8 products (Intel Sapphire Rapids and
    /// later), which Linux has let this process use: the int8 linear-layer product runs on
    /// tiles ([`packed_gemm`]).
    Amx,
}

impl Isa {
    /// Each level and its name in [`ISA_VARIABLE`].
    const NAMES: [(Isa, &'static str); 5] = [
        (Isa::Portable, "portable"),
        (Isa::Avx2, "avx2"),
        (Isa::Avx512, "avx512"),
        (Isa::Avx512Vnni, "avx512-vnni"),
        (Isa::Amx, "amx"),
    ];
}

/// The environment variable that caps the instructions the kernels use, for comparing the
/// kernels on one machine or leaving AMX's tiles alone: one of the names of [`Isa::NAMES`].
pub const ISA_VARIABLE: &str = "TARJAMA_ISA";

/// The cap [`ISA_VARIABLE`] sets: `None` where it is unset or empty, an error naming the
/// accepted values where it is anything else.
pub fn isa_limit() -> Result<Option<Isa>, String> {
    let Some(value) = std::env::var_os(ISA_VARIABLE).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let value = value.to_string_lossy();
    Isa::NAMES
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(value.trim()))
        .map(|&(isa, _)| Some(isa))
        .ok_or_else(|| {
            let names: Vec<&str> = Isa::NAMES.iter().map(|(_, name)| *name).collect();
            format!(
                "{ISA_VARIABLE}={value} is not one of {}; unset it to use the best this CPU runs",
                names.join(", ")
            )
        })
}

/// The instructions of this CPU, detected once (capped by [`ISA_VARIABLE`]; a value
/// [`isa_limit`] refuses caps nothing, as the command line checked it first).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| detect(isa_limit().ok().flatten().unwrap_or(Isa::Amx)))
}

fn detect(limit: Isa) -> Isa {
    detect_up_to(limit).min(limit)
}

fn detect_up_to(limit: Isa) -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") && has!("f16c") {
            return if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
                // The tiles' state is asked for only where they may be used.
                if limit >= Isa::Amx && amx::enable() {
                    Isa::Amx
                } else {
                    Isa::Avx512Vnni
                }
            } else if has!("avx512f") {
                Isa::Avx512
            } else {
                Isa::Avx2
            };
        }
    }
    Isa::Portable
}

/// A pointer into one buffer that parallel tasks write disjoint parts of. Each use says why
/// the parts are disjoint and within the buffer.
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    /// The pointer (a method, so that closures capture the whole `SendPtr`, not its field).
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only written through at places no other task writes, see each use.
unsafe impl<T: Send> Sync for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SendPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision is made once and agrees with the CPU's features.
    #[test]
    fn the_instruction_set_is_decided_once() {
        assert_eq!(isa(), detect(isa_limit().unwrap().unwrap_or(Isa::Amx)));
        // Every cap holds, and caps nothing the CPU lacks.
        for (limit, _) in Isa::NAMES {
            assert!(detect(limit) <= limit);
            assert_eq!(detect(limit), detect(Isa::Amx).min(limit));
        }
        #[cfg(target_arch = "x86_64")]
        if isa() >= Isa::Avx2 {
            assert!(std::arch::is_x86_feature_detected!("avx2"));
            assert!(std::arch::is_x86_feature_detected!("fma"));
            assert!(std::arch::is_x86_feature_detected!("f16c"));
        }
        #[cfg(target_arch = "x86_64")]
        if isa() >= Isa::Avx512Vnni {
            assert!(std::arch::is_x86_feature_detected!("avx512bw"));
            assert!(std::arch::is_x86_feature_detected!("avx512vnni"));
        }
        #[cfg(target_arch = "x86_64")]
        if isa() >= Isa::Amx {
            assert!(amx::enable(), "asking again for the tiles succeeds");
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(isa(), Isa::Portable);
    }
}
