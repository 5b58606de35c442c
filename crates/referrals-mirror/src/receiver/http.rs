//! Taking connections for months: plain HTTP/1.1, where each request's head must arrive
//! within [`HEADER_TIMEOUT`] and a callback's body within [`BODY_TIMEOUT`] (a client that
//! sends half a header, or a body a byte at a time, is closed or answered 408, so that slow
//! clients cannot hold connections without end; idle kept-alive connections close after the
//! head's deadline too), at most [`MAX_CONNECTIONS`] at once (more
//! wait in the listener's backlog), and a stop that lets the requests in hand finish (at most
//! [`STOP_GRACE`]).
//!
//! `axum::serve` sets no deadline on a request's head, hence hyper's connection builder here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client may take to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a callback's body, once its head arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a stop waits for the requests in hand.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Serves `router` on one connection (plain or already through TLS), with the deadline on
/// each request's head; ends when the client or the deadline closes it.
pub async fn serve_connection<I>(io: I, router: axum::Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _ = builder()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router))
        .await;
}

fn builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
}

/// Serves `router` on the connections of `listener` until `shutdown` completes, then waits
/// for the requests in hand (at most [`STOP_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = GracefulShutdown::new();
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = Arc::clone(&places).acquire_owned() => place,
            () = &mut shutdown => break,
        };
        let Ok(place) = place else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors, or a connection reset before it was taken: wait a
            // little rather than spin.
            Err(error) => {
                tracing::warn!("cannot take a connection: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder().serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(place);
        });
    }
    // No new connection is taken while the ones in hand finish.
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(STOP_GRACE) => {}
    }
}
