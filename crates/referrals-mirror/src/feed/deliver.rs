//! Delivering a feed's changes to a handler: several at once but one referral's changes in their
//! order, each tried again with backoff when it fails, acknowledged in the order of the log (a
//! change is acknowledged once it and every change before it were handled), and, when one
//! keeps failing, a stop there or the change set aside.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;

use super::Feed;
use crate::{Change, Error};

/// How often the position is saved while changes are handled, at most: a crash delivers
/// again what was handled in that span.
const ACK_EVERY: Duration = Duration::from_millis(100);

/// What to do with a change that failed every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Stop the delivery with [`Error::Delivery`]; the consumer's position stays before the
    /// change, so the next delivery starts with it.
    #[default]
    Stop,
    /// Set it aside ([`Feed::set_aside_list`]) and go on. A later change of the same referral
    /// is then delivered before the one set aside is handled.
    SetAside,
}

/// How [`Feed::deliver`] delivers.
#[derive(Debug, Clone)]
pub struct Delivery {
    concurrency: usize,
    attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
    timeout: Duration,
    on_failure: OnFailure,
    follow: bool,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            concurrency: 1,
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            on_failure: OnFailure::Stop,
            follow: true,
        }
    }
}

impl Delivery {
    /// One change at a time, five attempts each (1 s, 2 s, 4 s, 8 s apart, or a failure's
    /// own wait), 30 s each at most, a stop on a change that fails them all, and waiting for
    /// new changes until the stop.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many changes are handled at once, at most (at least 1); the changes of one referral
    /// are always handled one after another, in the log's order.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How many times a change is tried before [`OnFailure`] applies (at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The wait after a first failure, doubled after each next one up to `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// How long one attempt may take: then it is dropped (a command it started is stopped) and
    /// counts as a failure.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What to do with a change that failed every attempt.
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// Whether to wait for new changes once the log is read to its end (the default), or
    /// return then.
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// The wait before attempt `attempt + 1`, after `failure`.
    fn wait_after(&self, attempt: u32, failure: &Failure) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_backoff);
        // A little jitter, so that consumers that failed together do not retry together.
        let jitter = doubled.mul_f64(fastrand::f64() * 0.1);
        failure
            .retry_after
            .unwrap_or_default()
            .max(doubled.saturating_add(jitter))
    }
}

/// Why a handler did not handle a change; it is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    retry_after: Option<Duration>,
}

impl Failure {
    /// A failure that says `message`.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            retry_after: None,
        }
    }

    /// Not before `wait` (an endpoint's `Retry-After`).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

/// What a [`Feed::deliver`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Changes handled.
    pub delivered: u64,
    /// Changes set aside after every attempt failed.
    pub set_aside: u64,
    /// Attempts after a failure.
    pub retries: u64,
    /// The consumer's position at the end.
    pub position: i64,
}

/// How one change ended.
enum Outcome {
    Handled {
        attempts: u32,
    },
    Failed {
        failure: Failure,
        attempts: u32,
    },
    /// The delivery stopped while it waited to try again: delivered next time.
    Abandoned,
}

/// The changes read, in the log's order, and what became of them.
#[derive(Default)]
struct Ledger {
    /// Read and not started.
    waiting: VecDeque<Change>,
    /// Read and not acknowledged, in order.
    order: VecDeque<i64>,
    /// Handled (or set aside), not acknowledged yet because an earlier one is not.
    finished: HashSet<i64>,
    /// The referrals that have a change in hand.
    busy: HashSet<String>,
}

impl Ledger {
    fn read(&mut self, changes: Vec<Change>) {
        for change in changes {
            self.order.push_back(change.seq);
            self.waiting.push_back(change);
        }
    }

    /// The next change that may start: the first waiting whose referral has no change in
    /// hand and no earlier change waiting.
    fn next_ready(&mut self) -> Option<Change> {
        let mut blocked: HashSet<&str> = HashSet::new();
        let mut found = None;
        for (at, change) in self.waiting.iter().enumerate() {
            if self.busy.contains(&change.id) || blocked.contains(change.id.as_str()) {
                blocked.insert(&change.id);
                continue;
            }
            found = Some(at);
            break;
        }
        let change = self.waiting.remove(found?)?;
        self.busy.insert(change.id.clone());
        Some(change)
    }

    fn finish(&mut self, change: &Change) {
        self.busy.remove(&change.id);
        self.finished.insert(change.seq);
    }

    /// The last change of the handled prefix of the log, taken off the ledger.
    fn handled_prefix(&mut self) -> Option<i64> {
        let mut last = None;
        while let Some(seq) = self.order.front().copied() {
            if !self.finished.remove(&seq) {
                break;
            }
            self.order.pop_front();
            last = Some(seq);
        }
        last
    }
}

/// Tries `change` until it is handled, every attempt failed, or the delivery stops.
async fn attempt<H, F, E>(
    change: Change,
    handler: &H,
    delivery: &Delivery,
    mut stopping: watch::Receiver<bool>,
) -> (Change, Outcome)
where
    H: Fn(Change) -> F,
    F: Future<Output = Result<(), E>>,
    E: Into<Failure>,
{
    let mut attempt = 1;
    loop {
        let failure = match tokio::time::timeout(delivery.timeout, handler(change.clone())).await {
            Ok(Ok(())) => return (change, Outcome::Handled { attempts: attempt }),
            Ok(Err(failure)) => failure.into(),
            Err(_) => Failure::new(format!(
                "no end within {} s (the timeout)",
                delivery.timeout.as_secs_f64()
            )),
        };
        if attempt >= delivery.attempts {
            let outcome = Outcome::Failed {
                failure,
                attempts: attempt,
            };
            return (change, outcome);
        }
        let wait = delivery.wait_after(attempt, &failure);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|stop| *stop) => return (change, Outcome::Abandoned),
        }
        attempt += 1;
    }
}

impl Feed {
    /// Delivers the changes after the consumer's position to `handler` (whose error is a
    /// [`Failure`] or any error) as `delivery` says,
    /// until `stop` completes (or, without [`Delivery::follow`], until the log is read to its
    /// end); then waits for the changes in hand and saves the position. A change is
    /// acknowledged once it and every change before it were handled or set aside.
    ///
    /// ```no_run
    /// # async fn run(mut feed: referrals_mirror::Feed) -> Result<(), referrals_mirror::Error> {
    /// use referrals_mirror::feed::{Delivery, Failure};
    ///
    /// let stop = async { let _ = tokio::signal::ctrl_c().await; };
    /// feed.deliver(&Delivery::new().concurrency(4), |change| async move {
    ///     println!("{} {} {}", change.seq, change.kind, change.id);
    ///     Ok::<(), Failure>(())
    /// }, stop).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn deliver<H, F, E>(
        &mut self,
        delivery: &Delivery,
        handler: H,
        stop: impl Future<Output = ()>,
    ) -> Result<DeliveryReport, Error>
    where
        H: Fn(Change) -> F,
        F: Future<Output = Result<(), E>>,
        E: Into<Failure>,
    {
        self.hold().await?;
        let (stopping, stopped) = watch::channel(false);
        let mut run = Run {
            ledger: Ledger::default(),
            report: DeliveryReport::default(),
            failed: None,
            acked: Instant::now(),
        };
        let result = self
            .run_delivery(delivery, &handler, stop, &stopping, stopped, &mut run)
            .await;
        let acked = self.ack_handled(&mut run, true).await;
        self.rewind().await?;
        result?;
        acked?;
        if let Some(error) = run.failed {
            return Err(error);
        }
        run.report.position = self.read;
        Ok(run.report)
    }

    /// [`Feed::deliver`] with the default [`Delivery`], until the process ends: one change at
    /// a time, in order, each acknowledged once `handler` handled it.
    pub async fn follow<H, F, E>(&mut self, handler: H) -> Result<DeliveryReport, Error>
    where
        H: Fn(Change) -> F,
        F: Future<Output = Result<(), E>>,
        E: Into<Failure>,
    {
        self.deliver(&Delivery::new(), handler, std::future::pending())
            .await
    }

    async fn run_delivery<H, F, E>(
        &mut self,
        delivery: &Delivery,
        handler: &H,
        stop: impl Future<Output = ()>,
        stopping: &watch::Sender<bool>,
        stopped: watch::Receiver<bool>,
        run: &mut Run,
    ) -> Result<(), Error>
    where
        H: Fn(Change) -> F,
        F: Future<Output = Result<(), E>>,
        E: Into<Failure>,
    {
        let mut stop = std::pin::pin!(stop);
        let mut in_hand = FuturesUnordered::new();
        let batch = delivery.concurrency.saturating_mul(4).max(64);
        loop {
            let asked = *stopping.borrow();
            if !asked && run.ledger.waiting.len() < batch {
                let more = self.changes(batch - run.ledger.waiting.len()).await?;
                run.ledger.read(more);
            }
            while !asked && in_hand.len() < delivery.concurrency {
                let Some(change) = run.ledger.next_ready() else {
                    break;
                };
                in_hand.push(attempt(change, handler, delivery, stopped.clone()));
            }
            // At most once in ACK_EVERY: each ack is a write, which the mirror's writers wait
            // for; a wait for writes lasts a second at most, so an idle consumer acks soon.
            self.ack_handled(run, false).await?;
            if in_hand.is_empty() && (asked || (!delivery.follow && run.ledger.waiting.is_empty()))
            {
                return Ok(());
            }
            // Waiting for writes makes sense only when more can be read and started: with a
            // full ledger it would return at once each time (nothing read, nothing seen).
            let room = in_hand.len() < delivery.concurrency && run.ledger.waiting.len() < batch;
            tokio::select! {
                Some((change, outcome)) = in_hand.next(), if !in_hand.is_empty() => {
                    self.settle(delivery, run, &change, outcome, stopping).await?;
                }
                () = &mut stop, if !asked => {
                    let _ = stopping.send(true);
                }
                waited = self.wait_for_writes(), if room && !asked => waited?,
            }
        }
    }

    /// Records how `change` ended.
    async fn settle(
        &mut self,
        delivery: &Delivery,
        run: &mut Run,
        change: &Change,
        outcome: Outcome,
        stopping: &watch::Sender<bool>,
    ) -> Result<(), Error> {
        match outcome {
            Outcome::Handled { attempts } => {
                run.report.delivered += 1;
                run.report.retries += u64::from(attempts - 1);
                run.ledger.finish(change);
            }
            Outcome::Failed { failure, attempts } => {
                run.report.retries += u64::from(attempts - 1);
                if delivery.on_failure == OnFailure::SetAside {
                    self.set_aside(change, failure.message(), attempts).await?;
                    run.report.set_aside += 1;
                    run.ledger.finish(change);
                } else {
                    run.ledger.busy.remove(&change.id);
                    run.failed.get_or_insert(Error::Delivery {
                        consumer: self.name.clone(),
                        seq: change.seq,
                        id: change.id.clone(),
                        attempts,
                        message: failure.message,
                    });
                    let _ = stopping.send(true);
                }
            }
            Outcome::Abandoned => {
                run.ledger.busy.remove(&change.id);
            }
        }
        Ok(())
    }

    /// Saves the position after the handled prefix, when `now` or once in [`ACK_EVERY`].
    async fn ack_handled(&mut self, run: &mut Run, now: bool) -> Result<(), Error> {
        if !now && run.acked.elapsed() < ACK_EVERY {
            return Ok(());
        }
        if let Some(seq) = run.ledger.handled_prefix() {
            self.ack(seq).await?;
            run.acked = Instant::now();
        }
        Ok(())
    }
}

/// The state of one [`Feed::deliver`].
struct Run {
    ledger: Ledger,
    report: DeliveryReport,
    /// The first change that failed every attempt, under [`OnFailure::Stop`].
    failed: Option<Error>,
    /// When the position was last saved.
    acked: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: i64, id: &str) -> Change {
        Change {
            seq,
            kind: crate::ChangeKind::Changed,
            id: id.into(),
            e_tag: None,
            updated_date_time: None,
            recorded: chrono::Utc::now(),
            members: Vec::new(),
            referral: None,
        }
    }

    #[test]
    fn one_referral_waits_for_its_change_in_hand_and_the_prefix_is_acknowledged() {
        let mut ledger = Ledger::default();
        ledger.read(vec![change(1, "a"), change(2, "a"), change(3, "b")]);
        let first = ledger.next_ready().unwrap();
        assert_eq!(first.seq, 1);
        let second = ledger.next_ready().unwrap();
        assert_eq!(second.seq, 3, "a's second change waits for its first");
        assert!(ledger.next_ready().is_none());
        ledger.finish(&second);
        assert_eq!(ledger.handled_prefix(), None, "1 is not handled yet");
        ledger.finish(&first);
        assert_eq!(ledger.next_ready().unwrap().seq, 2);
        assert_eq!(ledger.handled_prefix(), Some(1));
        ledger.finish(&change(2, "a"));
        assert_eq!(ledger.handled_prefix(), Some(3));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_respects_retry_after() {
        let delivery = Delivery::new().backoff(Duration::from_secs(1), Duration::from_secs(5));
        let failure = Failure::new("x");
        let wait = |attempt| delivery.wait_after(attempt, &failure);
        assert!(wait(1) >= Duration::from_secs(1) && wait(1) < Duration::from_millis(1100));
        assert!(wait(3) >= Duration::from_secs(4));
        assert!(wait(40) >= Duration::from_secs(5) && wait(40) <= Duration::from_millis(5500));
        let later = Failure::new("429").retry_after(Duration::from_secs(30));
        assert_eq!(delivery.wait_after(1, &later), Duration::from_secs(30));
    }
}
