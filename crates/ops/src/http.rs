//! A small HTTP endpoint (GET and HEAD only) for metrics and probes.
//!
//! It has **no authentication and no TLS**: bind it to `127.0.0.1` (the
//! default of the `ebpf-sdk` commands) unless a network policy or a proxy
//! in front of it decides who may read it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::metrics::{Exporter, Exposition, ScrapeEvent};
use crate::OpsError;

/// How often a serving loop looks at its stop flag.
const POLL: Duration = Duration::from_millis(100);

/// A request as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The path, without the query string.
    pub path: String,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A plain text answer.
    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            body: body.into().into_bytes(),
        }
    }
}

/// A listening socket that serves GET and HEAD requests.
pub struct Endpoint {
    server: tiny_http::Server,
    addr: SocketAddr,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Endpoint {
    /// Listens on `addr` (`127.0.0.1:9435`; port 0 picks a free port).
    pub fn bind(addr: &str) -> Result<Endpoint, OpsError> {
        let listen = |reason: String| OpsError::Listen {
            addr: addr.to_string(),
            reason,
        };
        let sock: SocketAddr = addr
            .parse()
            .map_err(|_| listen("not an address:port, e.g. 127.0.0.1:9435".into()))?;
        let server = tiny_http::Server::http(sock).map_err(|e| listen(e.to_string()))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| listen("not an IP socket".into()))?;
        Ok(Endpoint { server, addr })
    }

    /// The address it listens on (with the port the kernel chose for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests with `handle` until `stop` is set (looked at every
    /// 100 ms). Methods other than GET and HEAD get 405.
    pub fn serve(&self, stop: &AtomicBool, handle: &mut dyn FnMut(&HttpRequest) -> HttpResponse) {
        while !stop.load(Ordering::Relaxed) {
            let req = match self.server.recv_timeout(POLL) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                // A broken connection: the next one may be fine.
                Err(_) => continue,
            };
            let method = req.method().clone();
            let answer = if matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
                let url = req.url();
                let path = url.split('?').next().unwrap_or(url).to_string();
                let accept = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Accept"))
                    .map(|h| h.value.as_str().to_string());
                handle(&HttpRequest { path, accept })
            } else {
                HttpResponse::text(405, "only GET and HEAD\n")
            };
            // The body is complete: send it with its length, not chunked.
            let mut resp = with_header(
                tiny_http::Response::from_data(answer.body)
                    .with_status_code(answer.status)
                    .with_chunked_threshold(usize::MAX),
                "Content-Type",
                &answer.content_type,
            );
            if answer.status == 405 {
                resp = with_header(resp, "Allow", "GET, HEAD");
            }
            // The client may have gone; nothing to do about it.
            let _ = req.respond(resp);
        }
    }
}

/// `resp` with the header added (a header of constant ASCII is never
/// refused; one that were would be left out rather than panic).
fn with_header<R: std::io::Read>(
    resp: tiny_http::Response<R>,
    name: &str,
    value: &str,
) -> tiny_http::Response<R> {
    match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => resp.with_header(h),
        Err(()) => resp,
    }
}

/// Serves an exporter: `/metrics` (the text format, or OpenMetrics when the
/// client's `Accept` asks for it), `/healthz` (`ok` while the loop runs)
/// and `/` (a line saying where the metrics are). `on` gets every
/// [`ScrapeEvent`], for logs.
pub fn serve_metrics(
    endpoint: &Endpoint,
    exporter: &mut Exporter,
    stop: &AtomicBool,
    on: &mut dyn FnMut(&ScrapeEvent),
) {
    endpoint.serve(stop, &mut |req| match req.path.as_str() {
        "/metrics" => {
            let format = Exposition::negotiate(req.accept.as_deref());
            let mut body = Vec::with_capacity(64 * 1024);
            for ev in exporter.scrape(format, &mut body) {
                on(&ev);
            }
            HttpResponse {
                status: 200,
                content_type: format.content_type().into(),
                body,
            }
        }
        "/healthz" => HttpResponse::text(200, "ok\n"),
        "/" => HttpResponse::text(200, "ebpf-sdk export: metrics at /metrics\n"),
        _ => HttpResponse::text(404, "not found; metrics are at /metrics\n"),
    });
}

/// Serves a reconciler's probes and counters ([`crate::watch::WatchHealth`]):
/// `/healthz`, `/readyz` and `/metrics`.
pub fn serve_health(endpoint: &Endpoint, health: &crate::watch::WatchHealth, stop: &AtomicBool) {
    endpoint.serve(stop, &mut |req| {
        health.respond(&req.path, req.accept.as_deref())
    });
}
