//! What a sync that runs at an interval shows an operator, the receiver's catch-up sync and
//! `referrals sync --every` alike: its metrics (`referrals_sync_*`, `referrals_mirror_rows`)
//! and its readiness (the last run ended well within twice the interval).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder as _, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use tokio::time::Instant;

use crate::{Error, SyncReport};

/// The content type of `/metrics`: the Prometheus text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics and the readiness of a sync run every `every`.
pub(crate) struct SyncMetrics {
    runs: IntCounterVec,
    duration: Histogram,
    last_success: Gauge,
    changes: IntCounter,
    pub(crate) rows: IntGauge,
    every: Duration,
    began: Instant,
    last_ok: Mutex<Option<Instant>>,
}

impl SyncMetrics {
    /// The metrics, registered in `registry`.
    pub(crate) fn new(registry: &Registry, every: Duration) -> prometheus::Result<Self> {
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
        let rows = IntGauge::with_opts(Opts::new(
            "referrals_mirror_rows",
            "Referrals in the mirror",
        ))?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(changes.clone()))?;
        registry.register(Box::new(rows.clone()))?;
        Ok(Self {
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

    /// A run that took `took`: its report, or `None` when it failed.
    pub(crate) fn ran(&self, took: Duration, report: Option<&SyncReport>) {
        let outcome = match report {
            None => "failed",
            Some(report) if report.skipped => "skipped",
            Some(_) => "ok",
        };
        self.runs.with_label_values(&[outcome]).inc();
        self.duration.observe(took.as_secs_f64());
        let Some(report) = report else { return };
        self.changes.inc_by(report.changed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        self.last_success
            .set(now.map_or(0.0, |since| since.as_secs_f64()));
        *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Whether a run ended well within twice the interval (or, before any, since the start),
    /// or why not.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        let last = *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner);
        let since = last.unwrap_or(self.began).elapsed();
        let limit = self.every.saturating_mul(2);
        if since <= limit {
            return Ok(());
        }
        let what = if last.is_some() {
            "the last sync that ended well"
        } else {
            "the start, and no sync ended well since"
        };
        Err(format!(
            "{what} was {} s ago, more than twice the interval ({} s)",
            since.as_secs(),
            limit.as_secs()
        ))
    }
}

/// The text of `registry`'s metrics.
pub(crate) fn text(registry: &Registry) -> String {
    let mut text = Vec::new();
    // Encoding valid metrics into a Vec does not fail; a failure would leave it short.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// The answer of `/readyz` for `readiness`.
pub(crate) fn ready_answer(readiness: Result<(), String>) -> Response {
    match readiness {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// What an operator sees of a sync that runs at an interval outside a receiver (`referrals
/// sync --every --observe`): [`SyncObserver::router`] serves `GET /healthz`, `/readyz` (a run
/// ended well within twice the interval; else 503 and why) and `/metrics` (the receiver's
/// `referrals_sync_*` metrics, and `referrals_mirror_rows`).
pub struct SyncObserver {
    registry: Registry,
    metrics: SyncMetrics,
}

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncObserver").finish_non_exhaustive()
    }
}

impl SyncObserver {
    /// The observer of a sync run every `every`.
    pub fn new(every: Duration) -> Result<Arc<Self>, Error> {
        let registry = Registry::new();
        let metrics = SyncMetrics::new(&registry, every)
            .map_err(|error| Error::Receiver(format!("the metrics: {error}")))?;
        Ok(Arc::new(Self { registry, metrics }))
    }

    /// A run that ended after `took`, with its report and the mirror's rows after it (when
    /// they could be counted).
    pub fn succeeded(&self, took: Duration, report: &SyncReport, rows: Option<u64>) {
        self.metrics.ran(took, Some(report));
        if let Some(rows) = rows {
            self.metrics
                .rows
                .set(i64::try_from(rows).unwrap_or(i64::MAX));
        }
    }

    /// A run that failed after `took`.
    pub fn failed(&self, took: Duration) {
        self.metrics.ran(took, None);
    }

    /// The routes `GET /healthz`, `/readyz` and `/metrics`.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/healthz", axum::routing::get(healthz))
            .route("/readyz", axum::routing::get(readyz))
            .route("/metrics", axum::routing::get(metrics))
            .with_state(Arc::clone(self))
    }
}

/// `GET /healthz`: the process answers.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(observer): State<Arc<SyncObserver>>) -> Response {
    ready_answer(observer.metrics.readiness())
}

async fn metrics(State(observer): State<Arc<SyncObserver>>) -> Response {
    let text = text(&observer.registry);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
