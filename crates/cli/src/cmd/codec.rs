//! `encode` and `decode`: entries <-> bytes, offline.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use ebpf_sdk::{Decoded, Value};

use super::{gather, hex_groups, hex_plain, parse_hex, write_out};
use crate::args::{EncodeFormat, SchemaArgs};
use crate::render::{EntryWriter, Format};

/// `encode`: entries from a file or the arguments, as key and value bytes.
pub(crate) fn encode(
    args: &SchemaArgs,
    file: Option<&Path>,
    key: Option<&str>,
    value: Option<&str>,
    output: EncodeFormat,
) -> anyhow::Result<ExitCode> {
    let obj = args.object()?;
    let codec = obj.codec(&args.map_name(&obj)?)?;
    // Before the input: a template of such a map holds no entry.
    codec.writable()?;
    let entries = gather(file, key, value)?;
    // Encode everything first: on any error, nothing is printed.
    let mut encoded = Vec::new();
    for e in &entries {
        let k = codec.encode_key(&e.key, e.byte_order, &e.location)?;
        let v = match &e.value {
            Some(v) => Some(codec.encode_value(v, e.byte_order, &e.location)?),
            None => None,
        };
        encoded.push((k, v));
    }
    let mut out = String::new();
    for (k, v) in encoded {
        match output {
            EncodeFormat::Hex => {
                if !k.is_empty() {
                    out.push_str(&format!("key:   {}\n", hex_groups(&k)));
                }
                if let Some(v) = v {
                    out.push_str(&format!("value: {}\n", hex_groups(&v)));
                }
            }
            EncodeFormat::Json => {
                let mut m = serde_json::Map::new();
                m.insert("key".into(), hex_plain(&k).into());
                if let Some(v) = v {
                    m.insert("value".into(), hex_plain(&v).into());
                }
                out.push_str(&serde_json::Value::Object(m).to_string());
                out.push('\n');
            }
        }
    }
    write_out(None, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `decode`: key and value bytes of a map, or bytes of any BTF type
/// (`--type`), as named fields.
pub(crate) fn decode(
    args: &SchemaArgs,
    key: Option<&str>,
    value: Option<&str>,
    type_name: Option<&str>,
    output: Format,
) -> anyhow::Result<ExitCode> {
    let obj = args.object()?;
    let decoded = match type_name {
        Some(t) => {
            let node = obj.type_node(t)?;
            let bytes = parse_hex(value.unwrap_or(""), "--value")?;
            if bytes.len() < node.size as usize {
                bail!(
                    "--value: {} bytes given, {} is {} bytes",
                    bytes.len(),
                    node.name,
                    node.size
                );
            }
            Decoded {
                key: Value::Null,
                value: obj.decode_type(t, &bytes)?,
                total: None,
            }
        }
        None => decode_entry(args, &obj, key, value)?,
    };
    let mut w = EntryWriter::new(io::stdout().lock(), output);
    w.write(decoded)?;
    w.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn decode_entry(
    args: &SchemaArgs,
    obj: &ebpf_sdk::Object,
    key: Option<&str>,
    value: Option<&str>,
) -> anyhow::Result<Decoded> {
    let codec = obj.codec(&args.map_name(obj)?)?;
    if key.is_none() && value.is_none() {
        bail!("give --key HEX and/or --value HEX");
    }
    let kb = key.map(|k| parse_hex(k, "--key")).transpose()?;
    let vb = value.map(|v| parse_hex(v, "--value")).transpose()?;
    if let Some(k) = &kb {
        if k.len() != codec.key_len() {
            bail!(
                "--key: {} bytes given, the map's key is {} bytes",
                k.len(),
                codec.key_len()
            );
        }
    }
    if let Some(v) = &vb {
        if v.len() != codec.value_len() {
            bail!(
                "--value: {} bytes given, the map's value is {} bytes",
                v.len(),
                codec.value_len()
            );
        }
    }
    let key = kb
        .as_deref()
        .map(|k| codec.decode_key(k))
        .transpose()?
        .unwrap_or(Value::Null);
    let (value, total) = match vb.as_deref() {
        Some(v) => codec.decode_value(v)?,
        None => (Value::Null, None),
    };
    Ok(Decoded { key, value, total })
}
