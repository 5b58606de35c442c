//! The pages of an export's parts, asked for by a few tasks at once: each task reads one part
//! after another, a part's pages in their order, and once no part is left to start, the far
//! half of the part with the most left ([`Ranges::split`]); every request waits for a permit of
//! the shared [`Concurrency`], which the service's 429 answers make scarcer. A task asks for a
//! page only once the channel has room for it: the pages asked for and those read but not yet
//! written are at most one per task, so memory stays flat whatever the export's size. A task
//! makes its page's rows itself, so that the pages waiting are their rows (about the size of
//! the service's JSON), not decoded referrals (more than twice that), and the rows of several
//! pages are made at once.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use referrals_client::concurrency::Concurrency;
use referrals_client::query::Query;
use referrals_client::{Client, Continuation, Error, Page};
use tokio::sync::mpsc;

use super::checkpoint::Checkpoint;
use super::plan::part_query;
use super::split::Ranges;
use super::writers::Rows;
use crate::output::Writer;

/// The fewest referrals worth splitting off a part being read, while fewer parts are read
/// than requests are worth sending: a page of the service (a split costs about one).
const LEAST_SPLIT: u64 = 100;

/// A page of a part, or the error that ended it.
pub(super) struct Fetched {
    pub(super) part: usize,
    pub(super) page: Result<Written, Error>,
    /// Whether the part ends with this page (its last, or one that reached its range's end).
    pub(super) ends: bool,
}

/// A page made into rows of the export's file, and what the checkpoint needs of it.
pub(super) struct Written {
    /// The rows of its referrals.
    pub(super) rows: io::Result<Vec<u8>>,
    pub(super) referrals: u64,
    /// `@odata.count`, when it was asked for.
    pub(super) count: Option<i64>,
    /// Where the listing goes on ([`Page::next`]).
    pub(super) next: Result<Option<Continuation>, Error>,
}

impl Written {
    fn of(page: &Page, writer: &mut Writer<Vec<u8>>) -> Self {
        let rows = page
            .items
            .iter()
            .try_for_each(|referral| writer.write(referral))
            .map(|()| std::mem::take(writer.get_mut()));
        writer.get_mut().clear();
        Self {
            rows,
            referrals: page.items.len() as u64,
            count: page.count,
            next: page.next().map(|next| next.cloned()),
        }
    }
}

/// A part to read, from where its checkpoint stands.
struct Job {
    part: usize,
    query: Query,
    next: Option<Continuation>,
    /// Ask for the count with the first page (an export in one part sizes its progress bar so).
    count: bool,
}

type Queue = Arc<Mutex<VecDeque<Job>>>;

/// The pages of the parts of `checkpoint` that are not done, by `tasks` tasks at most. The
/// channel ends when every part was read, or after the first error; dropping the receiver
/// stops the tasks after the request in hand.
pub(super) fn fetch(
    (client, concurrency): (&Client, &Concurrency),
    query: &Query,
    checkpoint: &Checkpoint,
    (ranges, rows): (&Arc<Ranges>, &Rows),
    tasks: usize,
) -> mpsc::Receiver<Fetched> {
    let jobs: VecDeque<Job> = checkpoint
        .parts
        .iter()
        .enumerate()
        .filter(|(_, part)| !part.done())
        .map(|(index, part)| Job {
            part: index,
            query: part_query(query, part),
            next: part.next.clone(),
            count: checkpoint.total.is_none() && checkpoint.parts.len() == 1 && part.pages == 0,
        })
        .collect();
    // More tasks than parts only where parts can be split.
    let parts = if ranges.splittable() {
        tasks
    } else {
        jobs.len()
    };
    let tasks = tasks.clamp(1, parts.max(1));
    let (sender, receiver) = mpsc::channel(tasks);
    let queue: Queue = Arc::new(Mutex::new(jobs));
    let query = Arc::new(query.clone());
    for _ in 0..tasks {
        let (client, queue, sender) = (client.clone(), queue.clone(), sender.clone());
        let (concurrency, ranges, query) = (concurrency.clone(), ranges.clone(), query.clone());
        let mut writer = rows.writer(Vec::new());
        tokio::spawn(async move {
            while let Some(job) = take(&queue, (&ranges, &concurrency), &query).await {
                let to = (&sender, ranges.as_ref(), &mut writer);
                if !read(&client, job, to, &concurrency).await {
                    return;
                }
            }
        });
    }
    receiver
}

/// The next part to read: one not started yet, or else one split off a part being read.
async fn take(
    queue: &Queue,
    (ranges, concurrency): (&Ranges, &Concurrency),
    query: &Query,
) -> Option<Job> {
    let queued = queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop_front();
    if queued.is_some() {
        return queued;
    }
    let allowed = || concurrency.worth_at_once();
    let (part, range) = ranges.split_when_worth_it(LEAST_SPLIT, allowed).await?;
    Some(Job {
        part,
        query: part_query(query, &range),
        next: None,
        count: false,
    })
}

/// Reads `job`'s part to its last page; `false` when it stopped for an error or because the
/// receiver is gone.
async fn read(
    client: &Client,
    job: Job,
    (sender, ranges, writer): (&mpsc::Sender<Fetched>, &Ranges, &mut Writer<Vec<u8>>),
    concurrency: &Concurrency,
) -> bool {
    let Job {
        part,
        query,
        mut next,
        mut count,
    } = job;
    loop {
        // A place in the channel first: a page is asked for only when there is room for it,
        // so that the pages in memory (asked for, or read and waiting) are at most as many
        // as the tasks, however slowly they are written.
        let Ok(room) = sender.reserve().await else {
            return false;
        };
        let mut page = if count {
            let counted = query.clone().count(true);
            concurrency.send(client.list_page(&counted, None)).await
        } else if let Some(next) = &next {
            // The continuation's own listing: a part that a split made shorter since has
            // pages past its new end, which `Ranges::received` drops.
            concurrency.send(client.resume(next)).await
        } else {
            concurrency.send(client.list_page(&query, None)).await
        };
        count = false;
        let (failed, after, ends) = match &mut page {
            Ok(page) => {
                let after = page.next().ok().flatten().cloned();
                let last = matches!(page.next(), Ok(None));
                (false, after, ranges.received(part, &mut page.items, last))
            }
            Err(_) => (true, None, false),
        };
        let page = page.map(|page| Written::of(&page, writer));
        room.send(Fetched { part, page, ends });
        if failed {
            return false;
        }
        match after.filter(|_| !ends) {
            Some(after) => next = Some(after),
            None => return true,
        }
    }
}
