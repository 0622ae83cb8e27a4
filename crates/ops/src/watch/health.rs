//! What a running reconciler says about itself: liveness, readiness and
//! counters, for probes and a `/metrics` endpoint.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::{Outcome, Reconcile};
use crate::http::HttpResponse;
use crate::metrics::{own_family, write_family, Exposition, MetricKind};

/// A reconciler's loop is alive when it went round this recently.
const ALIVE: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct State {
    last_tick: Option<Instant>,
    /// Reconciles by outcome: applied, bad_file, failed, interrupted.
    counts: [u64; 4],
    /// Whether the maps hold a good state: a file applied, and the last
    /// reconcile did not fail to write.
    ready: bool,
    /// Whether the file read last was good.
    file_ok: bool,
    last_error: Option<String>,
    last_duration: Duration,
    last_applied_unix: f64,
}

/// Shared health of a [`super::Reconciler`] (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct WatchHealth {
    state: Arc<Mutex<State>>,
}

impl WatchHealth {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The loop went round.
    pub(crate) fn tick(&self) {
        self.lock().last_tick = Some(Instant::now());
    }

    /// A reconcile ended.
    pub(crate) fn record(&self, r: &Reconcile) {
        let mut s = self.lock();
        s.last_tick = Some(Instant::now());
        s.last_duration = r.duration;
        s.last_error = r.outcome.error().map(str::to_string);
        let (i, ready, file_ok) = match &r.outcome {
            Outcome::Applied => (0, true, true),
            // The maps keep the last good state, if there was one.
            Outcome::BadFile { restored, .. } => (1, s.ready || *restored, false),
            Outcome::Failed { .. } => (2, false, s.file_ok),
            Outcome::Interrupted { .. } => (3, false, s.file_ok),
        };
        s.counts[i] += 1;
        s.ready = ready;
        s.file_ok = file_ok;
        if matches!(r.outcome, Outcome::Applied) {
            s.last_applied_unix =
                r.at.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
                    + r.duration.as_secs_f64();
        }
    }

    /// Whether the loop went round in the last 10 s.
    pub fn alive(&self) -> bool {
        self.lock().last_tick.is_some_and(|t| t.elapsed() < ALIVE)
    }

    /// Whether the maps hold a good state (`None`), else why not.
    pub fn not_ready(&self) -> Option<String> {
        let s = self.lock();
        if s.ready {
            None
        } else {
            Some(
                s.last_error
                    .clone()
                    .unwrap_or_else(|| "no state applied yet".into()),
            )
        }
    }

    /// The answer to a probe or scrape: `/healthz` (200 while the loop
    /// runs), `/readyz` (200 while the maps hold a good state, else 503 and
    /// why), `/metrics` (reconcile counters).
    pub fn respond(&self, path: &str, accept: Option<&str>) -> HttpResponse {
        match path {
            "/healthz" if self.alive() => HttpResponse::text(200, "ok\n"),
            "/healthz" => HttpResponse::text(503, "the reconcile loop is stuck\n"),
            "/readyz" => match self.not_ready() {
                None => HttpResponse::text(200, "ok\n"),
                Some(why) => HttpResponse::text(503, format!("{why}\n")),
            },
            "/metrics" => {
                let format = Exposition::negotiate(accept);
                HttpResponse {
                    status: 200,
                    content_type: format.content_type().into(),
                    body: self.metrics(format),
                }
            }
            _ => HttpResponse::text(404, "not found; try /healthz, /readyz or /metrics\n"),
        }
    }

    /// The reconcile counters in the exposition format.
    pub fn metrics(&self, format: Exposition) -> Vec<u8> {
        let s = self.lock();
        let mut out = Vec::new();
        let f = own_family(
            "ebpf_sdk_reconciles_total",
            MetricKind::Counter,
            "Reconciles by outcome: applied, bad_file (refused, last good state kept), failed (maps not written), interrupted.",
        );
        let mut samples = String::new();
        for (name, n) in ["applied", "bad_file", "failed", "interrupted"]
            .iter()
            .zip(s.counts)
        {
            samples.push_str(&format!("{}{{outcome=\"{name}\"}} {n}\n", f.sample));
        }
        write_family(&mut out, &f, samples.as_bytes(), format);
        let gauges: [(&str, &str, String); 4] = [
            (
                "ebpf_sdk_reconcile_duration_seconds",
                "How long the last reconcile took.",
                format!("{:?}", s.last_duration.as_secs_f64()),
            ),
            (
                "ebpf_sdk_last_applied_timestamp_seconds",
                "When the state file was last applied (Unix time; 0: never).",
                format!("{:?}", s.last_applied_unix),
            ),
            (
                "ebpf_sdk_state_file_valid",
                "Whether the state file read last was valid (1) or refused (0).",
                u8::from(s.file_ok).to_string(),
            ),
            (
                "ebpf_sdk_watch_ready",
                "Whether the maps hold a good state (1) or not (0).",
                u8::from(s.ready).to_string(),
            ),
        ];
        for (name, help, value) in gauges {
            let f = own_family(name, MetricKind::Gauge, help);
            write_family(&mut out, &f, format!("{name} {value}\n").as_bytes(), format);
        }
        if format == Exposition::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
        out
    }
}
