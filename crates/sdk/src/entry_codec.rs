//! Entries <-> bytes for one map, with no kernel: what `encode`, `decode`
//! and every map operation share.

use std::sync::OnceLock;

use ebpf_sdk_codec::{sum_per_cpu, Codec, CodecError, CodecOptions, Value};
use ebpf_sdk_schema::{ByteOrder, MapSchema};

use crate::error::{InputError, InputErrorKind, Location};
use crate::handle::Decoded;
use crate::SdkError;

/// A value that does not fit, at `at`.
fn misfit(at: &Location, e: CodecError) -> SdkError {
    InputError::new(at.clone(), InputErrorKind::Value(e)).into()
}

/// A map's compiled codec, per-CPU aware.
#[derive(Debug)]
pub struct EntryCodec {
    schema: MapSchema,
    codec: Codec,
    /// Codecs forcing one byte order for every integer (legacy templates'
    /// `byteOrder`), built on first use: [little, big].
    forced: [OnceLock<Codec>; 2],
    /// Value slots per entry: possible CPUs for per-CPU maps, else `None`.
    ncpus: Option<usize>,
}

fn layout(schema: &MapSchema, e: CodecError) -> SdkError {
    SdkError::Layout {
        what: format!("schema of `{}`", schema.name),
        source: Box::new(e),
    }
}

impl EntryCodec {
    /// Compiles the schema. `ncpus` is the number of possible CPUs, used only
    /// for per-CPU maps.
    pub fn new(schema: &MapSchema, ncpus: usize) -> Result<Self, SdkError> {
        let codec = Codec::new(schema).map_err(|e| layout(schema, e))?;
        Ok(EntryCodec {
            schema: schema.clone(),
            codec,
            forced: Default::default(),
            ncpus: schema.map_type.per_cpu().then_some(ncpus.max(1)),
        })
    }

    /// The schema.
    pub fn schema(&self) -> &MapSchema {
        &self.schema
    }

    /// Slots per value for per-CPU maps.
    pub fn per_cpu(&self) -> Option<usize> {
        self.ncpus
    }

    /// Bytes of one encoded key.
    pub fn key_len(&self) -> usize {
        self.schema.key_size as usize
    }

    /// Bytes of one encoded value: `round_up(value_size, 8) * ncpus` for per-CPU maps.
    pub fn value_len(&self) -> usize {
        match self.ncpus {
            Some(n) => self.codec.per_cpu_value_len(n),
            None => self.schema.value_size as usize,
        }
    }

    fn codec_for(&self, order: Option<ByteOrder>) -> Result<&Codec, SdkError> {
        let Some(order) = order else {
            return Ok(&self.codec);
        };
        let slot = &self.forced[usize::from(order == ByteOrder::Big)];
        if let Some(c) = slot.get() {
            return Ok(c);
        }
        let c = Codec::with_options(
            &self.schema,
            &CodecOptions::default().byte_order(Some(order)),
        )
        .map_err(|e| layout(&self.schema, e))?;
        Ok(slot.get_or_init(|| c))
    }

    /// Encodes a key into `buf` (`key_len()` bytes); `at` names the entry in errors.
    pub fn encode_key_into(
        &self,
        key: &Value,
        order: Option<ByteOrder>,
        at: &Location,
        buf: &mut [u8],
    ) -> Result<(), SdkError> {
        if self.schema.key_size == 0 {
            return Ok(());
        }
        self.codec_for(order)?
            .encode_key_into(key, buf)
            .map_err(|e| misfit(at, e))
    }

    /// `Ok` when the map holds entries a user writes; for a ring buffer,
    /// user ring buffer, arena or perf event array,
    /// [`SdkError::NothingToWrite`] saying what the map is for and what
    /// reads it. Every value encoding checks it first.
    ///
    /// ```
    /// use ebpf_sdk::{EntryCodec, SdkError};
    ///
    /// let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/../btf/tests/fixtures/zoo.bpf.o");
    /// let doc = ebpf_sdk::btf::extract_file(zoo)?;
    /// let rb = EntryCodec::new(doc.map("rb")?, 1)?;
    /// assert!(matches!(rb.writable(), Err(SdkError::NothingToWrite { .. })));
    /// assert!(EntryCodec::new(doc.map("q")?, 1)?.writable().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writable(&self) -> Result<(), SdkError> {
        match self.schema.map_type.nothing_to_write() {
            Some(why) => Err(SdkError::NothingToWrite {
                map: self.schema.name.clone(),
                map_type: self.schema.map_type,
                why,
            }),
            None => Ok(()),
        }
    }

    /// Encodes a value into `buf` (`value_len()` bytes). For per-CPU maps a
    /// list gives one value per CPU and a single value fills every CPU.
    /// Refused for maps with nothing to write ([`EntryCodec::writable`]).
    pub fn encode_value_into(
        &self,
        value: &Value,
        order: Option<ByteOrder>,
        at: &Location,
        buf: &mut [u8],
    ) -> Result<(), SdkError> {
        self.writable()?;
        if self.schema.value_size == 0 {
            return Ok(());
        }
        let codec = self.codec_for(order)?;
        match self.ncpus {
            Some(n) => codec.encode_per_cpu_value_into(value, n, buf),
            None => codec.encode_value_into(value, buf),
        }
        .map_err(|e| misfit(at, e))
    }

    /// Encodes one JSON Lines entry straight from its text (see
    /// [`Codec::encode_json_entry`]); `false` means the text needs the
    /// general path, which also reports what is wrong with it.
    pub fn encode_json_entry(&self, text: &[u8], kbuf: &mut [u8], vbuf: &mut [u8]) -> bool {
        self.ncpus.is_none() && self.codec.encode_json_entry(text, kbuf, vbuf)
    }

    /// [`EntryCodec::encode_key_into`], allocating.
    pub fn encode_key(
        &self,
        key: &Value,
        order: Option<ByteOrder>,
        at: &Location,
    ) -> Result<Vec<u8>, SdkError> {
        let mut buf = vec![0u8; self.key_len()];
        self.encode_key_into(key, order, at, &mut buf)?;
        Ok(buf)
    }

    /// [`EntryCodec::encode_value_into`], allocating.
    pub fn encode_value(
        &self,
        value: &Value,
        order: Option<ByteOrder>,
        at: &Location,
    ) -> Result<Vec<u8>, SdkError> {
        let mut buf = vec![0u8; self.value_len()];
        self.encode_value_into(value, order, at, &mut buf)?;
        Ok(buf)
    }

    /// Appends the JSON text of the entry (as [`crate::Decoded::into_value`]
    /// prints it) straight from its bytes. `Ok(false)`, writing nothing,
    /// for maps that need the general path: per-CPU, keyless, valueless.
    pub fn write_json_entry(
        &self,
        key: &[u8],
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, SdkError> {
        let (Some(kp), Some(vp)) = (self.codec.key_plan(), self.codec.value_plan()) else {
            return Ok(false);
        };
        if self.ncpus.is_some() {
            return Ok(false);
        }
        let start = out.len();
        out.extend_from_slice(b"{\"key\":");
        let r = kp.decode_json_into(key, out).and_then(|()| {
            out.extend_from_slice(b",\"value\":");
            vp.decode_json_into(value, out)
        });
        if let Err(e) = r {
            out.truncate(start);
            return Err(self.read_back(e));
        }
        out.push(b'}');
        Ok(true)
    }

    fn read_back(&self, source: CodecError) -> SdkError {
        SdkError::Decode {
            what: format!("{} (bytes read back)", self.schema.name),
            source: Box::new(source),
        }
    }

    /// Decodes a key.
    pub fn decode_key(&self, key: &[u8]) -> Result<Value, SdkError> {
        if self.schema.key_size == 0 {
            return Ok(Value::Null);
        }
        self.codec.decode_key(key).map_err(|e| self.read_back(e))
    }

    /// Decodes one entry's key and value bytes, e.g. as read from the map
    /// or given by a caller: bytes of the wrong length are an
    /// [`InputErrorKind::Length`] error naming the part. For map-in-map and
    /// program arrays the value read back is the inner map's or program's
    /// kernel id.
    ///
    /// ```
    /// let obj = ebpf_sdk::Object::from_elf("../../firewall-ebpf/firewall.bpf.o")?;
    /// let codec = obj.codec("ingress_node_firewall_table_map")?;
    /// let key = [0x40, 0, 0, 0, 6, 0, 0, 0, 10, 10, 10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    /// let d = codec.decode_entry(&key, &vec![0; codec.value_len()])?;
    /// assert_eq!(d.key.to_json(), r#"{"prefixLen":64,"ingress_ifindex":6,"ip_data":"10.10.10.2"}"#);
    /// let e = codec.decode_entry(&key[..20], &[]).unwrap_err();
    /// assert_eq!(e.to_string(), "20 bytes given, the key is 24 bytes");
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<Decoded, SdkError> {
        for (what, given, expected) in [
            ("key", key.len(), self.key_len()),
            ("value", value.len(), self.value_len()),
        ] {
            if given != expected {
                return Err(InputError::new(
                    Location::default(),
                    InputErrorKind::Length {
                        what,
                        given,
                        expected,
                        at_least: false,
                    },
                )
                .into());
            }
        }
        let (value, total) = if self.schema.map_type.holds_object_refs() {
            let id = value
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_ne_bytes);
            (Value::Int(i128::from(id)), None)
        } else {
            self.decode_value(value)?
        };
        Ok(Decoded {
            key: self.decode_key(key)?,
            value,
            total,
        })
    }

    /// Decodes a value: for per-CPU maps a list (one per CPU) and the total
    /// of numeric fields over CPUs.
    pub fn decode_value(&self, value: &[u8]) -> Result<(Value, Option<Value>), SdkError> {
        match self.ncpus {
            Some(n) => {
                let per = self
                    .codec
                    .decode_per_cpu_value(value, n)
                    .map_err(|e| self.read_back(e))?;
                let total = match &per {
                    Value::List(items) => Some(sum_per_cpu(items)),
                    _ => None,
                };
                Ok((per, total))
            }
            None if self.schema.value_size == 0 => Ok((Value::Null, None)),
            None => Ok((
                self.codec
                    .decode_value(value)
                    .map_err(|e| self.read_back(e))?,
                None,
            )),
        }
    }
}
