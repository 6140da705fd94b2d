//! Fuzz target `edge_body`: see `sigil_fuzz::edge_body`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigil_fuzz::edge_body(data));
