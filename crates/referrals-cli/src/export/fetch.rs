//! The pages of an export's parts, asked for by a few tasks at once: each task reads one part
//! after another, a part's pages in their order; every request waits for a permit of the
//! shared [`Concurrency`], which the service's 429 answers make scarcer. A task asks for a
//! page only once the channel has room for it: the pages asked for and those read but not yet
//! written are at most one per task, so memory stays flat whatever the export's size.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use referrals_client::concurrency::Concurrency;
use referrals_client::query::Query;
use referrals_client::{Client, Continuation, Error, Page};
use tokio::sync::mpsc;

use super::checkpoint::Checkpoint;
use super::plan::part_query;

/// A page of a part, or the error that ended it.
pub(super) struct Fetched {
    pub(super) part: usize,
    pub(super) page: Result<Page, Error>,
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
    client: &Client,
    query: &Query,
    checkpoint: &Checkpoint,
    concurrency: &Concurrency,
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
    let tasks = tasks.clamp(1, jobs.len().max(1));
    let (sender, receiver) = mpsc::channel(tasks);
    let queue: Queue = Arc::new(Mutex::new(jobs));
    for _ in 0..tasks {
        let (client, queue, sender) = (client.clone(), queue.clone(), sender.clone());
        let concurrency = concurrency.clone();
        tokio::spawn(async move {
            while let Some(job) = take(&queue) {
                if !read(&client, job, &sender, &concurrency).await {
                    return;
                }
            }
        });
    }
    receiver
}

fn take(queue: &Queue) -> Option<Job> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop_front()
}

/// Reads `job`'s part to its last page; `false` when it stopped for an error or because the
/// receiver is gone.
async fn read(
    client: &Client,
    job: Job,
    sender: &mpsc::Sender<Fetched>,
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
        let page = if count {
            let counted = query.clone().count(true);
            concurrency.send(client.list_page(&counted, None)).await
        } else {
            concurrency
                .send(client.list_page(&query, next.as_ref()))
                .await
        };
        count = false;
        let (failed, after) = match &page {
            Ok(page) => (false, page.next().ok().flatten().cloned()),
            Err(_) => (true, None),
        };
        room.send(Fetched { part, page });
        if failed {
            return false;
        }
        match after {
            Some(after) => next = Some(after),
            None => return true,
        }
    }
}
