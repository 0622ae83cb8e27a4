//! A schema generated from the input, then the rest of the input as YAML and
//! JSON text to encode (never panics; errors leave no partial bytes), plus a
//! modelled value that must encode to exactly the modelled bytes.
#![no_main]

#[path = "../src/bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::encode_decode_body(data));
