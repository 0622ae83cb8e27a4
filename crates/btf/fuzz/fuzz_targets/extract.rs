//! Any bytes as an eBPF object: extraction returns Ok or an error, never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ebpf_sdk_btf::extract_elf(data, "fuzz.o");
});
