//! A schema generated from the input, then the rest of the input as the
//! bytes of a key/value: decode never panics and re-encodes exactly, and the
//! direct JSON writer prints exactly serde_json's text of the decoded value.
#![no_main]

#[path = "../src/bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bodies::decode_body(data);
    bodies::decode_json_body(data);
});
