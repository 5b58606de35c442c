//! How many requests a reader of many pages keeps in flight at once: up to a ceiling, halved
//! when the service throttles, grown back by one after a long stretch of calm answers (as TCP
//! does with its window), and far more slowly to the limit that met the last 429, so that a
//! reader finds the pace the service allows by itself and stays near it.
//!
//! The first 429 of a stretch also teaches the service's rate: from then on requests start at
//! even intervals at a little under it (the answers not refused during the 429's `Retry-After`
//! before it, a second), growing by 2% after 30 s without a 429 (longer after a probe that
//! met one); and the limit is never halved under the requests in flight that this pace
//! needs. [`Concurrency::rate`] tells it, and [`Concurrency::worth_at_once`] how many
//! requests at once keep it.
//!
//! [`Concurrency::send`] runs a call of this crate's client under a permit. While the call's
//! retry loop waits out a 429 (`Retry-After`), its permit is lent back, and while any call
//! waits one out, no new request starts: the service asked the client to wait, and a request
//! sent meanwhile would most likely meet another 429.
//!
//! ```
//! # async fn run(client: referrals_client::Client) -> Result<(), referrals_client::Error> {
//! use referrals_client::concurrency::Concurrency;
//! use referrals_client::query::Query;
//!
//! let concurrency = Concurrency::new(8);
//! let page = concurrency.send(client.list_page(&Query::new(), None)).await?;
//! println!("{} referrals; limit now {}", page.items.len(), concurrency.limit());
//! # Ok(())
//! # }
//! ```
//!
//! A request sent some other way takes a [`Permit`] and says how many 429s it met:
//!
//! ```
//! # async fn run() {
//! use referrals_client::concurrency::Concurrency;
//!
//! let concurrency = Concurrency::new(8);
//! let permit = concurrency.permit().await;
//! // ... send the request ...
//! permit.answered(1);
//! assert_eq!(concurrency.limit(), 4);
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pace::Pace;

mod ranges;

pub use ranges::{CreationSpan, Range, creation_span, range_count, ranges};

/// How many calm answers in a row, per request allowed at once, before one more is allowed.
const CALM_PER_STEP: usize = 4;

/// How many times longer the calm must be for a step to the limit that last met a 429, or
/// past it: a 429 costs the whole reader its `Retry-After` (a second or more, twenty round
/// trips of 50 ms), so the limit that the service refused is tried again seldom.
const CAUTION: usize = 16;

/// A shared limit of requests in flight; clones share it.
#[derive(Debug, Clone)]
pub struct Concurrency {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    released: Notify,
}

#[derive(Debug)]
struct State {
    ceiling: usize,
    limit: usize,
    active: usize,
    /// Requests of [`Concurrency::send`] waiting out a 429, their permits lent back: none starts
    /// meanwhile.
    waiting: usize,
    /// Calm answers since the limit last changed.
    calm: usize,
    /// The limit that last met a 429, until the limit passes it.
    refused: Option<usize>,
    /// Bumped each time the limit is halved: an answer to a request sent before then does not
    /// halve it again.
    generation: u64,
    answers: u64,
    throttled: u64,
    /// The pace learnt from the 429s ([`crate::pace`]).
    pace: Pace,
}

/// The right to send one request; dropping it gives the right back.
#[derive(Debug)]
#[must_use = "a permit is given back when it is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
    generation: u64,
    started: Instant,
}

impl Concurrency {
    /// At most `ceiling` requests at once (at least one).
    pub fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ceiling,
                    limit: ceiling,
                    active: 0,
                    waiting: 0,
                    calm: 0,
                    refused: None,
                    generation: 0,
                    answers: 0,
                    throttled: 0,
                    pace: Pace::new(),
                }),
                released: Notify::new(),
            }),
        }
    }

    /// Waits until one more request is allowed.
    pub async fn permit(&self) -> Permit {
        let generation = self.shared.acquire().await;
        Permit {
            shared: Arc::clone(&self.shared),
            generation,
            started: Instant::now(),
        }
    }

    /// Runs `call`, a call of this crate's [`Client`](crate::Client), under a permit: waits
    /// for one, lends it back while the call's retry loop waits out a 429, records the answer
    /// (and how many 429s it met), and gives it back. No new request starts while a call waits
    /// out a 429.
    pub async fn send<F: Future>(&self, call: F) -> F::Output {
        let generation = self.shared.acquire().await;
        let loan = Arc::new(CallPermit {
            shared: Arc::clone(&self.shared),
            generation: AtomicU64::new(generation),
            permit: AtomicU8::new(HELD),
            throttled: AtomicU32::new(0),
            ended_throttled: AtomicBool::new(false),
        });
        let started = Instant::now();
        let output = CALL_PERMIT.scope(Arc::clone(&loan), call).await;
        let throttled = loan.throttled.load(Ordering::Relaxed);
        let mut state = self.shared.lock();
        state.record(throttled);
        if loan.ended_throttled.load(Ordering::Relaxed) {
            state.throttle(loan.generation.load(Ordering::Relaxed), None);
        } else if throttled == 0 {
            state.calm(started.elapsed());
        }
        drop(state);
        output
    }

    /// [`creation_span`], each of its two requests sent under this concurrency as
    /// [`send`](Self::send) sends one: the pace that a 429 teaches counts them.
    pub async fn creation_span(
        &self,
        client: &crate::Client,
        query: &crate::query::Query,
    ) -> Result<Option<CreationSpan>, crate::Error> {
        ranges::span_of(client, query, Some(self)).await
    }

    /// How many requests at once are worth sending now: the [`limit`](Self::limit), or,
    /// once a 429 taught the service's rate, those that keep that rate (the rate times a
    /// round trip, and one more) if they are fewer. More would only wait for their turn.
    pub fn worth_at_once(&self) -> usize {
        let state = self.shared.lock();
        match state.pace.rate() {
            Some(_) => state.pace.needed().min(state.limit),
            None => state.limit,
        }
    }

    /// How many requests are allowed at once now.
    pub fn limit(&self) -> usize {
        self.shared.lock().limit
    }

    /// How many requests a second may start, once a 429 taught the service's rate
    /// (the crate's `pace` module); `None` before.
    pub fn rate(&self) -> Option<f64> {
        self.shared.lock().pace.rate()
    }

    /// The answers recorded, and how many 429s they met.
    pub fn answers(&self) -> (u64, u64) {
        let state = self.shared.lock();
        (state.answers, state.throttled)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until one more request is allowed, takes its place, waits for its start under
    /// the pace, and gives the generation of the limit it was allowed under.
    async fn acquire(&self) -> u64 {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            // The place is taken only when the pace allows a start now: a caller that waits
            // for its turn holds nothing (it may be dropped meanwhile), and one that a 429
            // held back looks again after its wait.
            let due = {
                let mut state = self.lock();
                if state.active < state.limit && state.waiting == 0 {
                    let now = Instant::now();
                    match state.pace.due(now) {
                        Some(due) => Some(due),
                        None => {
                            state.pace.take(now);
                            state.active += 1;
                            return state.generation;
                        }
                    }
                } else {
                    None
                }
            };
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => released.await,
            }
        }
    }

    /// Gives a place back (`waiting`: the place of a request that waits out a 429).
    fn release(&self, waiting: bool) {
        let mut state = self.lock();
        if waiting {
            state.waiting = state.waiting.saturating_sub(1);
        } else {
            state.active = state.active.saturating_sub(1);
        }
        drop(state);
        self.released.notify_waiters();
    }
}

impl State {
    fn record(&mut self, throttled: u32) {
        self.answers = self.answers.saturating_add(1);
        self.throttled = self.throttled.saturating_add(u64::from(throttled));
    }

    /// A 429 to a request allowed under `generation`, which asked to wait `window`
    /// (`Retry-After`; `None`: not told): the first of a generation teaches the pace and halves
    /// the limit, never under what the pace needs.
    fn throttle(&mut self, generation: u64, window: Option<std::time::Duration>) {
        if generation == self.generation {
            self.pace
                .refused(Instant::now(), window.unwrap_or(std::time::Duration::ZERO));
            self.refused = Some(self.limit);
            self.limit = (self.limit / 2).max(self.pace.needed()).min(self.limit);
            self.generation = self.generation.wrapping_add(1);
        }
        self.calm = 0;
    }

    /// An answer that was not a 429, after `took`.
    fn calm(&mut self, took: std::time::Duration) {
        self.pace.answered(Instant::now(), took);
        self.calm = self.calm.saturating_add(1);
        let cautious = self
            .refused
            .is_some_and(|refused| self.limit + 1 >= refused);
        let step = if cautious {
            CALM_PER_STEP * CAUTION
        } else {
            CALM_PER_STEP
        };
        if self.limit < self.ceiling && self.calm >= self.limit * step {
            self.limit += 1;
            self.calm = 0;
            if self.refused.is_some_and(|refused| self.limit > refused) {
                self.refused = None;
            }
        }
    }
}

impl Permit {
    /// Records the answer of the request, which met `throttled` answers of 429 Too Many
    /// Requests on its way ([`crate::Page::throttled`], or 1 for a request that failed with
    /// 429), and gives the permit back.
    pub fn answered(self, throttled: u32) {
        let mut state = self.shared.lock();
        state.record(throttled);
        if throttled > 0 {
            state.throttle(self.generation, None);
        } else {
            state.calm(self.started.elapsed());
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.release(false);
    }
}

// A task-local rather than an argument, for the reason of `crate::context`: the retry loop
// that waits out a 429 runs inside the generated code's call, which passes nothing of ours.
tokio::task_local! {
    /// The permit of the call that [`Concurrency::send`] runs.
    static CALL_PERMIT: Arc<CallPermit>;
}

/// The permit of a call of [`Concurrency::send`], which its retry loop lends back while it
/// waits out a 429. Atomics, not cells: the call may move between threads.
#[derive(Debug)]
struct CallPermit {
    shared: Arc<Shared>,
    /// The generation of the limit the call was last allowed under.
    generation: AtomicU64,
    /// The call's permit: [`HELD`], [`LENT`] back, or [`NONE`].
    permit: AtomicU8,
    throttled: AtomicU32,
    /// Whether the last answer was a 429 (one that ended the call, not waited out).
    ended_throttled: AtomicBool,
}

/// The call holds a place among the requests in flight.
const HELD: u8 = 0;

/// The call waits out a 429, its place lent back.
const LENT: u8 = 1;

/// The call waits for a place again.
const NONE: u8 = 2;

impl Drop for CallPermit {
    fn drop(&mut self) {
        match self.permit.load(Ordering::Relaxed) {
            HELD => self.shared.release(false),
            LENT => self.shared.release(true),
            _ => {}
        }
    }
}

/// Records an answer of the call under way (in [`Concurrency::send`]; elsewhere nothing).
pub(crate) fn answer(throttled: bool) {
    let _ = CALL_PERMIT.try_with(|loan| {
        if throttled {
            loan.throttled.fetch_add(1, Ordering::Relaxed);
        }
        loan.ended_throttled.store(throttled, Ordering::Relaxed);
    });
}

/// Waits out a 429 (`wait`, which lasts `window`: its `Retry-After`). In
/// [`Concurrency::send`], the call's permit is lent back meanwhile (the first 429 of a
/// generation teaches the pace and halves the limit), no new request starts until the wait is
/// over, and the call then waits for a permit again.
pub(crate) async fn wait_out(window: std::time::Duration, wait: impl Future<Output = ()>) {
    let Ok(loan) = CALL_PERMIT.try_with(Arc::clone) else {
        return wait.await;
    };
    {
        let mut state = loan.shared.lock();
        state.throttle(loan.generation.load(Ordering::Relaxed), Some(window));
        state.active = state.active.saturating_sub(1);
        state.waiting += 1;
        loan.permit.store(LENT, Ordering::Relaxed);
        loan.ended_throttled.store(false, Ordering::Relaxed);
    }
    wait.await;
    loan.permit.store(NONE, Ordering::Relaxed);
    loan.shared.release(true);
    let generation = loan.shared.acquire().await;
    loan.permit.store(HELD, Ordering::Relaxed);
    loan.generation.store(generation, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_once_per_stretch_and_calm_grows_back_by_one() {
        let concurrency = Concurrency::new(8);
        let permits: Vec<Permit> = futures_permits(&concurrency, 8).await;
        // Eight requests sent at the same limit: the first 429 halves it, the others do not.
        for permit in permits {
            permit.answered(1);
        }
        assert_eq!(concurrency.limit(), 4);
        // A request sent after the halving may halve again.
        concurrency.permit().await.answered(2);
        assert_eq!(concurrency.limit(), 2);
        for _ in 0..2 * CALM_PER_STEP - 1 {
            concurrency.permit().await.answered(0);
        }
        assert_eq!(concurrency.limit(), 2);
        concurrency.permit().await.answered(0);
        assert_eq!(concurrency.limit(), 3);
        assert_eq!(concurrency.answers(), (17, 10));
        for _ in 0..1000 {
            concurrency.permit().await.answered(0);
        }
        assert_eq!(concurrency.limit(), 8, "never past the ceiling");
        for _ in 0..10 {
            concurrency.permit().await.answered(1);
        }
        // Halved down to what the pace learnt from these 429s needs: its rate (about a
        // thousand a second) times a round trip of microseconds (more on a loaded machine),
        // and one more.
        assert!(concurrency.rate().is_some());
        assert!(concurrency.limit() < 8, "{}", concurrency.limit());
    }

    #[tokio::test]
    async fn the_limit_that_met_a_429_is_tried_again_only_after_a_long_calm() {
        let concurrency = Concurrency::new(8);
        let calm = |count: usize| {
            let concurrency = concurrency.clone();
            async move {
                for _ in 0..count {
                    concurrency.send(async { answer(false) }).await;
                }
                concurrency.limit()
            }
        };
        concurrency.send(async { answer(true) }).await;
        concurrency.send(async { answer(true) }).await;
        assert_eq!(concurrency.limit(), 2, "refused at 4");
        assert_eq!(
            calm(2 * CALM_PER_STEP).await,
            3,
            "under the refused limit: quickly"
        );
        assert_eq!(calm(3 * CALM_PER_STEP * CAUTION - 1).await, 3);
        assert_eq!(calm(1).await, 4, "to the refused limit: after a long calm");
        assert_eq!(calm(4 * CALM_PER_STEP * CAUTION - 1).await, 4);
        assert_eq!(calm(1).await, 5, "past it: after a long calm too");
        assert_eq!(calm(5 * CALM_PER_STEP).await, 6, "then quickly again");
    }

    async fn futures_permits(concurrency: &Concurrency, count: usize) -> Vec<Permit> {
        let mut permits = Vec::new();
        for _ in 0..count {
            permits.push(concurrency.permit().await);
        }
        permits
    }

    /// A call of [`Concurrency::send`] as the retry loop makes it: a 429, waited out until
    /// `resume` sends, then an answer that is not.
    async fn throttled_once(resume: tokio::sync::oneshot::Receiver<()>) -> &'static str {
        answer(true);
        wait_out(std::time::Duration::from_secs(1), async {
            let _ = resume.await;
        })
        .await;
        answer(false);
        "answered"
    }

    /// A call of `concurrency` under way, once it waits out its 429; it goes on when the
    /// sender sends.
    async fn waiting_out(
        concurrency: &Concurrency,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<&'static str>,
    ) {
        let (resume, resumed) = tokio::sync::oneshot::channel();
        let call = tokio::spawn({
            let concurrency = concurrency.clone();
            async move { concurrency.send(throttled_once(resumed)).await }
        });
        for _ in 0..10_000 {
            if places(concurrency).1 > 0 {
                return (resume, call);
            }
            tokio::task::yield_now().await;
        }
        panic!("the call never waited out its 429");
    }

    /// The requests in flight, and those waiting out a 429.
    fn places(concurrency: &Concurrency) -> (usize, usize) {
        let state = concurrency.shared.lock();
        (state.active, state.waiting)
    }

    /// Whether a request taken now would start (`false`: it waits).
    async fn starts(concurrency: &Concurrency) -> bool {
        use futures_util::FutureExt;
        concurrency.permit().now_or_never().is_some()
    }

    #[tokio::test]
    async fn a_call_waiting_out_a_429_lends_its_permit_and_holds_new_requests_back() {
        let concurrency = Concurrency::new(4);
        let held = concurrency.permit().await;
        let (resume, call) = waiting_out(&concurrency).await;
        // Halved once; the call's place lent back (one held of two), yet nothing starts.
        assert_eq!(concurrency.limit(), 2);
        assert_eq!(places(&concurrency), (1, 1));
        assert!(!starts(&concurrency).await);
        resume.send(()).unwrap();
        assert_eq!(call.await.unwrap(), "answered");
        // The 429 it waited out does not halve the limit again; its place is given back.
        assert_eq!(concurrency.limit(), 2);
        assert_eq!(concurrency.answers(), (1, 1));
        assert!(starts(&concurrency).await);
        drop(held);
        assert_eq!(places(&concurrency), (0, 0));
    }

    #[tokio::test]
    async fn a_call_that_ends_on_a_429_halves_the_limit_and_a_calm_one_counts_toward_growth() {
        let concurrency = Concurrency::new(8);
        concurrency.send(async { answer(true) }).await;
        assert_eq!(concurrency.limit(), 4);
        for _ in 0..4 * CALM_PER_STEP {
            concurrency.send(async { answer(false) }).await;
        }
        assert_eq!(concurrency.limit(), 5);
        // Outside `send`, answers and waits are nobody's business.
        answer(true);
        wait_out(std::time::Duration::from_secs(1), async {}).await;
        assert_eq!(concurrency.answers(), (17, 1));
    }

    #[tokio::test]
    async fn a_call_dropped_while_it_waits_out_a_429_gives_its_place_back() {
        let concurrency = Concurrency::new(1);
        let (_resume, call) = waiting_out(&concurrency).await;
        assert!(!starts(&concurrency).await);
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        assert_eq!(places(&concurrency), (0, 0));
        assert!(starts(&concurrency).await);
    }

    #[tokio::test]
    async fn a_waiter_goes_on_when_a_permit_is_given_back() {
        let concurrency = Concurrency::new(1);
        let held = concurrency.permit().await;
        let waiter = tokio::spawn({
            let concurrency = concurrency.clone();
            async move { concurrency.permit().await.answered(0) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
        assert_eq!(concurrency.answers(), (1, 0));
    }
}
