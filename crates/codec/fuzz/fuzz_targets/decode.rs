//! A schema generated from the input, then the rest of the input as the
//! bytes of a key/value: decode never panics and re-encodes exactly.
#![no_main]

#[path = "../src/bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::decode_body(data));
