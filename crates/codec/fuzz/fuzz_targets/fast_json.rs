//! The JSON fast path against the general path: whenever
//! `Plan::encode_json_into` takes a text, `parse_json` + `encode_into` take it
//! too and give the same bytes. And the YAML fast path against libyaml:
//! whenever `block_yaml_to_json` takes a text, `parse_yaml` reads it as the
//! same value as the JSON written.
#![no_main]

#[path = "../src/bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bodies::fast_json_body(data);
    bodies::fast_yaml_body(data);
});
