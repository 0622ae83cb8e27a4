//! Micro-measure: 1M entries (24-byte key, 96-byte value) into a
//! preallocated HASH with `update_batch` vs one `update` per entry.
//!
//! Needs root (CAP_BPF). The maps are not pinned and vanish on exit.
//!
//! ```text
//! cargo run --release -p ebpf-sdk-backend --example batch_bench [-- ENTRIES]
//! ```

use std::time::{Duration, Instant};

use ebpf_sdk_backend::{Map, MapCreate, MapType, UpdateFlags};

const KEY: usize = 24;
const VALUE: usize = 96;

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let entries = u32::try_from(n)?;
    let create = || {
        MapCreate::new(MapType::Hash, KEY as u32, VALUE as u32, entries)
            .name("bench")
            .create()
    };

    let mut keys = vec![0u8; n * KEY];
    let mut values = vec![0u8; n * VALUE];
    for i in 0..n {
        let k = &mut keys[i * KEY..(i + 1) * KEY];
        k[..8].copy_from_slice(&(i as u64).to_ne_bytes());
        k[16..24].copy_from_slice(&(!(i as u64)).to_ne_bytes());
        values[i * VALUE..(i + 1) * VALUE].fill((i % 251) as u8);
    }

    let run_batch = |map: &Map| -> Result<Duration, Box<dyn std::error::Error>> {
        let t = Instant::now();
        let applied = map.update_batch(&keys, &values, n, UpdateFlags::Any)?;
        let d = t.elapsed();
        assert_eq!(applied, n);
        Ok(d)
    };

    let map = create()?;
    let batch = run_batch(&map)?;
    let batch_size = map.batch_size();
    let t = Instant::now();
    let read = map.lookup_batch()?;
    let lookup = t.elapsed();
    assert_eq!(read.len(), n);
    drop(map);

    let mut map = create()?;
    map.set_batch_size(65_536);
    let big_batch = run_batch(&map)?;
    drop(map);

    let map = create()?;
    let t = Instant::now();
    for i in 0..n {
        map.update(
            &keys[i * KEY..(i + 1) * KEY],
            &values[i * VALUE..(i + 1) * VALUE],
            UpdateFlags::Any,
        )?;
    }
    let single = t.elapsed();
    drop(map);

    println!("{n} entries, key {KEY} B, value {VALUE} B, preallocated hash");
    println!(
        "update_batch (batch size {batch_size}): {:>8.1} ms  {:>10.0} entries/s",
        batch.as_secs_f64() * 1e3,
        per_sec(n, batch)
    );
    println!(
        "update_batch (batch size 65536): {:>8.1} ms  {:>10.0} entries/s",
        big_batch.as_secs_f64() * 1e3,
        per_sec(n, big_batch)
    );
    println!(
        "update per element:              {:>8.1} ms  {:>10.0} entries/s",
        single.as_secs_f64() * 1e3,
        per_sec(n, single)
    );
    println!(
        "lookup_batch (all):              {:>8.1} ms  {:>10.0} entries/s",
        lookup.as_secs_f64() * 1e3,
        per_sec(n, lookup)
    );
    println!(
        "batch speed-up: {:.1}x",
        single.as_secs_f64() / batch.as_secs_f64()
    );
    Ok(())
}
