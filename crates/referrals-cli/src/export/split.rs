//! The parts of an export as its tasks read them: each part's range of `createdDateTime` and
//! how far its reading got.
//!
//! Parts are planned as equal spans of time, and the service's referrals are seldom spread
//! evenly over them: the largest part was read by one task alone at the end while the others
//! had nothing left (under a rate limit, a second of an export of 100,000 at 60 requests a
//! second). So a task that finds no part left to start takes over the far half of what the
//! open part with the most referrals left still has to read ([`Ranges::split`]): that part's
//! range now ends at the cut, and a new part reads from the cut to where it ended. Each page
//! is checked against its part's range when it comes ([`Ranges::received`]), under the same
//! lock as the split: the referrals past the cut are left to the new part, whose pages come
//! from its own requests, and the part ends there. Every cut lies past the last referral that
//! its part has read, so no referral is in two parts, and the ranges still cover every
//! instant. The trimming compares the instants that the service wrote with the cut, where the
//! new part's filter is the service's own comparison: the two agree when the service writes
//! each instant as precisely as it keeps it.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use referrals_client::types::Referral;
use tokio::sync::Notify;

use super::checkpoint::Part;

/// The most parts an export holds, those split off included.
const MAX_PARTS: usize = 256;

/// A part as it is read.
#[derive(Debug, Clone)]
struct Reach {
    /// The first instant of the range (`None`: from the earliest).
    from: Option<DateTime<Utc>>,
    /// The instant where the range ends, not included (`None`: to the latest).
    until: Option<DateTime<Utc>>,
    /// The creation instant of the last referral read: the far end of what was read.
    reached: Option<DateTime<Utc>>,
    /// The referrals of the last page read that spans instants, and the milliseconds from the
    /// page before's last referral (or the range's near end) to its own: the pace of what
    /// comes next.
    last_page: Option<(u64, i128)>,
    /// Whether the part is still to be read.
    open: bool,
}

impl Reach {
    fn holds(&self, created: Option<DateTime<Utc>>) -> bool {
        created.is_none_or(|created| {
            self.from.is_none_or(|from| created >= from)
                && self.until.is_none_or(|until| created < until)
        })
    }
}

/// The ranges of an export's parts, shared by the tasks that read them and by the writer that
/// records them in the checkpoint.
#[derive(Debug)]
pub(super) struct Ranges {
    parts: Mutex<Vec<Reach>>,
    /// Told of each page received: a task that found nothing to split looks again.
    received: Notify,
    /// Whether the parts are read newest first (their pages go from `until` down to `from`).
    descending: bool,
    /// The earliest and the latest creation instants that the plan found: where the first
    /// and the last part, which have no bound of their own, are taken to end. `None`: the
    /// parts without a bound are not split.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Ranges {
    /// The ranges of `parts`, read in the order of creation (`descending`: newest first).
    pub(super) fn new(
        parts: &[Part],
        descending: bool,
        span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Self {
        let parts = parts
            .iter()
            .map(|part| Reach {
                from: part.from,
                until: part.until,
                reached: None,
                last_page: None,
                open: !part.done(),
            })
            .collect();
        Self {
            parts: Mutex::new(parts),
            received: Notify::new(),
            descending,
            span,
        }
    }

    /// Whether a part may be split: one with a bound, or any once the span is known (an
    /// export in another order than creation has neither).
    pub(super) fn splittable(&self) -> bool {
        self.span.is_some()
            || self
                .lock()
                .iter()
                .any(|reach| reach.from.is_some() || reach.until.is_some())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Reach>> {
        self.parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks `items`, the next page of part `index`, against the part's range: drops the
    /// referrals past its end (a split gave them to another part) and records how far the
    /// part was read. `true` when the part ends with this page: some of its referrals were
    /// past the end, or it is the listing's last page (`last`).
    pub(super) fn received(&self, index: usize, items: &mut Vec<Referral>, last: bool) -> bool {
        let mut parts = self.lock();
        let Some(reach) = parts.get_mut(index) else {
            return last;
        };
        let past = |created: DateTime<Utc>| match (self.descending, reach.from, reach.until) {
            (true, Some(from), _) => created < from,
            (false, _, Some(until)) => created >= until,
            _ => false,
        };
        let ends = last
            || items
                .iter()
                .any(|item| item.created_date_time.is_some_and(past));
        items.retain(|referral| reach.holds(referral.created_date_time));
        let far = items.iter().rev().find_map(|item| item.created_date_time);
        if let Some(far) = far {
            let since = reach.reached.map(millis).or_else(|| self.ends(reach).0);
            let millis = since.map_or(0, |since| (millis(far) - since).abs());
            // A page of one instant (a tie) tells nothing of the pace past it: the last
            // page that did is kept.
            if millis > 0 {
                reach.last_page = Some((items.len() as u64, millis));
            }
            reach.reached = Some(far);
        }
        if ends {
            reach.open = false;
        }
        drop(parts);
        self.received.notify_waiters();
        ends
    }

    /// A part split off ([`split`](Self::split)) for a task that has nothing left to read, as
    /// soon as one is worth it: `None` once no part is being read. A split costs a page or two
    /// (the part's page past the cut, the new part's last), so it is made only while fewer
    /// parts are read than the requests worth sending at once (`allowed`: under a rate limit,
    /// those that keep its pace). A part just begun is not split before its first page tells
    /// its pace. A task that finds nothing to split waits for the next page of any part and
    /// looks again, rather than leave the others to read what is left alone.
    pub(super) async fn split_when_worth_it(
        &self,
        least: u64,
        allowed: impl Fn() -> usize,
    ) -> Option<(usize, Part)> {
        loop {
            let received = self.received.notified();
            tokio::pin!(received);
            received.as_mut().enable();
            let open = self.lock().iter().filter(|reach| reach.open).count();
            if open == 0 {
                return None;
            }
            if open < allowed()
                && let Some(split) = self.split(least)
            {
                return Some(split);
            }
            received.await;
        }
    }

    /// A part for a task that found none left to start: the far half of what the open part
    /// with the most referrals left (by its pace so far) has still to read, when that half
    /// holds at least `least` referrals. That part's range now ends at the cut; the new part,
    /// whose index and range are returned, is the rest.
    pub(super) fn split(&self, least: u64) -> Option<(usize, Part)> {
        let mut parts = self.lock();
        if parts.len() >= MAX_PARTS {
            return None;
        }
        let (index, cut, _) = parts
            .iter()
            .enumerate()
            .filter_map(|(index, reach)| {
                let (cut, far) = self.cut(reach)?;
                Some((index, cut, far))
            })
            .filter(|(_, _, far)| *far >= least)
            .max_by_key(|(_, _, far)| *far)?;
        let reach = &mut parts[index];
        let mut rest = Reach {
            reached: None,
            last_page: None,
            ..reach.clone()
        };
        if self.descending {
            (reach.from, rest.until) = (Some(cut), Some(cut));
        } else {
            (reach.until, rest.from) = (Some(cut), Some(cut));
        }
        let part = Part {
            from: rest.from,
            until: rest.until,
            ..Part::default()
        };
        parts.push(rest);
        Some((parts.len() - 1, part))
    }

    /// Where to cut `reach` (halfway between the last referral it read and its far end), and
    /// how many referrals the far half holds at the pace of its last page. The last page
    /// rather than the whole part: referrals come in clusters (a batch job's import stamps
    /// hundreds with one instant), and a part's average is blind to the cluster it is in.
    fn cut(&self, reach: &Reach) -> Option<(DateTime<Utc>, u64)> {
        if !reach.open {
            return None;
        }
        let (near, far) = self.ends(reach);
        let (near, far, reached) = (near?, far?, millis(reach.reached?));
        // The instants read and those left, counted in the direction of reading.
        let direction = (far - near).signum();
        let (done, left) = ((reached - near) * direction, (far - reached) * direction);
        if done < 0 || left < 2 {
            return None;
        }
        let half = left / 2;
        let cut = reached + half * direction;
        let (referrals, span) = reach.last_page?;
        let estimate = i128::from(referrals).saturating_mul(left - half) / span;
        let cut = DateTime::from_timestamp_millis(i64::try_from(cut).ok()?)?;
        Some((cut, u64::try_from(estimate).unwrap_or(u64::MAX)))
    }

    /// Where `reach` begins and ends, in milliseconds, in the direction of reading: the
    /// instants of its range, or of the span for a range without a bound (its latest one
    /// millisecond on, as a range ends before its `until`).
    fn ends(&self, reach: &Reach) -> (Option<i128>, Option<i128>) {
        let earliest = self.span.map(|(earliest, _)| millis(earliest));
        let latest = self.span.map(|(_, latest)| millis(latest) + 1);
        let from = reach.from.map(millis).or(earliest);
        let until = reach.until.map(millis).or(latest);
        if self.descending {
            (until, from)
        } else {
            (from, until)
        }
    }

    /// Brings `parts` (the checkpoint's) in step: each part's range as it is now, and the
    /// parts split off since, at the end. Gives the index of the first new part.
    pub(super) fn record(&self, parts: &mut Vec<Part>) -> usize {
        let ranges = self.lock();
        let known = parts.len();
        for (part, reach) in parts.iter_mut().zip(ranges.iter()) {
            (part.from, part.until) = (reach.from, reach.until);
        }
        parts.extend(ranges.iter().skip(known).map(|reach| Part {
            from: reach.from,
            until: reach.until,
            ..Part::default()
        }));
        known
    }
}

/// An instant in milliseconds since 1970, wide enough for any difference of two.
fn millis(instant: DateTime<Utc>) -> i128 {
    i128::from(instant.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(millis)
    }

    fn created(millis: &[i64]) -> Vec<Referral> {
        millis
            .iter()
            .map(|millis| {
                let instant = at(*millis).unwrap().to_rfc3339();
                serde_json::from_value(serde_json::json!({ "createdDateTime": instant })).unwrap()
            })
            .collect()
    }

    fn instants(items: &[Referral]) -> Vec<i64> {
        let millis = |item: &Referral| item.created_date_time.unwrap().timestamp_millis();
        items.iter().map(millis).collect()
    }

    fn part(from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Part {
        Part {
            from,
            until,
            ..Part::default()
        }
    }

    #[test]
    fn the_far_half_of_the_part_with_most_left_is_split_off_and_its_pages_end_at_the_cut() {
        let planned = [part(None, at(100_000)), part(at(100_000), None)];
        let ranges = Ranges::new(
            &planned,
            false,
            Some((at(0).unwrap(), at(200_000).unwrap())),
        );
        assert!(ranges.split(1).is_none(), "nothing read yet");
        assert!(!ranges.received(0, &mut created(&[10_000, 20_000]), false));
        assert!(!ranges.received(1, &mut created(&[100_000, 101_000]), false));
        // The first part has 80 s left at 2 referrals in 20 s; the second, 99 s at 2 in 1 s.
        assert!(ranges.split(100).is_none(), "no half of 100 referrals");
        let (index, range) = ranges.split(50).expect("a split");
        assert_eq!(index, 2);
        assert_eq!((range.from, range.until), (at(150_500), None));
        let mut page = created(&[140_000, 150_500, 160_000]);
        assert!(
            ranges.received(1, &mut page, false),
            "the part ends at the cut"
        );
        assert_eq!(instants(&page), [140_000]);
        let mut page = created(&[150_500, 150_600]);
        assert!(!ranges.received(2, &mut page, false));
        assert_eq!(instants(&page), [150_500, 150_600]);
        let mut parts = planned.to_vec();
        assert_eq!(ranges.record(&mut parts), 2);
        let bounds: Vec<_> = parts.iter().map(|part| (part.from, part.until)).collect();
        assert_eq!(
            bounds,
            [
                (None, at(100_000)),
                (at(100_000), at(150_500)),
                (at(150_500), None)
            ]
        );
        let mut checkpoint = super::super::checkpoint::Checkpoint::new(
            vec![],
            super::super::ExportFormat::Ndjson,
            false,
        );
        checkpoint.parts = parts;
        assert_eq!(checkpoint.order(false), [0, 1, 2]);
        assert!(ranges.received(0, &mut created(&[30_000]), true));
        assert_eq!(
            ranges.split(1).map(|(index, _)| index),
            Some(3),
            "not the ended part"
        );
    }

    #[test]
    fn newest_first_a_part_is_cut_below_what_it_read() {
        let planned = [part(at(100_000), None), part(None, at(100_000))];
        let ranges = Ranges::new(&planned, true, Some((at(0).unwrap(), at(199_999).unwrap())));
        assert!(!ranges.received(0, &mut created(&[190_000, 180_000]), false));
        let (index, range) = ranges.split(1).expect("a split");
        assert_eq!(
            (index, range.from, range.until),
            (2, at(100_000), at(140_000))
        );
        let mut page = created(&[150_000, 139_999]);
        assert!(ranges.received(0, &mut page, false));
        assert_eq!(instants(&page), [150_000]);
        let mut checkpoint = super::super::checkpoint::Checkpoint::new(
            vec![],
            super::super::ExportFormat::Ndjson,
            false,
        );
        checkpoint.parts = planned.to_vec();
        ranges.record(&mut checkpoint.parts);
        assert_eq!(checkpoint.parts[0].from, at(140_000));
        assert_eq!(checkpoint.order(true), [0, 2, 1]);
    }

    #[test]
    fn a_part_without_a_bound_is_not_split_without_the_span_nor_past_the_most_parts() {
        let ranges = Ranges::new(&[part(None, None)], false, None);
        assert!(!ranges.received(0, &mut created(&[1, 2, 3]), false));
        assert!(ranges.split(1).is_none());
        let bounded = vec![part(at(0), at(1_000_000)); MAX_PARTS];
        let ranges = Ranges::new(&bounded, false, None);
        assert!(!ranges.received(0, &mut created(&[1, 2, 3]), false));
        assert!(ranges.split(1).is_none());
    }

    #[test]
    fn a_page_within_one_instant_keeps_the_pace_of_the_page_before() {
        let ranges = Ranges::new(&[part(at(0), at(1_000_000))], false, None);
        assert!(!ranges.received(0, &mut created(&[500_000, 600_000]), false));
        assert!(!ranges.received(0, &mut created(&[600_000; 3]), false));
        // 2 referrals in 600 s: the 200 s past the cut at 800 s hold none by that pace.
        let cut = ranges.cut(&ranges.lock()[0]).unwrap();
        assert_eq!(cut, (at(800_000).unwrap(), 0));
    }

    #[tokio::test]
    async fn a_task_with_nothing_to_split_waits_for_a_page_and_ends_when_every_part_is_read() {
        let ranges = std::sync::Arc::new(Ranges::new(&[part(at(0), at(1_000_000))], false, None));
        let waiter = |allowed: usize| {
            let ranges = ranges.clone();
            tokio::spawn(async move { ranges.split_when_worth_it(1, || allowed).await })
        };
        let waiting = waiter(2);
        // The test's runtime has one thread: the task runs until it waits.
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no pace known yet");
        assert!(!ranges.received(0, &mut created(&[1_000, 2_000]), false));
        let (index, range) = waiting.await.unwrap().expect("a split once a page came");
        assert_eq!(
            (index, range.from, range.until),
            (1, at(501_000), at(1_000_000))
        );
        let waiting = waiter(2);
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "two parts read: as many as are worth it"
        );
        assert!(ranges.received(0, &mut created(&[3_000]), true));
        assert!(ranges.received(1, &mut created(&[]), true));
        assert!(waiting.await.unwrap().is_none(), "every part was read");
    }
}
