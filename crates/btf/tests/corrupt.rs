//! Malformed objects and BTF never panic and never hang: the bundled firewall
//! object is corrupted many thousands of ways (truncations, bit flips in
//! `.BTF`, header length fields set to huge values, random bytes), and raw
//! BTF with type cycles is built in code. Every case must return Ok or a
//! typed error, each within a hang bound.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use ebpf_sdk_btf::{describe_kernel_map, extract_elf, KernelMapInfo};
use object::{Object, ObjectSection};

/// Far above any real extraction (milliseconds): only a hang trips it.
const HANG: Duration = Duration::from_secs(5);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, so a failure names a reproducible case.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn firewall() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o"))
        .unwrap()
}

fn btf_range(obj: &[u8]) -> (usize, usize) {
    let f = object::File::parse(obj).unwrap();
    let s = f.section_by_name(".BTF").unwrap();
    let (off, len) = s.file_range().unwrap();
    (off as usize, len as usize)
}

fn check(case: &str, data: &[u8]) -> bool {
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| extract_elf(data, "corrupt.o")));
    let took = start.elapsed();
    match r {
        Err(_) => panic!("extract_elf panicked on {case}"),
        Ok(res) => {
            assert!(took < HANG, "{case} took {took:?}");
            if let Err(e) = &res {
                assert!(
                    e.to_string().starts_with("corrupt.o"),
                    "{case}: error does not name the file: {e}"
                );
            }
            res.is_ok()
        }
    }
}

#[test]
fn corrupted_firewall_objects_never_panic() {
    let good = firewall();
    let (btf_off, btf_len) = btf_range(&good);
    let mut rng = Rng(0x5eed_0000_ebbf);
    let mut cases = 0;
    let mut errors = 0;

    // Every truncation length at a coarse stride, and random ones.
    for len in (0..good.len())
        .step_by(97)
        .chain((0..500).map(|_| rng.below(good.len())))
    {
        errors += usize::from(!check(&format!("truncation to {len}"), &good[..len]));
        cases += 1;
    }
    // Bit flips inside .BTF: 1 to 8 bits per case.
    for i in 0..6000 {
        let mut d = good.clone();
        for _ in 0..=rng.below(8) {
            let bit = rng.below(btf_len * 8);
            d[btf_off + bit / 8] ^= 1 << (bit % 8);
        }
        errors += usize::from(!check(&format!("btf bit flip case {i}"), &d));
        cases += 1;
    }
    // BTF header fields (hdr_len, type_off, type_len, str_off, str_len) set to
    // huge or random values.
    for i in 0..1000 {
        let mut d = good.clone();
        let field = 4 + 4 * rng.below(5);
        let v: u32 = match i % 4 {
            0 => u32::MAX,
            1 => u32::MAX - rng.below(64) as u32,
            2 => 1 << rng.below(32),
            _ => rng.next() as u32,
        };
        d[btf_off + field..btf_off + field + 4].copy_from_slice(&v.to_le_bytes());
        errors += usize::from(!check(&format!("btf header field {field} = {v:#x}"), &d));
        cases += 1;
    }
    // Type records: overwrite random 4-byte words in the type section with
    // huge numbers (sizes, vlen, type ids, array lengths).
    for i in 0..3000 {
        let mut d = good.clone();
        let w = 24 + 4 * rng.below((btf_len - 24) / 4);
        let v: u32 = if i % 2 == 0 {
            u32::MAX - rng.below(4) as u32
        } else {
            rng.next() as u32
        };
        d[btf_off + w..btf_off + w + 4].copy_from_slice(&v.to_le_bytes());
        errors += usize::from(!check(&format!("btf word {w} = {v:#x}"), &d));
        cases += 1;
    }
    // Random bytes anywhere (ELF headers, section table, symbols).
    for i in 0..2000 {
        let mut d = good.clone();
        for _ in 0..=rng.below(4) {
            let p = rng.below(d.len());
            d[p] = rng.next() as u8;
        }
        errors += usize::from(!check(&format!("random byte case {i}"), &d));
        cases += 1;
    }
    eprintln!("{cases} corrupted objects: {errors} rejected with an error, none panicked");
    assert!(cases > 10_000);
    assert!(
        errors > cases / 10,
        "suspiciously few corruptions detected: {errors}"
    );
}

/// Raw BTF built in code: header + type records + string table.
struct BtfBuilder {
    types: Vec<u32>,
    strings: Vec<u8>,
}

impl BtfBuilder {
    fn new() -> Self {
        BtfBuilder {
            types: Vec::new(),
            strings: vec![0],
        }
    }
    fn name(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }
    fn info(kind: u32, vlen: u32) -> u32 {
        (kind << 24) | vlen
    }
    fn int(&mut self, name: &str, size: u32) {
        let n = self.name(name);
        self.types.extend([n, Self::info(1, 0), size, size * 8]);
    }
    fn typedef(&mut self, name: &str, target: u32) {
        let n = self.name(name);
        self.types.extend([n, Self::info(8, 0), target]);
    }
    fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) {
        let n = self.name(name);
        self.types
            .extend([n, Self::info(4, members.len() as u32), size]);
        for (m, ty, off) in members {
            let mn = self.name(m);
            self.types.extend([mn, *ty, *off]);
        }
    }
    fn array(&mut self, elem: u32, index: u32, len: u32) {
        self.types
            .extend([0, Self::info(3, 0), 0, elem, index, len]);
    }
    fn build(&self) -> Vec<u8> {
        let type_len = (self.types.len() * 4) as u32;
        let mut out = Vec::new();
        out.extend(0xeb9fu16.to_le_bytes());
        out.extend([1u8, 0]);
        for v in [24u32, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        for t in &self.types {
            out.extend(t.to_le_bytes());
        }
        out.extend(&self.strings);
        out
    }
}

fn describe(btf: &[u8], key_id: u32, key_size: u32) -> Result<String, String> {
    let info = KernelMapInfo {
        name: "m".into(),
        map_type: ebpf_sdk_schema::MapType::Hash,
        key_size,
        value_size: 4,
        max_entries: 1,
        map_flags: ebpf_sdk_schema::MapFlags::NONE,
        btf_key_type_id: key_id,
        btf_value_type_id: 0,
    };
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| {
        describe_kernel_map(&info, Some(btf), "/sys/fs/bpf/m")
    }))
    .expect("describe_kernel_map panicked");
    assert!(start.elapsed() < HANG);
    r.map(|d| d.maps[0].key.as_ref().unwrap().name.clone())
        .map_err(|e| e.to_string())
}

#[test]
fn type_cycles_are_errors() {
    // [1] typedef a -> [2] typedef b -> [1]
    let mut b = BtfBuilder::new();
    b.typedef("a", 2);
    b.typedef("b", 1);
    let e = describe(&b.build(), 1, 4).unwrap_err();
    assert!(e.contains("chain longer than"), "{e}");

    // [1] int, [2] struct s { struct s inner; } (self-containing)
    let mut b = BtfBuilder::new();
    b.int("int", 4);
    b.structure("s", 4, &[("inner", 2, 0)]);
    let e = describe(&b.build(), 2, 4).unwrap_err();
    assert!(e.contains("nested deeper") || e.contains("past the"), "{e}");

    // Exponential sharing: s0 { s1 a; s1 b; }, s1 { s2 a; s2 b; } ... 40 levels.
    let mut b = BtfBuilder::new();
    b.int("int", 4);
    for lvl in 0..40u32 {
        let child = if lvl == 39 { 1 } else { lvl + 3 };
        b.structure(&format!("s{lvl}"), 8, &[("a", child, 0), ("b", child, 0)]);
    }
    let e = describe(&b.build(), 2, 8).unwrap_err();
    assert!(e.contains("nodes") || e.contains("nested deeper"), "{e}");

    // Array whose length times element size overflows.
    let mut b = BtfBuilder::new();
    b.int("int", 4);
    b.array(1, 1, u32::MAX);
    let e = describe(&b.build(), 2, 4).unwrap_err();
    assert!(e.contains("too large"), "{e}");

    // A key type whose size disagrees with the map's key size.
    let mut b = BtfBuilder::new();
    b.int("int", 4);
    let e = describe(&b.build(), 1, 8).unwrap_err();
    assert_eq!(
        e,
        "/sys/fs/bpf/m: map `m`: key type int is 4 bytes but the map's key size is 8"
    );

    // A dangling type id.
    let mut b = BtfBuilder::new();
    b.int("int", 4);
    let e = describe(&b.build(), 77, 4).unwrap_err();
    assert!(e.contains("type id 77"), "{e}");

    // And a sane one works.
    let mut b = BtfBuilder::new();
    b.int("unsigned int", 4);
    b.typedef("__be32", 1);
    assert_eq!(describe(&b.build(), 2, 4).unwrap(), "unsigned int");
}
