//! `sync --every --observe ADDR`: what an operator watches of a sync that runs for months, on
//! an address of its own: `GET /healthz` (the process answers), `GET /readyz` (the last run
//! ended well within twice the interval; else 503 and why) and `GET /metrics` in the
//! Prometheus text format, with the names of the receiver's: `referrals_sync_runs_total`,
//! `referrals_sync_duration_seconds`, `referrals_sync_last_success_timestamp_seconds`,
//! `referrals_sync_changes_total`, and `referrals_mirror_rows`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder as _, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use tokio::time::Instant;

use crate::stop::Stop;

/// The sync's health and metrics.
pub struct Health {
    registry: Registry,
    runs: IntCounterVec,
    duration: Histogram,
    last_success: Gauge,
    changes: IntCounter,
    rows: IntGauge,
    every: Duration,
    began: Instant,
    last_ok: Mutex<Option<Instant>>,
}

impl Health {
    fn new(every: Duration) -> prometheus::Result<Self> {
        let runs = IntCounterVec::new(
            Opts::new("referrals_sync_runs_total", "Sync runs, by outcome"),
            &["outcome"],
        )?;
        let help = "How long each sync run took, in seconds";
        let buckets = prometheus::exponential_buckets(0.05, 2.0, 14)?;
        let duration = Histogram::with_opts(
            HistogramOpts::new("referrals_sync_duration_seconds", help).buckets(buckets),
        )?;
        let help = "When a sync run last ended well, in seconds since the Unix epoch";
        let name = "referrals_sync_last_success_timestamp_seconds";
        let last_success = Gauge::with_opts(Opts::new(name, help))?;
        let help = "Referrals that the sync runs changed";
        let changes = IntCounter::with_opts(Opts::new("referrals_sync_changes_total", help))?;
        let help = "Referrals in the mirror after the last run";
        let rows = IntGauge::with_opts(Opts::new("referrals_mirror_rows", help))?;
        let registry = Registry::new();
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(changes.clone()))?;
        registry.register(Box::new(rows.clone()))?;
        Ok(Self {
            registry,
            runs,
            duration,
            last_success,
            changes,
            rows,
            every,
            began: Instant::now(),
            last_ok: Mutex::new(None),
        })
    }

    /// A run that ended after `took`: `ok` (with the referrals it changed and the mirror's
    /// rows, when counted), `skipped` or `failed`.
    pub fn ran(&self, outcome: &str, took: Duration, changed: u64, rows: Option<u64>) {
        self.runs.with_label_values(&[outcome]).inc();
        self.duration.observe(took.as_secs_f64());
        if outcome == "failed" {
            return;
        }
        self.changes.inc_by(changed);
        if let Some(rows) = rows {
            self.rows.set(i64::try_from(rows).unwrap_or(i64::MAX));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        self.last_success
            .set(now.map_or(0.0, |since| since.as_secs_f64()));
        *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    fn readiness(&self) -> Result<(), String> {
        let last = *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner);
        let since = last.unwrap_or(self.began).elapsed();
        let limit = self.every.saturating_mul(2);
        if since > limit {
            let what = if last.is_some() {
                "the last run that ended well"
            } else {
                "the start"
            };
            return Err(format!(
                "{what} was {} s ago, more than twice the interval ({} s)",
                since.as_secs(),
                limit.as_secs()
            ));
        }
        Ok(())
    }
}

/// Serves the health of a sync run every `every` on `addr` until `stop`.
pub async fn start(addr: SocketAddr, every: Duration, stop: &Stop) -> anyhow::Result<Arc<Health>> {
    let health = Arc::new(Health::new(every).context("the metrics")?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--observe)"))?;
    let router = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(readyz))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(Arc::clone(&health));
    let stop = stop.clone();
    tokio::spawn(async move {
        let shutdown = async move { stop.wait().await };
        referrals_mirror::receiver::http::serve(listener, router, shutdown).await;
    });
    Ok(health)
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    match health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(health): State<Arc<Health>>) -> Response {
    let mut text = Vec::new();
    // Encoding valid metrics into a Vec does not fail.
    let _ = TextEncoder::new().encode(&health.registry.gather(), &mut text);
    let kind = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}
