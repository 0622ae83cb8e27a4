//! The JSON Schema of a map's entry files ([`map_json_schema`]) against
//! the encoder, on random schemas (fuzz/src/bodies.rs: nested structs,
//! unions, bitfields, enums, address shapes, opaque blobs, ...) as a map's
//! key, value or per-CPU value:
//!
//! * every entry the encoder accepts validates: values built by the model
//!   (with the bytes they must give), values decoded from random bytes, and
//!   random mutations of both that the encoder still accepts; as one entry,
//!   a list and a state file;
//! * mutations the encoder refuses are counted by whether the schema
//!   refuses them too; most must be, the rest are the documented limits of
//!   JSON Schema (numbers written as strings are checked for form only, ...).
//!
//! `SHOW_LENIENT=1 cargo test --test json_schema -- --nocapture` prints the
//! encoder's message for every refused document the schema lets through.
//!
//! The validator is the `jsonschema` crate (draft-07, ECMA-262 patterns), a
//! reader of the schema independent of the code that wrote it.

#[path = "../fuzz/src/bodies.rs"]
mod bodies;
mod common;

use bodies::{gen_schema, inputs, model_value, Src};
use ebpf_sdk_codec::{map_json_schema, Codec, JsonSchemaOptions, Map, Value};
use ebpf_sdk_schema::{MapSchema, TypeNode};
use serde_json::Value as J;

/// A value as a JSON (or YAML) reader without big-number support gives it
/// to a validator: integers beyond 64 bits become floats.
fn to_json(v: &Value) -> Option<J> {
    Some(match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
            (Ok(x), _) => J::from(x),
            (_, Ok(x)) => J::from(x),
            _ => J::from(*i as f64),
        },
        Value::Float(f) => J::Number(serde_json::Number::from_f64(*f)?),
        Value::String(s) => J::from(s.as_str()),
        Value::List(l) => J::Array(l.iter().map(to_json).collect::<Option<_>>()?),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| Some((k.to_string(), to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// Where the random type goes.
#[derive(Clone, Copy, Debug)]
enum Side {
    Key,
    Value,
    PerCpu(usize),
}

fn map_for(t: &TypeNode, side: Side, order: ebpf_sdk_schema::ByteOrder) -> MapSchema {
    match side {
        Side::Key => common::map("hash", Some(t.clone()), Some(common::u32()), order),
        Side::Value => common::map("hash", Some(common::u32()), Some(t.clone()), order),
        Side::PerCpu(_) => common::map("percpu_hash", Some(common::u32()), Some(t.clone()), order),
    }
}

/// Whether the encoder takes `v` on `side`.
fn accepts(codec: &Codec, side: Side, v: &Value) -> bool {
    match side {
        Side::Key => codec.encode_key(v).is_ok(),
        Side::Value => codec.encode_value(v).is_ok(),
        Side::PerCpu(n) => codec.encode_per_cpu_value(v, n).is_ok(),
    }
}

/// The entry holding `v` on `side`, with a fixed other side.
fn entry(side: Side, v: &Value) -> Value {
    let mut m = Map::new();
    match side {
        Side::Key => {
            m.insert("key", v.clone());
            m.insert("value", Value::Int(7));
        }
        _ => {
            m.insert("key", Value::Int(7));
            m.insert("value", v.clone());
        }
    }
    Value::Map(m)
}

/// The documents holding one entry: as itself, in a list (what dump
/// prints), in a state file.
fn documents(e: &Value) -> [Value; 3] {
    let mut maps = Map::new();
    maps.insert("test_map", Value::List(vec![e.clone()]));
    let mut state = Map::new();
    state.insert("maps", Value::Map(maps));
    [
        e.clone(),
        Value::List(vec![e.clone(), Value::Null]),
        Value::Map(state),
    ]
}

/// Values a mutation puts somewhere: wrong kinds, numbers out of most
/// ranges, text in every sugar form, unknown fields.
fn replacement(src: &mut Src<'_>) -> Value {
    let mut odd = Map::new();
    odd.insert("zz_unknown", Value::Int(1));
    match src.below(20) {
        0 => Value::Int(1 << 70),
        1 => Value::Int(-1),
        2 => Value::Int(256),
        3 => Value::Int(70000),
        4 => Value::Float(1.5),
        5 => Value::Bool(true),
        6 => Value::from("abc"),
        7 => Value::from("0x1"),
        8 => Value::from("10.0.0.1"),
        9 => Value::from("2001:db8::1"),
        10 => Value::from("02:00:5e:10:00:01"),
        11 => Value::List(vec![]),
        12 => Value::List(vec![Value::Int(1); 20]),
        13 => Value::Map(odd),
        14 => Value::Null,
        15 => Value::from("0x0102030405060708090a0b0c0d0e0f101112131415161718"),
        16 => Value::Int(2),
        17 => Value::from("0x02"),
        18 => Value::from("-0x8000000000000001"),
        _ => Value::Int(i128::from(src.byte())),
    }
}

/// `v` with one random part replaced, or with a field added to one of its
/// mappings (a name the generator uses: a sibling union alternative, a
/// field of another struct, or one nobody has).
fn mutate(v: &Value, src: &mut Src<'_>, depth: usize) -> Value {
    let here = depth > 6 || src.chance(1, 3);
    match v {
        Value::List(items) if !items.is_empty() && !here => {
            let mut items = items.clone();
            let i = src.below(items.len() as u32) as usize;
            items[i] = mutate(&items[i], src, depth + 1);
            Value::List(items)
        }
        Value::Map(m) if !m.is_empty() && !here => {
            let mut m = m.clone();
            let keys: Vec<String> = m.keys().map(str::to_string).collect();
            let k = &keys[src.below(keys.len() as u32) as usize];
            let inner = mutate(m.get(k).unwrap_or(&Value::Null), src, depth + 1);
            m.insert(k.clone(), inner);
            Value::Map(m)
        }
        Value::Map(m) if src.chance(1, 2) => {
            let mut m = m.clone();
            let name = format!("f{}", src.below(40));
            let value = if src.chance(1, 2) {
                Value::Int(1)
            } else {
                replacement(src)
            };
            m.insert(name, value);
            Value::Map(m)
        }
        _ => replacement(src),
    }
}

#[derive(Default, Debug)]
struct Counts {
    schemas: usize,
    accepted: usize,
    refused: usize,
    refused_by_both: usize,
}

/// Checks one document: the schema must take it when the encoder takes
/// the value in it.
fn check(
    validator: &jsonschema::Validator,
    codec: &Codec,
    side: Side,
    v: &Value,
    counts: &mut Counts,
    what: &str,
    t: &TypeNode,
) {
    let ok = accepts(codec, side, v);
    let e = entry(side, v);
    for doc in documents(&e) {
        let Some(j) = to_json(&doc) else { return };
        let valid = validator.is_valid(&j);
        if ok {
            assert!(
                valid,
                "{what} accepted by the encoder but not by the schema ({side:?}):\n{}\nerrors: {:?}\ntype {t:#?}",
                doc.to_json(),
                validator.iter_errors(&j).map(|e| format!("{} at {}", e, e.instance_path())).collect::<Vec<_>>()
            );
            counts.accepted += 1;
        } else {
            counts.refused += 1;
            counts.refused_by_both += usize::from(!valid);
            if valid && std::env::var_os("SHOW_LENIENT").is_some() {
                let err = match side {
                    Side::Key => codec.encode_key(v).unwrap_err(),
                    Side::Value => codec.encode_value(v).unwrap_err(),
                    Side::PerCpu(n) => codec.encode_per_cpu_value(v, n).unwrap_err(),
                };
                eprintln!("LENIENT {err}");
            }
        }
    }
}

fn body(data: &[u8], counts: &mut Counts) {
    let mut src = Src::new(data);
    let (t, order) = gen_schema(&mut src);
    let side = match src.below(4) {
        0 => Side::Key,
        1 => Side::PerCpu(1 + src.below(4) as usize),
        _ => Side::Value,
    };
    let map = map_for(&t, side, order);
    let codec = Codec::new(&map).unwrap_or_else(|e| panic!("generated schema refused: {e}"));
    let ncpus = match side {
        Side::PerCpu(n) => Some(n),
        _ => None,
    };
    let schema = map_json_schema(&map, &JsonSchemaOptions::default().ncpus(ncpus)).unwrap();
    let validator = jsonschema::draft7::new(&schema)
        .unwrap_or_else(|e| panic!("invalid schema: {e}\n{schema:#}"));
    counts.schemas += 1;
    let plan = match side {
        Side::Key => codec.key_plan(),
        _ => codec.value_plan(),
    }
    .unwrap();
    // What the model builds: accepted on a plain side.
    let mut want = vec![0u8; plan.size()];
    let modelled = model_value(&mut src, &t, order, &mut want);
    // What decode shows for random bytes: accepted too.
    let bytes: Vec<u8> = (0..plan.size()).map(|_| src.byte()).collect();
    let decoded = plan.decode(&bytes).unwrap();
    let mut values = vec![modelled, decoded];
    if let Side::PerCpu(n) = side {
        // One value per CPU, each modelled.
        let per: Vec<Value> = (0..n)
            .map(|_| model_value(&mut src, &t, order, &mut vec![0u8; plan.size()]))
            .collect();
        values.push(Value::List(per));
    }
    for v in &values {
        if !matches!(side, Side::PerCpu(_)) {
            assert!(
                accepts(&codec, side, v),
                "modelled or decoded value refused: {}",
                v.to_json()
            );
        }
        check(&validator, &codec, side, v, counts, "value", &t);
        for _ in 0..6 {
            let m = mutate(v, &mut src, 0);
            check(&validator, &codec, side, &m, counts, "mutated value", &t);
        }
    }
}

#[test]
fn the_schema_takes_what_the_encoder_takes_and_refuses_most_of_the_rest() {
    let mut counts = Counts::default();
    for data in inputs(11, 1500, 200) {
        body(&data, &mut counts);
    }
    let Counts {
        schemas,
        accepted,
        refused,
        refused_by_both,
    } = counts;
    eprintln!(
        "{schemas} random schemas: {accepted} documents the encoder accepts, all valid; \
         {refused} it refuses, {refused_by_both} of them refused by the schema too \
         ({:.1}%)",
        100.0 * refused_by_both as f64 / refused.max(1) as f64
    );
    assert!(
        accepted > 10_000 && refused > 5_000,
        "{counts:?}",
        counts = (accepted, refused)
    );
    assert!(
        refused_by_both * 100 >= refused * 90,
        "the schema lets through {} of {refused} refused documents",
        refused - refused_by_both
    );
}
