//! `referrals listen`: a receiver of Partner Center's webhook events that keeps the same mirror
//! as `sync --db` current within seconds. Each callback is verified (`referrals-events`; 400 or
//! 401 when refused, with a log line that names the check), stored in the mirror before it is
//! acknowledged, then worked off: the referral is read and written only if it is newer than the
//! row. The incremental sync runs at start and every `--every`, into the same mirror, for the
//! events that never come; neither ever writes a row backwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use referrals_client::sync::SyncOptions;
use referrals_client::webhooks::types::WebhookEventName;
use referrals_events::{MAX_BODY, Verifier};
use tokio::sync::Notify;

use crate::Context;
use crate::received::Store;
use crate::stop::Stop;

/// The options of `listen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror to keep current, as `sync --db` keeps it (an unfiltered one): a SQLite file,
    /// or a PostgreSQL database (postgres://...) that several receivers may share.
    #[arg(long, value_name = "FILE|URL")]
    db: PathBuf,
    /// Where to listen for callbacks (plain HTTP, as behind a TLS proxy, unless --tls-cert).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// The catch-up sync's interval.
    #[arg(long, value_name = "INTERVAL", default_value = "5m", value_parser = crate::mirror::interval)]
    every: Duration,
    /// How far behind the service's clock a sync stops (see `sync --skew`).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::mirror::skew)]
    skew: Duration,
    /// A root to trust for the signing certificates besides the platform's (PEM or DER), such
    /// as the one the sandbox prints.
    #[arg(long, value_name = "FILE")]
    trust_root: Option<PathBuf>,
    /// Fetch signing certificates over plain http from this loopback HOST:PORT too (the
    /// sandbox's), besides the documented https host.
    #[arg(long, value_name = "HOST:PORT")]
    allow_http_certificates: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// What the receiver shares between its tasks.
struct Receiver {
    verifier: Verifier,
    /// The mirror's connection of the receiver (the sync has its own).
    mirror: Store,
    /// Wakes the worker when an event was stored.
    stored: Notify,
    quiet: bool,
}

pub async fn run(context: &Context, args: &Args) -> anyhow::Result<()> {
    let verifier = verifier(args)?;
    let receiver = Arc::new(Receiver {
        verifier,
        mirror: Store::open(&args.db).await?,
        stored: Notify::new(),
        quiet: context.quiet,
    });
    let stop = Stop::listen(context.quiet);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    context.say(format_args!("listening on {}{}", scheme(args), addr));
    let worker = tokio::spawn(work_off(
        Arc::clone(&receiver),
        context.client.clone(),
        stop.clone(),
    ));
    let syncing = tokio::spawn(catch_up(
        args.db.clone(),
        context.clone(),
        args.every,
        args.skew,
        stop.clone(),
    ));
    let router = axum::Router::new()
        .fallback(axum::routing::post(callback))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY + 1))
        .with_state(Arc::clone(&receiver));
    let served = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            crate::tls::serve(listener, router, cert, key, stop.clone()).await
        }
        _ => {
            let wait = stop.clone();
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { wait.wait().await })
                .await
                .context("the receiver stopped")
        }
    };
    syncing.abort();
    let _ = worker.await;
    served
}

fn scheme(args: &Args) -> &'static str {
    if args.tls_cert.is_some() {
        "https://"
    } else {
        "http://"
    }
}

/// The verifier of the options.
fn verifier(args: &Args) -> anyhow::Result<Verifier> {
    let mut builder = Verifier::builder();
    if let Some(path) = &args.trust_root {
        builder = builder.trust_root(read_certificate(path)?);
    }
    if let Some(origin) = &args.allow_http_certificates {
        let (host, port) = origin
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                crate::Usage(format!(
                    "--allow-http-certificates {origin}: give HOST:PORT"
                ))
            })?;
        builder = builder
            .allow_http_loopback(host, port)
            .map_err(|error| crate::Usage(format!("--allow-http-certificates: {error}")))?;
    }
    Ok(builder.build()?)
}

/// A certificate file's first certificate, DER (the file is PEM or DER).
fn read_certificate(path: &Path) -> anyhow::Result<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        let certificate = rustls_pki_types::CertificateDer::from_pem_slice(&bytes)
            .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
        return Ok(certificate.to_vec());
    }
    Ok(bytes)
}

/// One callback: verified, then stored, then acknowledged.
async fn callback(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let event = match receiver.verifier.verify(&headers, &body).await {
        Ok(event) => event,
        Err(rejection) => {
            eprintln!(
                "refused {} ({}): {rejection}",
                rejection.status(),
                rejection.check()
            );
            return StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        }
    };
    let name = event.name().clone();
    let referral = matches!(
        name,
        WebhookEventName::ReferralCreated
            | WebhookEventName::ReferralUpdated
            | WebhookEventName::RelatedReferralCreated
            | WebhookEventName::RelatedReferralUpdated
    );
    if !referral {
        eprintln!("ignored the event {name}: not about a referral");
        return StatusCode::OK;
    }
    let text = String::from_utf8_lossy(&body);
    let stored = receiver
        .mirror
        .store_event(name.as_str(), event.referral_id.as_deref(), &text)
        .await;
    match stored {
        Ok(_) => {
            receiver.stored.notify_one();
            if !receiver.quiet {
                eprintln!("accepted {name} {}", event.referral_id.unwrap_or_default());
            }
            StatusCode::OK
        }
        Err(error) => {
            // Not stored: Partner Center delivers it again.
            eprintln!("error: {error}");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Works off the stored events, oldest first: reads each referral and applies it, newer only.
async fn work_off(receiver: Arc<Receiver>, client: referrals_client::Client, stop: Stop) {
    loop {
        let pending = receiver.mirror.pending(64).await.unwrap_or_default();
        for event in &pending {
            if let Err(error) = apply(&receiver, &client, event).await {
                eprintln!("error: {error:#}; the event stays pending");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
        }
        if stop.asked() {
            return;
        }
        if pending.is_empty() {
            tokio::select! {
                () = receiver.stored.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.wait() => return,
            }
        }
    }
}

/// Reads the referral of `event` and writes it if it is newer; a referral that no longer
/// answers is logged and its event worked off.
async fn apply(
    receiver: &Receiver,
    client: &referrals_client::Client,
    event: &referrals_mirror::PendingEvent,
) -> anyhow::Result<()> {
    if let Some(id) = &event.referral_id {
        match client.referral(id).await {
            Ok(referral) => {
                receiver.mirror.apply(&referral).await?;
            }
            Err(error) if error.is_not_found() => {
                eprintln!("the referral {id} of an event does not answer (404); event dropped");
            }
            Err(error) => return Err(error.into()),
        }
    }
    receiver.mirror.finish(event.seq).await?;
    Ok(())
}

/// The catch-up sync: at start, then every `every`, into a connection of its own.
async fn catch_up(db: PathBuf, context: Context, every: Duration, skew: Duration, stop: Stop) {
    loop {
        let synced = async {
            let mut mirror = crate::mirror::Db::open(&db).await?;
            let options = SyncOptions::new().skew(skew);
            let report = mirror
                .sync_with(&context.client, options, |_| {
                    if stop.asked() {
                        std::ops::ControlFlow::Break(())
                    } else {
                        std::ops::ControlFlow::Continue(())
                    }
                })
                .await?;
            anyhow::Ok(report)
        }
        .await;
        match synced {
            Ok(report) if report.skipped => {
                context.say(format_args!("sync: another process is syncing; skipped"));
            }
            Ok(report) => context.say(format_args!("sync: {} referrals changed", report.changed)),
            Err(error) => eprintln!("error: the catch-up sync: {error:#}"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.wait() => return,
        }
    }
}
