//! `export`: serve Prometheus metrics of maps (or print one scrape).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use ebpf_sdk::schema::MapSchema;
use ebpf_sdk::Object;
use ebpf_sdk_ops::http::{serve_metrics, Endpoint};
use ebpf_sdk_ops::metrics::{
    Exporter, Exposition, KindOverride, MetricKind, MetricsOptions, ScrapeEvent,
};

use crate::args::{ExportArgs, ExpositionFormat};
use crate::Ui;

/// The maps to export with their pins: `--map`s of the schema, or
/// `--pinned` maps described from the kernel's BTF.
fn maps(args: &ExportArgs) -> anyhow::Result<Vec<(MapSchema, PathBuf)>> {
    if args.elf.is_none() && args.schema.is_none() {
        if args.pinned.is_empty() {
            bail!("give the maps with --elf FILE (or --schema FILE) and --map NAME, or with --pinned PATH");
        }
        return args
            .pinned
            .iter()
            .map(|pin| {
                let obj = Object::from_pinned(pin)?;
                Ok((obj.only_map()?.clone(), pin.clone()))
            })
            .collect();
    }
    if args.maps.is_empty() {
        bail!("give the maps to export with --map NAME (repeatable)");
    }
    let mut obj = match (&args.elf, &args.schema) {
        (Some(elf), _) => Object::from_elf(elf)?,
        (None, Some(schema)) => Object::from_schema_file(schema)?,
        (None, None) => unreachable!("checked above"),
    };
    if let Some(dir) = &args.pin_dir {
        obj = obj.with_pin_dir(dir);
    }
    args.maps
        .iter()
        .map(|name| Ok((obj.map(name)?.clone(), obj.pin_path(name)?)))
        .collect()
}

/// The metric options the arguments ask for.
fn options(args: &ExportArgs) -> anyhow::Result<MetricsOptions> {
    let mut kinds = Vec::new();
    for (list, kind) in [
        (&args.counter, MetricKind::Counter),
        (&args.gauge, MetricKind::Gauge),
    ] {
        for text in list {
            kinds.push(KindOverride::parse(text, kind)?);
        }
    }
    Ok(MetricsOptions {
        prefix: args.prefix.clone(),
        per_cpu_label: args.per_cpu,
        kinds,
        ..Default::default()
    })
}

/// `export`.
pub(crate) fn export(args: &ExportArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let mut exporter = Exporter::new(maps(args)?, &options(args)?)?;
    if args.once {
        let format = match args.format {
            ExpositionFormat::Text => Exposition::Text,
            ExpositionFormat::Openmetrics => Exposition::OpenMetrics,
        };
        let mut text = Vec::new();
        let events = exporter.scrape(format, &mut text);
        let mut out = std::io::stdout().lock();
        out.write_all(&text)?;
        out.flush()?;
        let mut failed = false;
        for e in &events {
            if let ScrapeEvent::Failed { map, error } = e {
                eprintln!("error: {map}: not read: {error}");
                failed = true;
            }
        }
        if failed {
            return Ok(ExitCode::from(crate::exit::KERNEL));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let endpoint = Endpoint::bind(&args.listen)?;
    let addr = endpoint.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .context("cannot handle SIGINT")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
        .context("cannot handle SIGTERM")?;
    let names: Vec<&str> = exporter.maps().map(|m| m.map()).collect();
    ui.note(&format!(
        "export: metrics of {} at http://{addr}/metrics (no authentication)",
        names.join(", ")
    ));
    if !addr.ip().is_loopback() {
        ui.note(&format!(
            "export: warning: {addr} is reachable from other machines and the endpoint has no authentication"
        ));
    }
    // Log a map's failure when it starts or changes, not on every scrape.
    let mut failing: HashMap<String, String> = HashMap::new();
    serve_metrics(&endpoint, &mut exporter, &stop, &mut |event| match event {
        ScrapeEvent::Failed { map, error } if failing.get(map) != Some(error) => {
            eprintln!("export: {map}: not read: {error}");
            failing.insert(map.clone(), error.clone());
        }
        ScrapeEvent::Reopened {
            map,
            old_id,
            new_id,
        } => {
            failing.remove(map);
            ui.note(&format!(
                "export: {map}: another map is pinned now (id {old_id} -> {new_id}); reading it"
            ));
        }
        _ => {}
    });
    ui.note("export: stopped");
    Ok(ExitCode::SUCCESS)
}
