//! The reading side of a sync: a task of its own takes the client's batches and makes each
//! referral's JSON, as the mirror stores it, while the sync's own task writes. A SQLite write
//! holds its thread until it commits, and the JSON was made there too: it now is made on the
//! runtime's other workers, and the batches that come during a write are ready when it ends.

use futures_util::Stream;
use referrals_client::sync::{Run, SyncState};
use referrals_client::types::Referral;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many batches (a page each, 100 referrals at most) wait for the sync, made: the reading
/// task holds one more while it waits for room, so the sync's read-ahead is this, one more, and
/// the group it gathers. A first sync of 100,000 into SQLite, side by side: 4.9 s with 8, 5.1
/// to 5.2 s with 2 or 4, and 5.2 s before this task; its peak memory 64 MiB with 8, 45 MiB
/// before.
const READ_AHEAD: usize = 8;

/// A batch as the sync takes it: its referrals, the JSON of each (`None` where it could not be
/// made ahead: it is made again, and its error told, when written), and the state after them.
pub(crate) struct Ready {
    pub(crate) items: Vec<Referral>,
    pub(crate) jsons: Vec<Option<String>>,
    pub(crate) state: SyncState,
}

/// Why the batches stopped before the run's end.
pub(crate) enum Failed {
    /// The run failed.
    Run(referrals_client::Error),
    /// The reading task was cancelled (the runtime is shutting down): the sync stops, and the
    /// next goes on from what was written.
    Cancelled,
}

/// A batch as the run delivers it; `None` at the run's end.
pub(crate) type Delivered = Result<Option<Ready>, Failed>;

/// The JSON of each referral as the mirror stores it.
fn encode(items: &[Referral]) -> Vec<Option<String>> {
    items
        .iter()
        .map(|referral| serde_json::to_string(referral).ok())
        .collect()
}

/// The JSON of `referral`: `made` ahead, or made now.
pub(crate) fn json_of<'a>(
    referral: &Referral,
    made: Option<&'a str>,
) -> Result<std::borrow::Cow<'a, str>, serde_json::Error> {
    match made {
        Some(json) => Ok(std::borrow::Cow::Borrowed(json)),
        None => serde_json::to_string(referral).map(std::borrow::Cow::Owned),
    }
}

/// The reading task, stopped when dropped: a sync that ends or is dropped reads no further.
struct Task(Option<JoinHandle<()>>);

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

impl Task {
    /// Waits for the task's end; a panic in it is the caller's, as it was when the run was
    /// read on the sync's own task. Gives whether it was cancelled.
    async fn finish(mut self) -> bool {
        let Some(handle) = self.0.take() else {
            return false;
        };
        match handle.await {
            Ok(()) => false,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => true,
        }
    }
}

/// The batches of `run`, read and given their JSON by a task of their own, up to
/// [`READ_AHEAD`] ahead of the sync: a stream keeps what it has read when the caller stops
/// waiting for it (to write a group meanwhile). It ends after the run's end or first error.
pub(crate) fn delivered(mut run: Run) -> impl Stream<Item = Delivered> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let reading = async move {
        loop {
            let item = match run.next().await {
                Ok(Some(batch)) => {
                    let (items, state) = batch.deliver();
                    let jsons = encode(&items);
                    Ok(Some(Ready {
                        items,
                        jsons,
                        state,
                    }))
                }
                Ok(None) => Ok(None),
                Err(error) => Err(Failed::Run(error)),
            };
            let more = matches!(item, Ok(Some(_)));
            if sender.send(item).await.is_err() || !more {
                return;
            }
        }
    };
    // The client's spans of requests stay within the caller's.
    let task = tokio::spawn(tracing::Instrument::in_current_span(reading));
    let state = (receiver, Task(Some(task)), false);
    futures_util::stream::unfold(state, |(mut receiver, task, ended)| async move {
        if let Some(item) = receiver.recv().await {
            let ended = !matches!(item, Ok(Some(_)));
            return Some((item, (receiver, task, ended)));
        }
        // The channel closed: after the run's end or error, or because the task stopped
        // without one.
        if task.finish().await && !ended {
            return Some((Err(Failed::Cancelled), (receiver, Task(None), true)));
        }
        None
    })
}
