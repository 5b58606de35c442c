//! Stopping cleanly: the first Ctrl-C (or SIGTERM) asks a long command to stop after the page in
//! hand, the second stops the process at once (every write is a transaction or a checkpoint, so
//! even that loses nothing that was committed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Whether a stop was asked, and a way to wait for it.
#[derive(Clone)]
pub struct Stop {
    asked: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Stop {
    /// Listens for Ctrl-C and SIGTERM; `say` tells the user what happens.
    pub fn listen(quiet: bool) -> Self {
        let stop = Self {
            asked: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(Notify::new()),
        };
        let task = stop.clone();
        tokio::spawn(async move {
            loop {
                if signal().await.is_err() {
                    // No signal handling on this platform: the process stops as it would.
                    return;
                }
                if task.asked.swap(true, Ordering::SeqCst) {
                    eprintln!("stopped.");
                    std::process::exit(130);
                }
                if !quiet {
                    eprintln!("stopping after the page in hand (Ctrl-C again to stop now)...");
                }
                task.notify.notify_waiters();
            }
        });
        stop
    }

    /// Whether a stop was asked.
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// Waits until a stop is asked.
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        if self.asked() {
            return;
        }
        notified.await;
    }
}

#[cfg(unix)]
async fn signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
