//! Any bytes as the raw BTF the kernel returns for a map, with type ids taken
//! from the input: describing returns Ok or an error, never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let key = u32::from(data[0]) | u32::from(data[1]) << 8;
    let value = u32::from(data[2]) | u32::from(data[3]) << 8;
    let info = ebpf_sdk_btf::KernelMapInfo {
        name: "fuzz".into(),
        map_type: u32::from(data[4] % 34),
        key_size: u32::from(data[5]),
        value_size: u32::from(data[6]) * 8,
        max_entries: 1,
        map_flags: 0,
        btf_key_type_id: key,
        btf_value_type_id: value,
    };
    let _ = ebpf_sdk_btf::describe_kernel_map(&info, Some(&data[8..]), "/sys/fs/bpf/fuzz");
});
