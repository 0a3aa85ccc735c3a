//! See `tarjama::fuzzing::sentencepiece`: the body is shared with tests/it/fuzz_regressions.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tarjama::fuzzing::sentencepiece(data));
