//! Fuzz target `jwt`: see `sigil_fuzz::jwt`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil_fuzz::jwt(data));
