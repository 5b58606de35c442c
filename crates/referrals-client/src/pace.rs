//! The pace of a reader of many pages under a service's rate limit, learnt from its 429s.
//!
//! Halving the requests in flight at each 429 finds a pace the service allows, but far under
//! it: the limit swings between a half and the whole, and each 429 costs the whole reader its
//! `Retry-After`. A 429 says more than "too many": the requests that the service did not
//! refuse, among those sent during the `Retry-After` before it, are what it allows in that
//! time. They are counted once they are answered (when the next request starts: the 429's wait
//! is over, and those in flight then have come back). From then on, requests start at most at
//! [`SHARE`] of that rate, one after another at even
//! intervals; after a calm without a 429 the pace grows by [`PROBE_STEP`] (a probe), so that a
//! service that allows more is found again, one 429 at most per probe.
//!
//! A probe that fails costs the whole reader a `Retry-After` (a second at least, when no
//! request starts), and one that succeeds gains [`PROBE_STEP`] of the rate: at a probe every ten
//! seconds against a service whose limit does not move, the failures cost a tenth of the
//! time for nothing (an export of 100,000 referrals at 60 requests a second met one at its
//! twelfth second). So probes come after half a minute of calm ([`PROBE_EVERY`]), and each
//! probe that meets a 429 within that half minute doubles the calm that the next one waits
//! for, up to [`PROBE_EVERY_MOST`]; one that meets none in it brings the calm back to
//! [`PROBE_EVERY`].

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The share of the rate learnt from a 429 at which requests are sent.
const SHARE: f64 = 0.98;

/// How many starts a request that came late to its turn may make up at once: a turn missed
/// because every place was taken is not lost, and no second holds more than the rate and
/// these.
const CATCH_UP: u32 = 2;

/// How long the pace must meet no 429 before it grows, at first.
const PROBE_EVERY: Duration = Duration::from_secs(30);

/// The longest calm before a probe, after probes that met 429s.
const PROBE_EVERY_MOST: Duration = Duration::from_secs(480);

/// How much the pace grows at each probe.
const PROBE_STEP: f64 = 1.02;

/// The longest window that a rate is learnt over (a `Retry-After` of minutes is read as this),
/// and the shortest (a 429 without one is read as a limit a second).
const LONGEST_WINDOW: Duration = Duration::from_secs(120);
const SHORTEST_WINDOW: Duration = Duration::from_secs(1);

/// The most answers remembered: the rate of a service faster than this many in
/// [`LONGEST_WINDOW`] is read from the last ones only.
const REMEMBERED: usize = 100_000;

/// The requests' pace: the answers of the last [`LONGEST_WINDOW`], the rate learnt, the next
/// start, and the round trip of an answer.
#[derive(Debug)]
pub(crate) struct Pace {
    /// When each answer that was not a 429 was sent, and when it came.
    answered: VecDeque<(Instant, Instant)>,
    /// The first 429 of a stretch and its wait, until the rate is learnt from it.
    learning: Option<(Instant, Duration)>,
    /// Requests a second, once a 429 told.
    rate: Option<f64>,
    /// The earliest start of the next request under the rate.
    next_start: Option<Instant>,
    /// When the rate was last learnt or grown.
    changed: Option<Instant>,
    /// The round trip of an answer, smoothed.
    round_trip: Option<Duration>,
    /// The calm before the next probe.
    probe_every: Duration,
    /// Whether the rate was grown by a probe less than [`PROBE_EVERY`] ago, with no 429 since:
    /// a 429 now is the probe's.
    probed: bool,
}

impl Pace {
    pub(crate) fn new() -> Self {
        Self {
            answered: VecDeque::new(),
            learning: None,
            rate: None,
            next_start: None,
            changed: None,
            round_trip: None,
            probe_every: PROBE_EVERY,
            probed: false,
        }
    }

    /// Requests a second allowed to start, once a 429 was met.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// When the next request may start under the pace, if not now (a rate learnt from a 429
    /// first, once its wait is over).
    pub(crate) fn due(&mut self, now: Instant) -> Option<Instant> {
        if let Some((refused, window)) = self.learning.take() {
            self.learn(refused, window);
        }
        self.rate?;
        self.next_start.filter(|next| *next > now)
    }

    /// Takes a start now: the next is an interval later, or sooner for a request that came
    /// late to its turn (at most [`CATCH_UP`] turns made up).
    pub(crate) fn take(&mut self, now: Instant) {
        let Some(rate) = self.rate else { return };
        let interval = Duration::from_secs_f64(1.0 / rate);
        let earliest = now.checked_sub(interval * CATCH_UP).unwrap_or(now);
        let at = self.next_start.map_or(now, |next| next.max(earliest));
        self.next_start = Some(at + interval);
    }

    /// An answer that was not a 429, after `took`: remembered for the rate, and the pace grown
    /// after a long calm.
    pub(crate) fn answered(&mut self, now: Instant, took: Duration) {
        self.round_trip = Some(match self.round_trip {
            Some(smoothed) => smoothed.mul_f64(0.875) + took.mul_f64(0.125),
            None => took,
        });
        if self.answered.len() >= REMEMBERED {
            self.answered.pop_front();
        }
        self.answered
            .push_back((now.checked_sub(took).unwrap_or(now), now));
        while self
            .answered
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > LONGEST_WINDOW)
        {
            self.answered.pop_front();
        }
        let (Some(rate), Some(changed)) = (self.rate, self.changed) else {
            return;
        };
        let calm = now.duration_since(changed);
        if self.probed && calm >= PROBE_EVERY {
            // The last probe met no 429 in a whole first calm: the service allowed it.
            self.probe_every = PROBE_EVERY;
            self.probed = false;
        }
        if calm >= self.probe_every {
            self.rate = Some(rate * PROBE_STEP);
            self.changed = Some(now);
            self.probed = true;
        }
    }

    /// The first 429 of a stretch, whose wait (`Retry-After`) is `window`: the rate is learnt
    /// from it when the next request starts.
    pub(crate) fn refused(&mut self, now: Instant, window: Duration) {
        self.learning = Some((now, window.clamp(SHORTEST_WINDOW, LONGEST_WINDOW)));
        if std::mem::take(&mut self.probed) {
            self.probe_every = (self.probe_every * 2).min(PROBE_EVERY_MOST);
        }
        // The calm that grows the pace starts again.
        if self.changed.is_some() {
            self.changed = Some(now);
        }
    }

    /// The rate becomes [`SHARE`] of the requests sent in the `window` before `refused` and
    /// answered without a 429, a second; nothing is learnt when there were none.
    fn learn(&mut self, refused: Instant, window: Duration) {
        let since = refused.checked_sub(window).unwrap_or(refused);
        let allowed = self
            .answered
            .iter()
            .rev()
            .take_while(|(_, answered)| *answered >= since)
            .filter(|(sent, _)| *sent >= since && *sent <= refused)
            .count();
        if allowed == 0 {
            return;
        }
        self.rate = Some(allowed as f64 / window.as_secs_f64() * SHARE);
        self.changed = Some(refused);
    }

    /// How many requests in flight the pace needs (its rate times a round trip, and one
    /// more), none before a rate is learnt.
    pub(crate) fn needed(&self) -> usize {
        match (self.rate, self.round_trip) {
            (Some(rate), Some(round_trip)) => {
                let needed = (rate * round_trip.as_secs_f64()).ceil();
                // A float to a count: saturating, and never below one.
                (needed as usize).saturating_add(1)
            }
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_teaches_the_rate_of_the_window_before_it_and_calm_grows_it() {
        let mut pace = Pace::new();
        let begun = Instant::now();
        let trip = Duration::from_millis(50);
        // 55 answers of requests sent in the first 400 ms, then a 429 that asks for a second,
        // while 5 more sent before it are in flight; one sent after it is not counted.
        for index in 0..55u32 {
            pace.answered(
                begun + trip + Duration::from_millis(u64::from(index) * 6),
                trip,
            );
        }
        assert_eq!(pace.due(begun), None, "no pace before a 429");
        let refused = begun + Duration::from_millis(400);
        pace.refused(refused, Duration::from_secs(1));
        for index in 0..5u64 {
            pace.answered(refused + Duration::from_millis(10 + index), trip);
        }
        pace.answered(refused + trip * 2, trip);
        assert_eq!(pace.rate(), None, "learnt when the next request starts");
        assert_eq!(pace.due(refused), None);
        let rate = pace.rate().expect("a rate");
        assert!((rate - 60.0 * SHARE).abs() < 1e-9, "{rate}");
        // Starts at even intervals: the first now, the next a 1/rate later.
        pace.take(refused);
        let second = pace.due(refused).expect("a wait");
        assert_eq!(second - refused, Duration::from_secs_f64(1.0 / rate));
        // 60 a second for 50 ms each: 3 in flight, and one more.
        assert_eq!(pace.needed(), 4);
        // A first calm: 2% more.
        pace.answered(refused + PROBE_EVERY, Duration::from_millis(50));
        let grown = pace.rate().expect("a rate");
        assert!((grown - rate * PROBE_STEP).abs() < 1e-9, "{grown}");
    }

    #[test]
    fn a_probe_that_meets_a_429_doubles_the_calm_before_the_next() {
        let mut pace = Pace::new();
        let begun = Instant::now();
        let trip = Duration::from_millis(50);
        let second = Duration::from_secs(1);
        pace.answered(begun + trip, trip);
        pace.refused(begun + trip, second);
        assert!(pace.due(begun + trip).is_none() && pace.rate().is_some());
        let learnt = begun + trip;
        // A probe after the first calm, then a 429: the next calm is twice as long.
        pace.answered(learnt + PROBE_EVERY, trip);
        assert_eq!(pace.probe_every, PROBE_EVERY);
        let failed = learnt + PROBE_EVERY + second;
        pace.refused(failed, second);
        assert_eq!(pace.probe_every, PROBE_EVERY * 2);
        pace.answered(failed + trip, trip);
        pace.due(failed + trip);
        let rate = pace.rate().unwrap();
        pace.answered(failed + PROBE_EVERY + trip, trip);
        assert_eq!(pace.rate(), Some(rate), "no probe before the longer calm");
        pace.answered(failed + PROBE_EVERY * 2 + trip, trip);
        assert!(pace.rate().unwrap() > rate, "the probe after it");
        // That probe met no 429 for a whole calm: the next comes after the first calm again.
        pace.answered(failed + PROBE_EVERY * 4 + trip * 2, trip);
        assert_eq!(pace.probe_every, PROBE_EVERY);
        for _ in 0..10 {
            pace.probed = true;
            pace.refused(failed, second);
        }
        assert_eq!(pace.probe_every, PROBE_EVERY_MOST);
    }

    #[test]
    fn a_429_with_no_answer_before_it_teaches_nothing() {
        let mut pace = Pace::new();
        let now = Instant::now();
        pace.refused(now, Duration::from_secs(1));
        assert_eq!(pace.due(now), None);
        assert_eq!(pace.rate(), None);
        assert_eq!(pace.needed(), 1);
    }
}
