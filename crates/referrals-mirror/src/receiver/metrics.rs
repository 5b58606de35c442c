//! What an operator watches: the receiver's metrics in the Prometheus text format (with
//! the `prometheus` crate), and its health and readiness.
//!
//! | metric | what it counts |
//! |---|---|
//! | `referrals_callbacks_total{outcome, check}` | callbacks by outcome (`accepted`, `replayed`, `ignored`, `refused`, `unavailable`, `too_large`, `timed_out`) and, when refused, the check that failed |
//! | `referrals_events_pending`, `referrals_events_aside` | events to work off, events set aside |
//! | `referrals_events_oldest_pending_seconds` | how long ago the oldest event to work off came |
//! | `referrals_event_failures_total` | failures of working an event off (each tried again, or set aside) |
//! | `referrals_reads_total{outcome}` | reads of referrals for events (`read`, `not_found`, `failed`) |
//! | `referrals_sync_runs_total{outcome}` | catch-up syncs (`ok`, `failed`, `skipped`) |
//! | `referrals_sync_duration_seconds` | how long each catch-up sync took |
//! | `referrals_sync_last_success_timestamp_seconds` | when the last catch-up sync ended well (Unix time) |
//! | `referrals_sync_changes_total` | referrals that the catch-up syncs changed |
//! | `referrals_mirror_up` | whether the mirror answers (1) or not (0) |
//! | `referrals_mirror_rows` | referrals in the mirror |
//! | `referrals_feed_consumer_lag{consumer}` | changes logged after each feed consumer's position |

use std::time::Duration;

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::store::Gauges;
use super::sync_health::SyncMetrics;

/// The receiver's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    callbacks: IntCounterVec,
    pending: IntGauge,
    aside: IntGauge,
    oldest: Gauge,
    failures: IntCounter,
    reads: IntCounterVec,
    /// The catch-up sync's, and the mirror's rows.
    pub(crate) sync: SyncMetrics,
    up: IntGauge,
    lags: IntGaugeVec,
}

/// A metric of `name` and `help`, and more with `labels`; the names and helps are constants of
/// this module, valid by construction.
fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    /// The metrics, registered (an error only if a name below were invalid: a test makes
    /// them).
    pub(crate) fn try_new(every: Duration) -> prometheus::Result<Self> {
        let help = "Callbacks by outcome, and the check that refused them";
        let callbacks = IntCounterVec::new(
            opts("referrals_callbacks_total", help),
            &["outcome", "check"],
        )?;
        let help = "Events stored and not yet worked off (those set aside not counted)";
        let pending = IntGauge::with_opts(opts("referrals_events_pending", help))?;
        let help = "Events set aside after they failed too often";
        let aside = IntGauge::with_opts(opts("referrals_events_aside", help))?;
        let help = "How long ago the oldest event to work off was received, in seconds";
        let oldest = Gauge::with_opts(opts("referrals_events_oldest_pending_seconds", help))?;
        let help = "Failures of working an event off";
        let failures = IntCounter::with_opts(opts("referrals_event_failures_total", help))?;
        let help = "Reads of referrals for events, by outcome";
        let reads = IntCounterVec::new(opts("referrals_reads_total", help), &["outcome"])?;
        let help = "Whether the mirror answers (1) or not (0)";
        let up = IntGauge::with_opts(opts("referrals_mirror_up", help))?;
        let help = "Changes logged after the position of each consumer of the change feed";
        let lags = IntGaugeVec::new(opts("referrals_feed_consumer_lag", help), &["consumer"])?;
        let registry = Registry::new();
        registry.register(Box::new(callbacks.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        registry.register(Box::new(aside.clone()))?;
        registry.register(Box::new(oldest.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(reads.clone()))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(lags.clone()))?;
        let sync = SyncMetrics::new(&registry, every)?;
        Ok(Self {
            registry,
            callbacks,
            pending,
            aside,
            oldest,
            failures,
            reads,
            sync,
            up,
            lags,
        })
    }

    pub(crate) fn callback(&self, outcome: &str, check: &str) {
        self.callbacks.with_label_values(&[outcome, check]).inc();
    }

    pub(crate) fn read(&self, outcome: &str) {
        self.reads.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn event_failed(&self) {
        self.failures.inc();
    }

    /// The text of the metrics, with what was read of the mirror now (`None` when it does not
    /// answer).
    pub(crate) fn text(&self, gauges: Option<&Gauges>) -> String {
        self.up.set(i64::from(gauges.is_some()));
        if let Some(gauges) = gauges {
            let counts = gauges.events;
            self.pending
                .set(i64::try_from(counts.pending).unwrap_or(i64::MAX));
            self.aside
                .set(i64::try_from(counts.aside).unwrap_or(i64::MAX));
            self.oldest.set(counts.oldest_pending_seconds);
            let rows = i64::try_from(gauges.rows).unwrap_or(i64::MAX);
            self.sync.rows.set(rows);
            // Consumers that were removed leave the metrics.
            self.lags.reset();
            for (consumer, lag) in &gauges.lags {
                let lag = i64::try_from(*lag).unwrap_or(i64::MAX);
                self.lags.with_label_values(&[consumer.as_str()]).set(lag);
            }
        }
        super::sync_health::text(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metrics_are_valid_and_distinct() {
        let metrics = super::Metrics::try_new(std::time::Duration::from_secs(60)).unwrap();
        metrics.callback("accepted", "");
        assert!(metrics.text(None).contains("referrals_mirror_up 0"));
    }
}
