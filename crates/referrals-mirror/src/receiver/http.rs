//! Taking connections for months: plain HTTP/1.1, where each request's head must arrive
//! within [`HEADER_TIMEOUT`] and a callback's body within [`BODY_TIMEOUT`] (a client that
//! sends half a header, or a body a byte at a time, is closed or answered 408, so that slow
//! clients cannot hold connections without end; idle kept-alive connections close after the
//! head's deadline too), at most [`MAX_CONNECTIONS`] at once unless set otherwise (a
//! connection beyond is answered 503 at once and closed, rather than held), and a stop that
//! lets the requests in hand finish (at most [`STOP_GRACE`]).
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
pub const MAX_CONNECTIONS: usize = 4096;

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

/// What a connection beyond the cap is answered before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

/// The most connections being answered 503 at once; beyond, a connection is closed at once.
const REFUSING: usize = 64;

/// Serves `router` on the connections of `listener` until `shutdown` completes, then waits
/// for the requests in hand (at most [`STOP_GRACE`]); at most [`MAX_CONNECTIONS`] at once.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with(listener, router, shutdown, MAX_CONNECTIONS).await;
}

/// [`serve`], with at most `max_connections` at once (at least 1): a connection beyond is
/// answered 503 with `Retry-After: 1` and closed.
pub async fn serve_with(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
    max_connections: usize,
) {
    let graceful = GracefulShutdown::new();
    let places = Arc::new(Semaphore::new(max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            refuse(stream, &refusing);
            continue;
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

/// Answers a connection beyond the cap 503 and closes it, within a second; closes it at once
/// when [`REFUSING`] are being answered so already.
fn refuse(mut stream: tokio::net::TcpStream, refusing: &Arc<Semaphore>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(slot) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let answer = async {
            let _ = stream.write_all(BUSY).await;
            let _ = stream.shutdown().await;
            // What the client sent is read and dropped until it closes: a socket closed with
            // unread bytes is reset, and the reset may take the answer with it.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
        drop(slot);
    });
}
