//! See `tarjama::fuzzing::model_config`: the body is shared with tests/it/fuzz_regressions.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A refused model is a fine outcome; only a panic, an abort or a leak of memory is a finding.
    let _ = tarjama::fuzzing::model_config(data);
});
