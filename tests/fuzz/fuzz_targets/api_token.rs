//! Fuzz target `api_token`: see `sigil_fuzz::api_token`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil_fuzz::api_token(data));
