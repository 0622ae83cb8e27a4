//! Per-CPU value buffers.
//!
//! A per-CPU map (`percpu_hash`, `percpu_array`, `lru_percpu_hash`) stores
//! one value per *possible* CPU. User space reads and writes all of them at
//! once in one buffer of `round_up(value_size, 8) * ncpus` bytes: CPU `i`'s
//! value starts at `i * round_up(value_size, 8)`.
//!
//! ```
//! use ebpf_sdk_backend::percpu;
//!
//! // value_size 12 on 2 CPUs: 16-byte slots.
//! let buf = percpu::broadcast(&[7u8; 12], 2);
//! assert_eq!(buf.len(), percpu::buf_size(12, 2));
//! let per_cpu: Vec<&[u8]> = percpu::split(&buf, 12).collect();
//! assert_eq!(per_cpu, vec![&[7u8; 12][..], &[7u8; 12][..]]);
//! assert_eq!(percpu::parse_cpu_list("0,2-3\n"), Some(vec![0, 2, 3]));
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::BackendError;

/// Where the kernel lists the possible CPUs.
pub const POSSIBLE_CPUS_PATH: &str = "/sys/devices/system/cpu/possible";

/// The ids of the possible CPUs, from `/sys/devices/system/cpu/possible`
/// (format `0-1` or `0,2-3`).
pub fn possible_cpus() -> Result<Vec<u32>, BackendError> {
    let path = PathBuf::from(POSSIBLE_CPUS_PATH);
    let content = std::fs::read_to_string(&path).map_err(|source| BackendError::Io {
        path: path.clone(),
        source,
    })?;
    parse_cpu_list(&content).ok_or(BackendError::CpuList { path, content })
}

/// The number of possible CPUs (the `ncpus` of per-CPU buffers), read once.
pub fn num_possible_cpus() -> Result<usize, BackendError> {
    static CACHE: OnceLock<usize> = OnceLock::new();
    if let Some(n) = CACHE.get() {
        return Ok(*n);
    }
    let n = possible_cpus()?.len();
    Ok(*CACHE.get_or_init(|| n))
}

/// Parses a kernel CPU list such as `0-3,8,10-11`. `None` if malformed or empty.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The per-CPU slot size: `value_size` rounded up to 8.
pub fn stride(value_size: usize) -> usize {
    value_size.next_multiple_of(8)
}

/// The whole buffer size: `round_up(value_size, 8) * ncpus`.
pub fn buf_size(value_size: usize, ncpus: usize) -> usize {
    stride(value_size) * ncpus
}

/// Splits a per-CPU buffer into each CPU's `value_size` bytes (padding dropped).
pub fn split(buf: &[u8], value_size: usize) -> impl Iterator<Item = &[u8]> + '_ {
    buf.chunks_exact(stride(value_size).max(1))
        .map(move |c| &c[..value_size.min(c.len())])
}

/// Builds a per-CPU buffer holding `value` on every one of `ncpus` CPUs.
pub fn broadcast(value: &[u8], ncpus: usize) -> Vec<u8> {
    let stride = stride(value.len());
    let mut buf = vec![0; stride * ncpus];
    for slot in buf.chunks_exact_mut(stride.max(1)) {
        slot[..value.len()].copy_from_slice(value);
    }
    buf
}

/// Builds a per-CPU buffer from one value per CPU; `None` unless every value
/// is `value_size` bytes.
pub fn join<'a>(values: impl IntoIterator<Item = &'a [u8]>, value_size: usize) -> Option<Vec<u8>> {
    let stride = stride(value_size);
    let mut buf = Vec::new();
    for v in values {
        if v.len() != value_size {
            return None;
        }
        buf.extend_from_slice(v);
        buf.resize(buf.len() + stride - value_size, 0);
    }
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0,2-3"), Some(vec![0, 2, 3]));
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(parse_cpu_list("0-"), None);
    }

    #[test]
    fn system_possible_cpus_parse() {
        let n = num_possible_cpus().unwrap();
        assert!(n >= 1);
        assert_eq!(possible_cpus().unwrap().len(), n);
    }

    #[test]
    fn split_join_broadcast() {
        assert_eq!(buf_size(12, 3), 48);
        assert_eq!(buf_size(8, 3), 24);
        let a = [1u8; 12];
        let b = [2u8; 12];
        let buf = join([&a[..], &b[..]], 12).unwrap();
        assert_eq!(buf.len(), 32);
        assert_eq!(&buf[12..16], &[0; 4]);
        let parts: Vec<_> = split(&buf, 12).collect();
        assert_eq!(parts, vec![&a[..], &b[..]]);
        assert_eq!(join([&a[..4]], 12), None);
        assert_eq!(
            broadcast(&[9; 4], 2),
            vec![9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0]
        );
    }
}
