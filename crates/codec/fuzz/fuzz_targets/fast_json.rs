//! The JSON fast path against the general path: whenever
//! `Plan::encode_json_into` takes a text, `parse_json` + `encode_into` take it
//! too and give the same bytes.
#![no_main]

#[path = "../src/bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bodies::fast_json_body(data);
});
