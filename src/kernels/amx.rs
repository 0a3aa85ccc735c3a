//! Whether this process may run AMX's tile instructions: the CPU has them (CPUID), and Linux
//! has granted the process the tiles' register state, which it hands out only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, Linux 5.16 and later); until then the first tile
//! instruction is a fault. Rust's `is_x86_feature_detected!("amx-int8")` and the `amx-*`
//! target features are not stable, so the CPUID bits are read here and the instructions are
//! written in `asm!` (`packed_gemm`'s AMX kernel).

/// CPUID leaf 7's EDX bits for AMX-TILE and AMX-INT8.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const AMX_TILE_AND_INT8: u32 = (1 << 24) | (1 << 25);

/// Whether the CPU has AMX-TILE and AMX-INT8 and Linux granted the tile state (asked for
/// here: granting is per process and asking again is harmless).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(super) fn enable() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_ulong = 18;
    // Leaf 7 exists on every CPU with AVX2, which the caller checked first.
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf7.edx & AMX_TILE_AND_INT8 != AMX_TILE_AND_INT8 {
        return false;
    }
    // SAFETY: this request only changes which register state the kernel lets the process use;
    // it reads no memory of ours. It fails (non-zero) where the kernel lacks AMX support or a
    // signal stack is too small for the larger state, and then the tiles are not used.
    if unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    } != 0
    {
        return false;
    }
    // What was granted, read back: a sandbox that answers the request without granting it
    // would otherwise let the first tile instruction kill the process.
    const ARCH_GET_XCOMP_PERM: libc::c_ulong = 0x1022;
    let mut granted: u64 = 0;
    // SAFETY: the kernel writes the granted feature bits into `granted`, a u64 we own.
    let read = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_GET_XCOMP_PERM,
            &mut granted as *mut u64,
        )
    };
    read == 0 && granted & (1 << XFEATURE_XTILEDATA) != 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(super) fn enable() -> bool {
    false
}
