//! `sync --every --observe ADDR`: the library's [`SyncObserver`] (`/healthz`, `/readyz`,
//! `/metrics`) on an address of its own, until the stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use referrals_mirror::receiver::{SyncObserver, http};

use crate::stop::Stop;

/// Serves the health of a sync run every `every` on `addr` until `stop`.
pub async fn start(
    addr: SocketAddr,
    every: Duration,
    stop: &Stop,
) -> anyhow::Result<Arc<SyncObserver>> {
    let observer = SyncObserver::new(every)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--observe)"))?;
    let (router, stop) = (observer.router(), stop.clone());
    tokio::spawn(async move {
        let shutdown = async move { stop.wait().await };
        http::serve(listener, router, shutdown).await;
    });
    Ok(observer)
}
