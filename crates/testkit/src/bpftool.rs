//! `bpftool -j` as an independent reader and writer of maps.
//!
//! Keys and values are passed as `hex` byte lists and read back from the
//! JSON byte arrays (`["0x01", ...]`), so tests compare exact bytes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::env::find_bpftool;
use crate::TestkitError;

/// One map element as `bpftool -j map dump/lookup` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Key bytes (empty for queues and stacks).
    pub key: Vec<u8>,
    /// Value bytes; `None` for per-CPU maps.
    pub value: Option<Vec<u8>>,
    /// Per-CPU maps: `(cpu, value bytes)` for each possible CPU.
    pub per_cpu: Vec<(u32, Vec<u8>)>,
    /// The BTF-formatted element, when the map has BTF.
    pub formatted: Option<Value>,
}

fn bpftool_path() -> Result<std::path::PathBuf, TestkitError> {
    find_bpftool().ok_or(TestkitError::Missing {
        what: "bpftool".into(),
        hint: "apt-get install bpftool",
    })
}

/// Runs `bpftool ARGS` and returns its standard output.
pub fn run(args: &[&str]) -> Result<String, TestkitError> {
    let out = run_raw(args)?;
    if !out.status.success() {
        return Err(command_error(args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cmdline(args: &[&str]) -> String {
    format!("bpftool {}", args.join(" "))
}

fn run_raw(args: &[&str]) -> Result<std::process::Output, TestkitError> {
    Command::new(bpftool_path()?)
        .args(args)
        .output()
        .map_err(|source| TestkitError::Spawn {
            cmd: cmdline(args),
            source,
        })
}

fn command_error(args: &[&str], out: &std::process::Output) -> TestkitError {
    TestkitError::failed(cmdline(args), out)
}

/// Runs `bpftool -j ARGS` and parses its JSON output.
pub fn json(args: &[&str]) -> Result<Value, TestkitError> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let out = run(&full)?;
    serde_json::from_str(&out).map_err(|_| TestkitError::Json {
        cmd: cmdline(&full),
        what: "JSON",
        output: out,
    })
}

/// `hex` followed by each byte as two hex digits, as bpftool takes keys and values.
pub fn hex_args(bytes: &[u8]) -> Vec<String> {
    std::iter::once("hex".to_string())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect()
}

/// Parses a JSON byte array such as `["0x01","0x0a"]`.
pub fn parse_bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_array()?
        .iter()
        .map(|b| {
            let s = b.as_str()?;
            u8::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
        })
        .collect()
}

fn parse_entry(v: &Value, cmd: &str) -> Result<Entry, TestkitError> {
    let bad = |what| TestkitError::Json {
        cmd: cmd.to_string(),
        what,
        output: v.to_string(),
    };
    let key = match v.get("key") {
        Some(k) => parse_bytes(k).ok_or_else(|| bad("a key byte array"))?,
        None => Vec::new(),
    };
    let value = match v.get("value") {
        Some(val) => Some(parse_bytes(val).ok_or_else(|| bad("a value byte array"))?),
        None => None,
    };
    let mut per_cpu = Vec::new();
    if let Some(values) = v.get("values").and_then(Value::as_array) {
        for c in values {
            let cpu = c
                .get("cpu")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("a cpu number"))?;
            let bytes = c
                .get("value")
                .and_then(parse_bytes)
                .ok_or_else(|| bad("a per-CPU value byte array"))?;
            per_cpu.push((cpu, bytes));
        }
    }
    Ok(Entry {
        key,
        value,
        per_cpu,
        formatted: v.get("formatted").cloned(),
    })
}

fn path_str(path: &Path) -> Result<&str, TestkitError> {
    path.to_str().ok_or_else(|| TestkitError::Missing {
        what: format!("UTF-8 path {}", path.display()),
        hint: "use UTF-8 paths",
    })
}

/// `bpftool -j map dump pinned PATH`.
pub fn map_dump(path: &Path) -> Result<Vec<Entry>, TestkitError> {
    let args = ["map", "dump", "pinned", path_str(path)?];
    let v = json(&args)?;
    let cmd = cmdline(&args);
    v.as_array()
        .ok_or(TestkitError::Json {
            cmd: cmd.clone(),
            what: "an array",
            output: v.to_string(),
        })?
        .iter()
        .map(|e| parse_entry(e, &cmd))
        .collect()
}

/// `bpftool -j map lookup pinned PATH key hex ..`; `None` if the key is absent.
pub fn map_lookup(path: &Path, key: &[u8]) -> Result<Option<Entry>, TestkitError> {
    let hex = hex_args(key);
    let mut args = vec!["-j", "map", "lookup", "pinned", path_str(path)?, "key"];
    args.extend(hex.iter().map(String::as_str));
    let out = run_raw(&args)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A missing key: exit status 254 and `null` on stdout.
    if stdout.trim() == "null" {
        return Ok(None);
    }
    if !out.status.success() {
        return Err(command_error(&args, &out));
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|_| TestkitError::Json {
        cmd: cmdline(&args),
        what: "JSON",
        output: stdout.to_string(),
    })?;
    parse_entry(&v, &cmdline(&args)).map(Some)
}

/// `bpftool map update pinned PATH key hex .. value hex .. FLAG`
/// (`FLAG`: `any`, `exist` or `noexist`). Per-CPU maps get `value` on every CPU.
pub fn map_update(path: &Path, key: &[u8], value: &[u8], flag: &str) -> Result<(), TestkitError> {
    let (k, v) = (hex_args(key), hex_args(value));
    let mut args = vec!["map", "update", "pinned", path_str(path)?, "key"];
    args.extend(k.iter().map(String::as_str));
    args.push("value");
    args.extend(v.iter().map(String::as_str));
    args.push(flag);
    run(&args).map(drop)
}

/// `bpftool map update pinned PATH key hex .. value pinned OBJ`: stores a
/// pinned inner map or program in a map-in-map or program array.
pub fn map_update_pinned_value(path: &Path, key: &[u8], object: &Path) -> Result<(), TestkitError> {
    let k = hex_args(key);
    let mut args = vec!["map", "update", "pinned", path_str(path)?, "key"];
    args.extend(k.iter().map(String::as_str));
    args.extend(["value", "pinned", path_str(object)?]);
    run(&args).map(drop)
}

/// `bpftool map push pinned PATH value hex ..` (queue, stack, bloom filter).
pub fn map_push(path: &Path, value: &[u8]) -> Result<(), TestkitError> {
    let v = hex_args(value);
    let mut args = vec!["map", "push", "pinned", path_str(path)?, "value"];
    args.extend(v.iter().map(String::as_str));
    run(&args).map(drop)
}

/// `bpftool -j map peek pinned PATH` (queue, stack); `None` when empty.
pub fn map_peek(path: &Path) -> Result<Option<Vec<u8>>, TestkitError> {
    pop_or_peek(path, "peek")
}

/// `bpftool -j map pop pinned PATH` (queue, stack); `None` when empty.
pub fn map_pop(path: &Path) -> Result<Option<Vec<u8>>, TestkitError> {
    pop_or_peek(path, "pop")
}

fn pop_or_peek(path: &Path, verb: &str) -> Result<Option<Vec<u8>>, TestkitError> {
    let args = ["-j", "map", verb, "pinned", path_str(path)?];
    let out = run_raw(&args)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim() == "null" {
        return Ok(None);
    }
    if !out.status.success() {
        return Err(command_error(&args, &out));
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|_| TestkitError::Json {
        cmd: cmdline(&args),
        what: "JSON",
        output: stdout.to_string(),
    })?;
    Ok(Some(
        parse_entry(&v, &cmdline(&args))?.value.unwrap_or_default(),
    ))
}

/// `bpftool map create PATH type TYPE key K value V entries N name NAME flags F`.
pub fn map_create(
    path: &Path,
    map_type: &str,
    key: u32,
    value: u32,
    entries: u32,
    name: &str,
    flags: u32,
) -> Result<(), TestkitError> {
    let (k, v, n, f) = (
        key.to_string(),
        value.to_string(),
        entries.to_string(),
        flags.to_string(),
    );
    let args = [
        "map",
        "create",
        path_str(path)?,
        "type",
        map_type,
        "key",
        &k,
        "value",
        &v,
        "entries",
        &n,
        "name",
        name,
        "flags",
        &f,
    ];
    run(&args).map(drop)
}

/// `bpftool -j map show pinned PATH` (id, type, name, flags, sizes, `frozen`).
pub fn map_show(path: &Path) -> Result<Value, TestkitError> {
    json(&["map", "show", "pinned", path_str(path)?])
}

/// `bpftool -j prog show pinned PATH` (id, type, name, `map_ids`).
pub fn prog_show(path: &Path) -> Result<Value, TestkitError> {
    json(&["prog", "show", "pinned", path_str(path)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_args(&[1, 0xab]), vec!["hex", "01", "ab"]);
        let v: Value = serde_json::from_str(r#"["0x01","0xab"]"#).unwrap();
        assert_eq!(parse_bytes(&v), Some(vec![1, 0xab]));
        assert_eq!(parse_bytes(&serde_json::json!(["zz"])), None);
    }

    #[test]
    fn parses_plain_and_per_cpu_entries() {
        let v: Value = serde_json::from_str(r#"{"key":["0x01","0x00"],"value":["0x02"]}"#).unwrap();
        let e = parse_entry(&v, "t").unwrap();
        assert_eq!((e.key, e.value), (vec![1, 0], Some(vec![2])));
        let v: Value = serde_json::from_str(
            r#"{"key":["0x01"],"values":[{"cpu":0,"value":["0x0a"]},{"cpu":1,"value":["0x0b"]}]}"#,
        )
        .unwrap();
        let e = parse_entry(&v, "t").unwrap();
        assert_eq!(e.per_cpu, vec![(0, vec![10]), (1, vec![11])]);
        assert_eq!(e.value, None);
    }
}
