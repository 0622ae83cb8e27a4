//! Encode/decode throughput on the firewall LPM table map (24-byte key,
//! 1200-byte value of 100 packed 12-byte rules), from pre-parsed values:
//! `cargo run --release -p ebpf-sdk-codec --example throughput [N]`.
use std::hint::black_box;
use std::time::Instant;

use ebpf_sdk_codec::{parse_yaml, Codec};
use ebpf_sdk_schema::Document;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let doc =
        Document::from_json(include_str!("../tests/fixtures/firewall.json")).expect("fixture");
    let codec =
        Codec::new(doc.map("ingress_node_firewall_table_map").expect("map")).expect("codec");
    let key = parse_yaml("{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}").expect("key");
    for rules in [10usize, 100] {
        let text: Vec<String> = (0..rules)
            .map(|i| {
                format!(
                    "{{ruleId: {}, protocol: 6, dstPortStart: {}, dstPortEnd: {}, action: {}}}",
                    i + 1,
                    1000 + i,
                    2000 + i,
                    1 + i % 2
                )
            })
            .collect();
        let value = parse_yaml(&format!("rules: [{}]", text.join(", "))).expect("value");
        let (mut kbuf, mut vbuf) = (vec![0u8; codec.key_size()], vec![0u8; codec.value_size()]);

        let t = Instant::now();
        for _ in 0..n {
            codec
                .encode_key_into(black_box(&key), &mut kbuf)
                .expect("key");
            codec
                .encode_value_into(black_box(&value), &mut vbuf)
                .expect("value");
            black_box((&kbuf, &vbuf));
        }
        let enc = t.elapsed();

        let t = Instant::now();
        for _ in 0..n {
            black_box(codec.decode_key(black_box(&kbuf)).expect("key"));
            black_box(codec.decode_value(black_box(&vbuf)).expect("value"));
        }
        let dec = t.elapsed();
        println!(
            "{rules:>3} rules: encode key+value {:>7.0} ns/entry ({:.2} M/s), decode {:>7.0} ns/entry ({:.2} M/s)",
            enc.as_nanos() as f64 / n as f64,
            n as f64 / enc.as_secs_f64() / 1e6,
            dec.as_nanos() as f64 / n as f64,
            n as f64 / dec.as_secs_f64() / 1e6,
        );
    }
}
