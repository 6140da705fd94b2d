//! Fuzz target `session_secret`: see `sigil_fuzz::session_secret`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil_fuzz::session_secret(data));
