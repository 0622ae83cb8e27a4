//! `events`: records from a perf event array, decoded, one JSON line each.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ebpf_sdk::Value;

use crate::args::MapArgs;
use crate::Ui;

/// `events`: until `count` events, `timeout` seconds or Ctrl-C. The record
/// type is `type_name`, or the one the map declares.
pub(crate) fn events(
    target: &MapArgs,
    type_name: Option<&str>,
    count: Option<usize>,
    timeout: Option<f64>,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    if type_name.is_some() && target.schema.elf.is_none() {
        bail!("--type needs --elf FILE: the record type comes from the object's BTF");
    }
    let (obj, name, pin) = target.resolve()?;
    let schema = obj.map(&name)?;
    if schema.map_type != ebpf_sdk::MapType::PerfEventArray {
        bail!(
            "{} is a {}, not a perf_event_array",
            schema.name,
            schema.map_type
        );
    }
    let mut reader = obj.events_at(&name, &pin, type_name)?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .context("cannot handle SIGINT")?;
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    let mut out = io::stdout().lock();
    let mut seen = 0usize;
    ui.note(&format!(
        "{}: reading events on CPUs {:?} (Ctrl-C stops)",
        schema.name,
        reader.cpus()
    ));
    while !stop.load(Ordering::Relaxed) {
        if count.is_some_and(|c| seen >= c) {
            break;
        }
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => left.min(Duration::from_millis(200)),
                None => break,
            },
            None => Duration::from_millis(200),
        };
        let max = count.map_or(1024, |c| c - seen);
        for (cpu, mut v) in reader.next_batch(wait, max)? {
            if let Value::Map(m) = &mut v {
                m.insert("cpu", Value::Int(i128::from(cpu)));
            }
            writeln!(out, "{}", v.to_json())?;
            seen += 1;
        }
        out.flush()?;
    }
    if reader.lost() > 0 {
        eprintln!(
            "{}: {} events were lost (the ring was full)",
            schema.name,
            reader.lost()
        );
    }
    Ok(ExitCode::SUCCESS)
}
