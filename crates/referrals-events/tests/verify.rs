//! The verifier against signed callbacks of a test authority: a good one passes, and each
//! forged or damaged one is refused by the check that names it, with the documented status;
//! a certificate URL that is not allowed is never fetched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use referrals_client::webhooks::parameters::receive_webhook_event as documented;
use referrals_client::webhooks::security;
use referrals_events::{Rejection, Verifier};
use referrals_sandbox::signer::{Signer, SigningCertificate};

const EVENT: &str = r#"{"EventName":"referral-updated","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/61c65491-2f2c-461a-84b4-3654499bc1d9","ResourceName":"referral","AuditUri":null,"ResourceChangeUtcDate":"2018-02-17T00:05:39.5485487+00:00"}"#;

/// A server of certificate files on loopback: `/good.cer`, `/redirect.cer`, `/slow.cer`,
/// `/large.cer`, and any other path counted as a fetch.
struct Files {
    addr: SocketAddr,
    fetches: Arc<AtomicUsize>,
    /// The fetches of `/good.cer`.
    good: Arc<AtomicUsize>,
}

async fn files(certificate: Vec<u8>) -> Files {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&fetches);
    let good = Arc::new(AtomicUsize::new(0));
    let good_counted = Arc::clone(&good);
    let app = Router::new()
        .route(
            "/good.cer",
            get(move || {
                good_counted.fetch_add(1, Ordering::SeqCst);
                let certificate = certificate.clone();
                async move {
                    // Slow enough that the callbacks below overlap.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    certificate
                }
            }),
        )
        .route(
            "/redirect.cer",
            get(|| async { (StatusCode::FOUND, [("location", "/good.cer")]).into_response() }),
        )
        .route(
            "/slow.cer",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Vec::<u8>::new()
            }),
        )
        .route("/large.cer", get(|| async { vec![0u8; 200 * 1024] }))
        .fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::NOT_FOUND }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Files {
        addr,
        fetches,
        good,
    }
}

fn verifier(signer: &Signer, files: &Files) -> Verifier {
    Verifier::builder()
        .only_hosts_added()
        .platform_roots(false)
        .trust_root(signer.root_der())
        .allow_http_loopback("127.0.0.1", files.addr.port())
        .unwrap()
        .fetch_timeout(Duration::from_secs(1))
        .build()
        .unwrap()
}

fn headers(signature: &str, url: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        headers.insert(name, HeaderValue::from_str(value).unwrap());
    };
    set(security::EVENT_SIGNATURE, signature);
    set(documented::X_MS_CERTIFICATE_URL, url);
    set(documented::X_MS_SIGNATURE_ALGORITHM, "rsa-sha256");
    headers
}

fn good_signer() -> Signer {
    Signer::new(&SigningCertificate::default()).unwrap()
}

#[tokio::test]
async fn a_signed_event_passes_and_names_its_referral() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let verifier = verifier(&signer, &files);
    let url = format!("http://{}/good.cer", files.addr);
    let event = verifier
        .verify(
            &headers(&signer.sign(EVENT.as_bytes()).unwrap(), &url),
            EVENT.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(event.name().as_str(), "referral-updated");
    assert_eq!(
        event.referral_id.as_deref(),
        Some("61c65491-2f2c-461a-84b4-3654499bc1d9")
    );
    assert_eq!(event.audit(), None);

    // The signature in `x-ms-signature`, as a registration may ask.
    let mut moved = headers("", &url);
    moved.remove(security::EVENT_SIGNATURE);
    moved.insert(
        security::EVENT_SIGNATURE_HEADER,
        HeaderValue::from_str(&signer.sign(EVENT.as_bytes()).unwrap()).unwrap(),
    );
    assert!(verifier.verify(&moved, EVENT.as_bytes()).await.is_ok());

    // AuditUrl, as the event model's table names it, is read too.
    let audited =
        r#"{"EventName":"referral-created","ResourceUri":"x/y/abc","AuditUrl":"https://a/b"}"#;
    let event = verifier
        .verify(
            &headers(&signer.sign(audited.as_bytes()).unwrap(), &url),
            audited.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        (event.audit(), event.referral_id.as_deref()),
        (Some("https://a/b"), Some("abc"))
    );
}

#[tokio::test]
async fn a_root_is_taken_as_pem_or_der_and_pem_without_a_certificate_is_refused() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let url = format!("http://{}/good.cer", files.addr);
    let signed = headers(&signer.sign(EVENT.as_bytes()).unwrap(), &url);
    let origin = files.addr.to_string();
    let from_pem = Verifier::for_sandbox(&origin, signer.root_pem()).unwrap();
    assert!(from_pem.verify(&signed, EVENT.as_bytes()).await.is_ok());
    let from_der = Verifier::for_sandbox(&origin, signer.root_der()).unwrap();
    assert!(from_der.verify(&signed, EVENT.as_bytes()).await.is_ok());
    // Another root, as PEM: the chain does not verify.
    let other = good_signer();
    let untrusted = Verifier::for_sandbox(&origin, other.root_pem()).unwrap();
    let refused = untrusted
        .verify(&signed, EVENT.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 401);
    let empty = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let error = Verifier::for_sandbox(&origin, empty).unwrap_err();
    assert!(
        error.to_string().contains("holds no certificate"),
        "{error}"
    );
    let error = Verifier::for_sandbox("example.com:80", signer.root_pem()).unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn forged_and_damaged_callbacks_are_refused_by_the_check_that_fails() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let verifier = verifier(&signer, &files);
    let good = format!("http://{}/good.cer", files.addr);
    let signature = signer.sign(EVENT.as_bytes()).unwrap();
    let check = |result: Result<referrals_events::Event, Rejection>| {
        let rejection = result.unwrap_err();
        (rejection.check(), rejection.status())
    };

    let mut missing = headers(&signature, &good);
    missing.remove(documented::X_MS_CERTIFICATE_URL);
    assert_eq!(
        check(verifier.verify(&missing, EVENT.as_bytes()).await),
        ("headers", 400)
    );
    let mut unsigned = headers(&signature, &good);
    unsigned.remove(security::EVENT_SIGNATURE);
    assert_eq!(
        check(verifier.verify(&unsigned, EVENT.as_bytes()).await),
        ("headers", 400)
    );
    let mut algorithm = headers(&signature, &good);
    algorithm.insert(
        documented::X_MS_SIGNATURE_ALGORITHM,
        HeaderValue::from_static("rsa-sha1"),
    );
    assert_eq!(
        check(verifier.verify(&algorithm, EVENT.as_bytes()).await),
        ("algorithm", 401)
    );

    let tampered = EVENT.replace("referral-updated", "referral-created");
    assert_eq!(
        check(
            verifier
                .verify(&headers(&signature, &good), tampered.as_bytes())
                .await
        ),
        ("signature", 401)
    );
    assert_eq!(
        check(
            verifier
                .verify(&headers("Signature !!", &good), EVENT.as_bytes())
                .await
        ),
        ("signature format", 401)
    );
    let huge = vec![b' '; referrals_events::MAX_BODY + 1];
    assert_eq!(
        check(verifier.verify(&headers(&signature, &good), &huge).await),
        ("body size", 400)
    );

    for (body, expected) in [("not json", "json"), (r#"{"ResourceUri":"x"}"#, "event")] {
        let signed = signer.sign(body.as_bytes()).unwrap();
        assert_eq!(
            check(
                verifier
                    .verify(&headers(&signed, &good), body.as_bytes())
                    .await
            ),
            (expected, 400),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_certificate_url_that_is_not_allowed_is_never_fetched() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let verifier = verifier(&signer, &files);
    let signature = signer.sign(EVENT.as_bytes()).unwrap();
    let port = files.addr.port();
    for url in [
        format!("https://127.0.0.1:{port}/other.cer"),
        format!("http://127.0.0.1:{}/other.cer", port + 1),
        format!("http://localhost:{port}/other.cer"),
        format!("http://user@127.0.0.1:{port}/other.cer"),
        format!("http://127.0.0.1:{port}/other.cer#x"),
        format!("http://127.0.0.1:{port}/other.cer?n=1"),
        "http://3psostorageacct.blob.core.windows.net/cert/x.cer".to_owned(),
        "https://3psostorageacct.blob.core.windows.net.evil.example/x.cer".to_owned(),
        "https://3psostorageacct.blob.core.windows.net%2eevil.example/x.cer".to_owned(),
        "https://evil.example/https://3psostorageacct.blob.core.windows.net/x.cer".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        let rejection = verifier
            .verify(&headers(&signature, &url), EVENT.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(
            (rejection.check(), rejection.status()),
            ("certificate url", 401),
            "{url}: {rejection}"
        );
    }
    assert_eq!(
        files.fetches.load(Ordering::SeqCst),
        0,
        "nothing was fetched"
    );
}

#[tokio::test]
async fn a_fetch_that_redirects_is_slow_or_large_is_stopped() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let verifier = Verifier::builder()
        .only_hosts_added()
        .platform_roots(false)
        .trust_root(signer.root_der())
        .allow_http_loopback("127.0.0.1", files.addr.port())
        .unwrap()
        .fetch_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let signature = signer.sign(EVENT.as_bytes()).unwrap();
    for path in ["redirect.cer", "slow.cer", "large.cer"] {
        let url = format!("http://{}/{path}", files.addr);
        let started = std::time::Instant::now();
        let rejection = verifier
            .verify(&headers(&signature, &url), EVENT.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(
            rejection.check(),
            "certificate fetch",
            "{path}: {rejection}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} was not stopped"
        );
    }
}

#[tokio::test]
async fn certificates_of_another_organization_expired_untrusted_or_weak_are_refused() {
    let trusted = good_signer();
    let cases = [
        (
            SigningCertificate {
                organization: "Contoso".into(),
                ..SigningCertificate::default()
            },
            "organization",
        ),
        (
            SigningCertificate {
                valid_from_days: -30,
                valid_to_days: -1,
                ..SigningCertificate::default()
            },
            "certificate chain",
        ),
        (
            SigningCertificate {
                valid_from_days: 2,
                valid_to_days: 30,
                ..SigningCertificate::default()
            },
            "certificate chain",
        ),
        (
            SigningCertificate {
                key_bits: 1024,
                ..SigningCertificate::default()
            },
            "key size",
        ),
    ];
    for (wanted, expected) in cases {
        let signer = Signer::new(&wanted).unwrap();
        let files = files(signer.certificate_der().to_vec()).await;
        let verifier = verifier(&signer, &files);
        let url = format!("http://{}/good.cer", files.addr);
        let signature = signer.sign(EVENT.as_bytes()).unwrap();
        let rejection = verifier
            .verify(&headers(&signature, &url), EVENT.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(
            (rejection.check(), rejection.status()),
            (expected, 401),
            "{wanted:?}: {rejection}"
        );
    }
    // A good certificate of another authority than the one trusted.
    let stranger = good_signer();
    let files = files(stranger.certificate_der().to_vec()).await;
    let verifier = verifier(&trusted, &files);
    let url = format!("http://{}/good.cer", files.addr);
    let signature = stranger.sign(EVENT.as_bytes()).unwrap();
    let rejection = verifier
        .verify(&headers(&signature, &url), EVENT.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(rejection.check(), "certificate chain", "{rejection}");
}

/// A stranger naming new files makes the verifier fetch at most its bound in a minute (the
/// rest is answered 503, fetching nothing), and callbacks naming one file at once fetch it once.
/// (The bound is per verifier: the second part uses a fresh one.)
#[tokio::test]
async fn certificate_fetches_are_one_at_a_time_once_per_file_and_bounded() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let verifier = Arc::new(verifier(&signer, &files));
    let signature = signer.sign(EVENT.as_bytes()).unwrap();

    let mut busy = 0;
    for n in 0..100 {
        let url = format!("http://{}/new-{n}.cer", files.addr);
        let rejection = verifier
            .verify(&headers(&signature, &url), EVENT.as_bytes())
            .await
            .unwrap_err();
        if rejection.status() == 503 {
            assert_eq!(rejection.check(), "certificate fetches");
            busy += 1;
        }
    }
    let fetched = files.fetches.load(Ordering::SeqCst);
    assert!(fetched <= 30, "{fetched} fetches in a minute");
    assert!(busy >= 70, "{busy} answered 503");

    // The genuine file, asked many times at once on a fresh verifier, is fetched once and
    // then served from the cache.
    let verifier = Arc::new(self::verifier(&signer, &files));
    let good = format!("http://{}/good.cer", files.addr);
    let calls = (0..20).map(|_| {
        let (verifier, good, signature) = (Arc::clone(&verifier), good.clone(), signature.clone());
        tokio::spawn(async move {
            verifier
                .verify(&headers(&signature, &good), EVENT.as_bytes())
                .await
        })
    });
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
    assert_eq!(
        files.good.load(Ordering::SeqCst),
        1,
        "one fetch of the file"
    );
}

/// A server on loopback of the signing certificate of a signer issued by an intermediate, at
/// `/leaf.cer`, and of that intermediate at `/intermediate.cer` (when `serve_intermediate`),
/// counting the fetches of the intermediate; the signer's AIA names `aia` (a path of this
/// server when `None`).
struct Chain {
    addr: SocketAddr,
    signer: Signer,
    intermediate_fetches: Arc<AtomicUsize>,
}

async fn chain(aia: Option<String>) -> Chain {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer_url = aia.unwrap_or_else(|| format!("http://{addr}/intermediate.cer"));
    let signer = Signer::new(&SigningCertificate {
        issuer_url: Some(issuer_url),
        ..SigningCertificate::default()
    })
    .unwrap();
    let leaf = signer.certificate_der().to_vec();
    let intermediate = signer.intermediate_der().unwrap().to_vec();
    let intermediate_fetches = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&intermediate_fetches);
    let app = Router::new()
        .route("/leaf.cer", get(move || async move { leaf }))
        .route(
            "/intermediate.cer",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async move { intermediate }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Chain {
        addr,
        signer,
        intermediate_fetches,
    }
}

fn chain_verifier(chain: &Chain, intermediate: Option<&[u8]>) -> Verifier {
    let mut builder = Verifier::builder()
        .only_hosts_added()
        .platform_roots(false)
        .trust_root(chain.signer.root_der())
        .allow_http_loopback("127.0.0.1", chain.addr.port())
        .unwrap();
    if let Some(intermediate) = intermediate {
        builder = builder.intermediate(intermediate);
    }
    builder.build().unwrap()
}

async fn verify_leaf(verifier: &Verifier, chain: &Chain) -> Result<(), Rejection> {
    let url = format!("http://{}/leaf.cer", chain.addr);
    let signature = chain.signer.sign(EVENT.as_bytes()).unwrap();
    let headers = headers(&signature, &url);
    let verified = verifier.verify(&headers, EVENT.as_bytes());
    verified.await.map(|_| ())
}

#[tokio::test]
async fn a_leaf_under_an_intermediate_verifies_through_its_aia_fetched_once() {
    let chain = chain(None).await;
    // Without the intermediate, the leaf alone does not chain to the root.
    let direct = Verifier::builder()
        .only_hosts_added()
        .platform_roots(false)
        .trust_root(chain.signer.root_der())
        .allow_http_loopback("127.0.0.1", chain.addr.port() + 1)
        .unwrap()
        .build()
        .unwrap();
    assert!(verify_leaf(&direct, &chain).await.is_err());
    let verifier = chain_verifier(&chain, None);
    for _ in 0..5 {
        verify_leaf(&verifier, &chain).await.unwrap();
    }
    assert_eq!(
        chain.intermediate_fetches.load(Ordering::SeqCst),
        1,
        "cached"
    );
}

#[tokio::test]
async fn a_leaf_under_an_intermediate_verifies_with_the_intermediate_given() {
    // Its AIA names a host that is not allowed: never fetched.
    let chain = chain(Some("http://127.0.0.1:9/intermediate.cer".to_owned())).await;
    let intermediate = chain.signer.intermediate_der().unwrap().to_vec();
    let verifier = chain_verifier(&chain, Some(&intermediate));
    verify_leaf(&verifier, &chain).await.unwrap();
}

#[tokio::test]
async fn an_aia_on_a_host_not_allowed_is_never_fetched_and_the_callback_is_refused() {
    let elsewhere = chain(None).await;
    let aia = format!("http://{}/intermediate.cer", elsewhere.addr);
    let chain = chain(Some(aia)).await;
    let verifier = chain_verifier(&chain, None);
    let refused = verify_leaf(&verifier, &chain).await.unwrap_err();
    assert_eq!(refused.status(), 401, "{refused}");
    assert_eq!(refused.check(), "certificate chain", "{refused}");
    assert_eq!(elsewhere.intermediate_fetches.load(Ordering::SeqCst), 0);
    assert_eq!(chain.intermediate_fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_sandbox_signs_through_an_intermediate_unless_asked_to_sign_directly() {
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::new();
    for (direct, status) in [(false, 200), (true, 404)] {
        let sandbox = referrals_testkit::start(referrals_sandbox::Config {
            sign_direct: direct,
            ..referrals_testkit::config()
        })
        .await;
        let url = format!("{}/sandbox/certificates/intermediate.cer", sandbox.url());
        let answer = http.get(url).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "direct: {direct}");
        sandbox.shutdown().await;
    }
}

#[tokio::test]
async fn a_url_that_failed_is_not_fetched_again_within_a_minute() {
    let signer = good_signer();
    let files = files(signer.certificate_der().to_vec()).await;
    let verifier = verifier(&signer, &files);
    let url = format!("http://{}/missing.cer", files.addr);
    let signature = signer.sign(EVENT.as_bytes()).unwrap();
    for _ in 0..10 {
        let refused = verifier
            .verify(&headers(&signature, &url), EVENT.as_bytes())
            .await
            .unwrap_err();
        assert_eq!(refused.check(), "certificate fetch", "{refused}");
    }
    assert_eq!(files.fetches.load(Ordering::SeqCst), 1);
    // Another URL is fetched, and a good one still verifies.
    let good = format!("http://{}/good.cer", files.addr);
    let good = headers(&signature, &good);
    assert!(verifier.verify(&good, EVENT.as_bytes()).await.is_ok());
}
