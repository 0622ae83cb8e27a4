//! The cargo-fuzz targets' bodies (fuzz/src/bodies.rs) on a few thousand
//! deterministic pseudo-random inputs, so stable `cargo test` runs them too.
//! The real fuzzing: `cd crates/codec/fuzz && cargo +nightly fuzz run decode`.

#[path = "../fuzz/src/bodies.rs"]
mod bodies;

use bodies::inputs;

#[test]
fn decode_body_on_random_inputs() {
    for data in inputs(1, 3000, 0) {
        bodies::decode_body(&data);
    }
}

#[test]
fn decode_json_body_on_random_inputs() {
    for data in inputs(5, 3000, 0) {
        bodies::decode_json_body(&data);
    }
}

#[test]
fn model_body_on_random_inputs() {
    use std::sync::atomic::Ordering;
    let (addr, bools) = (
        bodies::ADDRESS_TEXTS.load(Ordering::Relaxed),
        bodies::BOOL_HEX.load(Ordering::Relaxed),
    );
    for data in inputs(2, 3000, 0) {
        bodies::model_body(&data);
    }
    // The address shapes (struct in6_addr, in_addr, unions of views,
    // __be32[4], __int128, ...) and _Bool bytes other than 0/1 are modelled.
    let addr = bodies::ADDRESS_TEXTS.load(Ordering::Relaxed) - addr;
    let bools = bodies::BOOL_HEX.load(Ordering::Relaxed) - bools;
    eprintln!("{addr} address texts, {bools} _Bool hex bytes modelled");
    assert!(
        addr > 100 && bools > 20,
        "{addr} address texts, {bools} bool bytes"
    );
}

#[test]
fn encode_decode_body_on_random_inputs() {
    for data in inputs(3, 2000, 0) {
        bodies::encode_decode_body(&data);
    }
    // Text that parses: short YAML documents after a fixed schema seed.
    for text in [
        "{f1: 1}",
        "[1, 2, 3]",
        "{f1: '0x10', f2: [1], f3: {f4: a}}",
        "f2: 10.0.0.1",
        "{}",
        "~",
        "'eth0'",
    ] {
        for seed in 0u8..=255 {
            let mut data = vec![seed, seed.wrapping_mul(7), 3, seed ^ 0x5a];
            data.extend_from_slice(&[0; 60]);
            data.extend_from_slice(text.as_bytes());
            bodies::encode_decode_body(&data);
        }
    }
}

/// The JSON fast path (`Plan::encode_json_into`, what `apply` uses for JSON
/// Lines) never disagrees with the general path, and does take most plain
/// texts: the modelled values' JSON and decode's output.
#[test]
fn fast_json_body_on_random_inputs() {
    let (mut took, mut tried, mut plain_took) = (0, 0, 0);
    let n = 3000;
    for data in inputs(4, n, 0) {
        let (t, k) = bodies::fast_json_body(&data);
        took += t;
        tried += k;
        plain_took += usize::from(t > 0);
    }
    eprintln!("fast path took {took} of {tried} texts");
    // Unions, floats, escapes and big integers send some to the general path;
    // the rest must not all fall back.
    assert!(
        plain_took * 2 > n,
        "fast path taken for only {plain_took} of {n} schemas"
    );
}

/// The YAML fast path (`block_yaml_to_json`, what `apply` uses for YAML in
/// `dump`'s block style) never reads a text otherwise than libyaml, and
/// does take the YAML printed for most modelled values.
#[test]
fn fast_yaml_body_on_random_inputs() {
    let (mut took, mut tried, mut printed_took) = (0, 0, 0);
    let n = 3000;
    for data in inputs(5, n, 0) {
        let (t, k) = bodies::fast_yaml_body(&data);
        took += t;
        tried += k;
        printed_took += usize::from(t > 0);
    }
    eprintln!("YAML fast path took {took} of {tried} texts");
    assert!(
        printed_took * 2 > n,
        "YAML fast path taken for only {printed_took} of {n} values"
    );
}

/// Inputs that once failed, kept as regressions (fuzz/regressions/*).
#[test]
fn regressions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        } else if name.starts_with("decode") {
            bodies::decode_body(&data);
            bodies::decode_json_body(&data);
        } else if name.starts_with("fast_json") {
            bodies::fast_json_body(&data);
            bodies::fast_yaml_body(&data);
        } else {
            bodies::encode_decode_body(&data);
        }
    }
}
