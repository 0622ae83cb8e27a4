//! Names for `enum bpf_map_type` and the `map_flags` bits (include/uapi/linux/bpf.h).

/// Map type names indexed by `enum bpf_map_type`, lower case without the `BPF_MAP_TYPE_` prefix.
pub const MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// `map_flags` bits and their names, lower case without the `BPF_F_` prefix.
pub const MAP_FLAGS: &[(u32, &str)] = &[
    (1 << 0, "no_prealloc"),
    (1 << 1, "no_common_lru"),
    (1 << 2, "numa_node"),
    (1 << 3, "rdonly"),
    (1 << 4, "wronly"),
    (1 << 5, "stack_build_id"),
    (1 << 6, "zero_seed"),
    (1 << 7, "rdonly_prog"),
    (1 << 8, "wronly_prog"),
    (1 << 9, "clone"),
    (1 << 10, "mmapable"),
    (1 << 11, "preserve_elems"),
    (1 << 12, "inner_map"),
    (1 << 13, "link"),
    (1 << 14, "path_fd"),
    (1 << 15, "vtype_btf_obj_fd"),
    (1 << 16, "token_fd"),
    (1 << 17, "segv_on_fault"),
    (1 << 18, "no_user_conv"),
];

/// The name of a map type id; unknown ids are `type_<id>`.
pub fn map_type_name(id: u32) -> String {
    MAP_TYPES
        .get(id as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("type_{id}"))
}

/// The id of a map type name (as produced by [`map_type_name`]).
pub fn map_type_id(name: &str) -> Option<u32> {
    if let Some(i) = MAP_TYPES.iter().position(|n| *n == name) {
        return u32::try_from(i).ok();
    }
    name.strip_prefix("type_")?.parse().ok()
}

/// Names of the set bits of `flags`; unknown bits are `0x<bit>`.
pub fn flag_names(flags: u32) -> Vec<String> {
    (0..32)
        .map(|b| 1u32 << b)
        .filter(|bit| flags & bit != 0)
        .map(|bit| {
            MAP_FLAGS
                .iter()
                .find(|(v, _)| *v == bit)
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| format!("{bit:#x}"))
        })
        .collect()
}

/// The inverse of [`flag_names`]; `None` names the first unknown flag.
pub fn flags_from_names<S: AsRef<str>>(names: &[S]) -> Result<u32, String> {
    let mut flags = 0;
    for n in names {
        let n = n.as_ref();
        let bit = MAP_FLAGS
            .iter()
            .find(|(_, name)| *name == n)
            .map(|(v, _)| *v)
            .or_else(|| u32::from_str_radix(n.strip_prefix("0x")?, 16).ok())
            .ok_or_else(|| n.to_string())?;
        flags |= bit;
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_uapi_numbers() {
        assert_eq!(map_type_name(11), "lpm_trie");
        assert_eq!(map_type_name(6), "percpu_array");
        assert_eq!(map_type_name(27), "ringbuf");
        assert_eq!(map_type_name(30), "bloom_filter");
        assert_eq!(map_type_name(99), "type_99");
        assert_eq!(map_type_id("lpm_trie"), Some(11));
        assert_eq!(map_type_id("type_99"), Some(99));
    }

    #[test]
    fn flags_round_trip() {
        assert_eq!(flag_names(1), vec!["no_prealloc"]);
        assert_eq!(
            flag_names(1 | (1 << 10) | (1 << 30)),
            vec!["no_prealloc", "mmapable", "0x40000000"]
        );
        assert_eq!(
            flags_from_names(&flag_names(0x4000_0401)).unwrap(),
            0x4000_0401
        );
        assert_eq!(flags_from_names(&["bogus"]).unwrap_err(), "bogus");
    }
}
