//! `apply`: make one map, or every map a state file names, hold the file's
//! entries; diff lines and a summary on stdout, progress on a terminal.

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ebpf_sdk::{
    ApplyEvent, ApplyOptions, ApplyRecord, ApplyReport, Backup, InputErrorKind, MapHandle, SdkError,
};

use ebpf_sdk_ops::http::{serve_health, Endpoint};
use ebpf_sdk_ops::watch::{Outcome, Reconciler, WatchOptions, WatchTarget};

use crate::args::{ApplyArgs, LogFormat};
use crate::render;
use crate::Ui;

/// What apply shows while it works: a progress spinner on a terminal, each
/// difference on stdout, the backup's path.
struct View<'a> {
    ui: &'a Ui,
    /// How the schema was given, as arguments a restore command repeats.
    schema_args: Vec<String>,
    dry_run: bool,
    color: bool,
    progress: Option<indicatif::ProgressBar>,
    out: io::BufWriter<io::StdoutLock<'static>>,
    /// The first error writing to stdout (output stops there).
    out_err: Option<io::Error>,
}

impl View<'_> {
    fn event(&mut self, map: &MapHandle, ev: ApplyEvent<'_>) {
        match ev {
            ApplyEvent::Validated(n) => self.progress("entries validated", n),
            ApplyEvent::Written(n) => self.progress("entries written", n),
            ApplyEvent::Diff(kind, d)
                if (self.dry_run || !self.ui.quiet) && self.out_err.is_none() =>
            {
                if let Err(e) = render::write_diff(&mut self.out, kind, d, self.color) {
                    self.out_err = Some(e);
                }
            }
            ApplyEvent::BackedUp(path, n) => self.ui.note(&format!(
                "{}: backup of the {n} current entries in {} (restore: {})",
                map.name(),
                path.display(),
                self.restore_command(map, path)
            )),
            ApplyEvent::Done(report) => {
                if let Err(e) = self.finish(map.name(), report) {
                    self.out_err.get_or_insert(e);
                }
            }
            _ => {}
        }
    }

    /// The command that makes `map` hold the backup in `path` again, quoted
    /// for a POSIX shell, with absolute paths so it runs from anywhere.
    fn restore_command(&self, map: &MapHandle, path: &Path) -> String {
        let abs = |p: &Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        let mut words: Vec<String> = vec!["ebpf-sdk".into(), "apply".into()];
        words.extend(self.schema_args.iter().cloned());
        if !self.schema_args.is_empty() {
            words.extend(["--map".into(), map.name().to_string()]);
        }
        if let Some(pin) = map.pin() {
            words.extend(["--pinned".into(), abs(pin)]);
        }
        words.extend(["-f".into(), abs(path), "--prune".into()]);
        words
            .iter()
            .map(|w| render::shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The first error writing to stdout, if any.
    fn check(&mut self) -> anyhow::Result<()> {
        match self.out_err.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn progress(&self, what: &'static str, n: usize) {
        if let Some(pb) = &self.progress {
            pb.set_message(what);
            pb.set_position(n as u64);
        }
    }

    /// After one map: the summary.
    fn finish(&mut self, map: &str, report: &ApplyReport) -> io::Result<()> {
        if let Some(pb) = &self.progress {
            pb.finish_and_clear();
        }
        if std::env::var_os("EBPF_SDK_TIMINGS").is_some() {
            eprintln!(
                "timings: {} entries; validate+encode {:.3}s, diff {:.3}s, kernel write {:.3}s",
                report.entries,
                report.validate_time.as_secs_f64(),
                report.diff_time.as_secs_f64(),
                report.write_time.as_secs_f64()
            );
        }
        if !self.ui.quiet || self.dry_run {
            render::write_report(&mut self.out, map, report, self.dry_run)?;
        }
        Ok(())
    }
}

/// The options the arguments ask for.
fn options(args: &ApplyArgs, cancel: Arc<AtomicBool>) -> ApplyOptions {
    let mut opts = ApplyOptions {
        prune: args.prune,
        dry_run: args.dry_run,
        cancel: Some(cancel),
        backup: match (&args.backup, args.prune && !args.no_backup) {
            (Some(p), _) => Backup::To(p.clone()),
            (None, true) => Backup::Auto,
            (None, false) => Backup::Off,
        },
        ..Default::default()
    };
    if let Some(n) = std::env::var("EBPF_SDK_PARSE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.parse_threads = n;
    }
    opts
}

/// Library errors that name a library call, said in the command's terms.
fn in_cli_terms(e: SdkError) -> anyhow::Error {
    match e {
        SdkError::Input(i) => match i.kind {
            InputErrorKind::NoEntries => anyhow::anyhow!(
                "{}: no entries; to make the map empty on purpose, apply a file holding `[]` with --prune",
                i.location
            ),
            InputErrorKind::MapsNotNamed => anyhow::anyhow!(
                "{}: this file does not name maps (`maps: {{NAME: [...]}}`); give --map NAME",
                i.location
            ),
            _ => SdkError::Input(i).into(),
        },
        e => e.into(),
    }
}

/// `apply`.
pub(crate) fn apply(args: &ApplyArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    // Ctrl-C and SIGTERM: finish the batch in flight, then stop and say how far we got.
    let cancel = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, cancel.clone())
        .context("cannot handle SIGINT")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, cancel.clone())
        .context("cannot handle SIGTERM")?;
    let opts = options(args, cancel.clone());
    if args.watch {
        return watch(args, ui, cancel, opts);
    }
    let file = args.file.as_path();
    let name = file.display().to_string();
    let reader: Box<dyn io::BufRead> = if file == Path::new("-") {
        Box::new(BufReader::new(io::stdin()))
    } else {
        // Smaller than the blocks JSON Lines are read in (256 KiB), which
        // then go straight from the file into the block, not through this
        // buffer.
        Box::new(BufReader::with_capacity(
            64 << 10,
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?,
        ))
    };
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let schema = &args.target.schema;
    let schema_args = match (&schema.elf, &schema.schema) {
        (Some(elf), _) => vec!["--elf".to_string(), abs(elf)],
        (None, Some(s)) => vec!["--schema".to_string(), abs(s)],
        (None, None) => Vec::new(),
    };
    let mut view = View {
        ui,
        schema_args,
        dry_run: args.dry_run,
        color: ui.color && io::stdout().is_terminal(),
        progress: (!ui.quiet && io::stderr().is_terminal()).then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message("entries");
            pb
        }),
        out: io::BufWriter::new(io::stdout().lock()),
        out_err: None,
    };
    let mut records: Vec<ApplyRecord> = Vec::new();
    let target = &args.target;
    let one_map = target.schema.map.is_some() || !target.has_schema();
    let outcome = if one_map {
        // One map: stream the file.
        (|| -> anyhow::Result<()> {
            let map = target.open()?;
            let opts = opts.for_map(map.name());
            let result = map.apply_reader(reader, &name, &opts, &mut |ev| view.event(&map, ev));
            records.push(ApplyRecord::new(&map, &name, &opts, &result));
            result.map_err(in_cli_terms)?;
            view.check()
        })()
    } else {
        // A state file naming maps: every map and entry checked, then map by map.
        (|| -> anyhow::Result<()> {
            let mut obj = target.schema.object()?;
            if let Some(dir) = &target.pin_dir {
                obj = obj.with_pin_dir(dir);
            }
            obj.apply_state(
                reader,
                &name,
                &opts,
                &mut |map, ev| view.event(map, ev),
                &mut records,
            )
            .map_err(in_cli_terms)?;
            view.check()
        })()
    };
    view.out.flush()?;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&records)? + "\n";
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// `apply --watch`: the library's reconciler, one log line per reconcile on
/// stderr, probes on `--listen`.
fn watch(
    args: &ApplyArgs,
    ui: &Ui,
    stop: Arc<AtomicBool>,
    opts: ApplyOptions,
) -> anyhow::Result<ExitCode> {
    if args.file == Path::new("-") {
        anyhow::bail!("--watch reads a file it can watch, not standard input");
    }
    let target = &args.target;
    let (object, watch_target) = if target.schema.map.is_some() || !target.has_schema() {
        let (obj, name, pin) = target.resolve()?;
        (obj, WatchTarget::Map { name, pin })
    } else {
        let mut obj = target.schema.object()?;
        if let Some(dir) = &target.pin_dir {
            obj = obj.with_pin_dir(dir);
        }
        (obj, WatchTarget::State)
    };
    let wopts = WatchOptions {
        resync: Duration::from_secs_f64(args.resync),
        pin_check: Duration::from_secs_f64(args.pin_check),
        apply: opts,
        ..Default::default()
    };
    let mut reconciler = Reconciler::new(object, watch_target, &args.file, wopts);
    let server = match &args.listen {
        Some(addr) => {
            let endpoint = Endpoint::bind(addr)?;
            ui.note(&format!(
                "apply --watch: /healthz, /readyz and /metrics at http://{}/ (no authentication)",
                endpoint.local_addr()
            ));
            let (health, stop) = (reconciler.health(), stop.clone());
            Some(std::thread::spawn(move || {
                serve_health(&endpoint, &health, &stop)
            }))
        }
        None => None,
    };
    let json = args.log_format == LogFormat::Json;
    let result = reconciler.run(&stop, &mut |r| {
        if !ui.quiet || !matches!(r.outcome, Outcome::Applied) {
            let mut err = io::stderr().lock();
            // A log line that cannot be written (stderr closed) is lost; the
            // reconciler keeps going.
            let _ = render::write_reconcile(&mut err, r, json);
        }
    });
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = server {
        let _ = t.join();
    }
    let summary = result?;
    Ok(if summary.interrupted {
        ExitCode::from(crate::exit::INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}
