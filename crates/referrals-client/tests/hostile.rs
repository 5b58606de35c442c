//! Nothing that a server sends can panic the client, make it wait without end, or make it
//! hold more than it was told to: a property test points the client at a local server that
//! answers every request with generated hostile bytes (any status, headers of any size and form,
//! bodies huge, truncated, deeply nested or of the wrong types, next links anywhere) and checks
//! that each call ends, in time, in `Ok` or an `Error`.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use proptest::prelude::*;
use referrals_client::patch::Patch;
use referrals_client::query::Query;
use referrals_client::types::Referral;
use referrals_client::{Client, ErrorKind, StaticToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The client reads at most this much of an answer.
const LIMIT: usize = 64 * 1024;

use referrals_testkit::NoWait;

/// A server on loopback that answers every request on every connection with `answer`, then
/// closes the connection. It stops when its task is dropped.
async fn serve(answer: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                // The request's head (and whatever body came with it), within bounds.
                let mut request = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    let mut read = 0;
                    while read < request.len() {
                        match socket.read(&mut request[read..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(count) => read += count,
                        }
                        if request[..read]
                            .windows(4)
                            .any(|window| window == b"\r\n\r\n")
                        {
                            break;
                        }
                    }
                })
                .await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A status line, headers and a body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether to send `Content-Length` of the body's real length.
    honest_length: bool,
}

impl Answer {
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} Whatever\r\n", self.status).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.honest_length {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => Just(200u16),
        1 => Just(201u16),
        1 => Just(204u16),
        1 => prop::sample::select(vec![301u16, 302, 303, 307, 308]),
        1 => prop::sample::select(vec![401u16, 403, 404, 408, 412, 429, 500, 502, 503, 504]),
        1 => 100u16..1000,
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("18446744073709551615".to_owned()),
        Just("99999999999999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("0".to_owned()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        Just(String::new()),
        "[ -~]{0,40}",
        "[0-9]{1,30}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(vec![
        "Retry-After",
        "Content-Length",
        "ETag",
        "Date",
        "Location",
        "Content-Type",
        "Request-ID",
        "Transfer-Encoding",
    ]);
    prop::collection::vec((name.prop_map(str::to_owned), header_value()), 0..5)
}

fn next_link() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("http://127.0.0.1:1/v1.0/engagements/referrals?$skiptoken=x".to_owned()),
        Just("https://elsewhere.example/v1.0/engagements/referrals?$skiptoken=x".to_owned()),
        Just("javascript:alert(1)".to_owned()),
        Just("/v1.0/engagements/referrals?$skiptoken=relative".to_owned()),
        Just("/v1.0/engagements/referrals?$top=-5&$skip=ten&$count=maybe".to_owned()),
        Just(format!(
            "/v1.0/engagements/referrals?$skiptoken={}",
            "k".repeat(100_000)
        )),
        "[ -~]{0,60}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"id":"r1","eTag":"\"e\"","status":"New"}"#.to_vec()),
        next_link().prop_map(|link| {
            serde_json::json!({ "value": [{ "id": "r1" }], "@odata.nextLink": link, "@odata.count": -3 })
                .to_string()
                .into_bytes()
        }),
        Just(br#"{"value": 5, "@odata.count": "many"}"#.to_vec()),
        Just(br#"{"error": {"code": 7, "message": ["x"]}}"#.to_vec()),
        Just(br#"{"error": {"code": "accessDenied", "innerError": {"innerError": {"innerError": {}}}}}"#.to_vec()),
        (1usize..200_000).prop_map(|depth| {
            let mut nested = "[".repeat(depth).into_bytes();
            nested.extend(std::iter::repeat_n(b']', depth / 2));
            nested
        }),
        (1usize..200_000).prop_map(|depth| {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()
        }),
        Just(br#"{"id": "r1", "details": {"dealValue": 1e99999999999999999999}}"#.to_vec()),
        Just(br#"{"id": "trunc"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..2000),
        (LIMIT..4 * LIMIT).prop_map(|size| {
            let mut big = br#"{"value":[{"id":""#.to_vec();
            big.extend(std::iter::repeat_n(b'x', size));
            big.extend_from_slice(br#""}]}"#);
            big
        }),
        Just(Vec::new()),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    (status(), headers(), body(), any::<bool>()).prop_map(|(status, headers, body, honest)| {
        Answer {
            status,
            headers,
            body,
            honest_length: honest,
        }
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The call `which` against the server at `addr`: its outcome, as `Ok(())` or the error's kind.
async fn call(addr: SocketAddr, which: u8) -> Result<(), ErrorKind> {
    let client = Client::builder(&format!("http://{addr}"), StaticToken::new("secret-token"))
        .allow_http_to_loopback(true)
        .clock(NoWait)
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .max_response_body(LIMIT)
        .max_pages(5)
        .build()
        .unwrap();
    let lead = Referral {
        id: Some("r1".into()),
        e_tag: Some("\"e\"".into()),
        ..Referral::default()
    };
    let result = match which % 4 {
        0 => client.referral("r1").await.map(drop),
        1 => {
            let mut pages = std::pin::pin!(client.pages(Query::new().count(true)));
            let mut outcome = Ok(());
            while let Some(page) = pages.next().await {
                if let Err(error) = page {
                    outcome = Err(error);
                    break;
                }
            }
            outcome
        }
        2 => client
            .update(&lead, Patch::new().set_status_reason("x"))
            .await
            .map(drop),
        _ => client
            .update_unconditionally("r1", Patch::new())
            .await
            .map(drop),
    };
    result.map_err(|error| {
        // Every error can be shown, and never shows the token.
        let text = format!("{error} {error:?}");
        assert!(!text.contains("secret-token"), "{text}");
        error.kind()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(160),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_answer_ends_the_call_in_time(answer in answer(), which in any::<u8>()) {
        let outcome = runtime().block_on(async {
            let (addr, server) = serve(answer.bytes()).await;
            // Four attempts of at most 2 s each, and the pages after the first: well within.
            let outcome = tokio::time::timeout(Duration::from_secs(60), call(addr, which)).await;
            server.abort();
            outcome
        });
        let outcome = outcome.map_err(|_| TestCaseError::fail("the call did not end in time"))?;
        if answer.body.len() > LIMIT && answer.status == 200 && answer.honest_length {
            // A body over the limit is never taken for data.
            prop_assert!(outcome.is_err(), "{:?}", outcome);
        }
    }
}

/// The next link of a hostile page never takes the token elsewhere: to another host, the
/// listing stops; to the same host, only its `$skiptoken` goes, to the service root.
#[test]
fn a_next_link_elsewhere_gets_no_request() {
    runtime().block_on(async {
        let stranger = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stranger_addr = stranger.local_addr().unwrap();
        let link = format!(
            "http://localhost:{}/v1.0/engagements/referrals?$skiptoken=x",
            stranger_addr.port()
        );
        let body = serde_json::json!({ "value": [], "@odata.nextLink": link }).to_string();
        let answer = Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
            honest_length: true,
        };
        let (addr, server) = serve(answer.bytes()).await;
        let outcome = call(addr, 1).await;
        server.abort();
        assert_eq!(outcome, Err(ErrorKind::UntrustedNextLink));
        let accepted = tokio::time::timeout(Duration::from_millis(200), stranger.accept()).await;
        assert!(accepted.is_err(), "the other host received a connection");
    });
}
