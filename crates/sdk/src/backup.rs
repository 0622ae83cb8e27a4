//! A map's entries saved in `apply` format, to restore them later.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ebpf_sdk_codec::Value;

use crate::handle::MapHandle;
use crate::SdkError;

/// Saves every entry of `map` as JSON Lines (`{"key": .., "value": ..}`, no
/// per-CPU totals) to a new file readable only by its owner (mode 0600);
/// returns how many.
pub(crate) fn write(map: &MapHandle, path: &Path) -> Result<usize, SdkError> {
    let io = |e| SdkError::write(path, e);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    let n = map.dump(|d| {
        let mut m = ebpf_sdk_codec::Map::new();
        if !matches!(d.key, Value::Null) {
            m.insert("key", d.key);
        }
        m.insert("value", d.value);
        writeln!(out, "{}", Value::Map(m).to_json())
    })?;
    out.flush().map_err(io)?;
    Ok(n)
}
