//! The receiver's server closes a connection whose request head does not arrive in time, so
//! that clients sending half a header cannot hold connections without end, while a whole
//! request on another connection is answered meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use referrals_mirror::receiver::http;

/// A server of "ok" on loopback, at most `cap` connections at once.
struct Served {
    runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

fn served(cap: usize) -> Served {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(|| async { "ok" });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = runtime.spawn(http::serve_with(listener, router, shutdown, cap));
    Served {
        runtime,
        addr,
        stop,
        server,
    }
}

#[test]
fn half_a_header_is_closed_and_a_whole_request_answered() {
    let Served {
        runtime,
        addr,
        stop,
        server,
    } = served(http::MAX_CONNECTIONS);

    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half")
                .unwrap();
            stream
        })
        .collect();

    let mut whole = TcpStream::connect(addr).unwrap();
    whole
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    whole.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Each slow connection is closed by the server (a read ends) within the deadline and a
    // margin; the loop is bounded.
    let limit = http::HEADER_TIMEOUT + Duration::from_secs(20);
    let started = Instant::now();
    for stream in &mut slow {
        let left = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left)).unwrap();
        let mut buffer = Vec::new();
        let read = stream.read_to_end(&mut buffer);
        assert!(read.is_ok(), "the server closed it: {read:?}");
    }
    let _ = stop.send(());
    runtime.block_on(server).unwrap();
}

#[test]
fn a_connection_beyond_the_cap_is_answered_503_at_once() {
    let Served {
        runtime,
        addr,
        stop,
        server,
    } = served(2);
    // Two connections hold the two places with half a header.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"POST / HTTP/1.1\r\nX-Half").unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut beyond = TcpStream::connect(addr).unwrap();
    beyond
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    beyond
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    beyond.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(held);
    let _ = stop.send(());
    runtime.block_on(server).unwrap();
}
