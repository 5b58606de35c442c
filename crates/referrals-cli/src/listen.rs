//! `referrals listen`: the library's receiver ([`referrals_mirror::receiver`]) on an address,
//! plain or over TLS, with its notices on standard error and Ctrl-C for a clean stop. It keeps
//! the same mirror as `sync --db` current within seconds: each callback is verified (400 or 401
//! when refused, with a line that names the check), stored before it is acknowledged, then its
//! referral is read and written only if newer; the sync runs at start and every `--every`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use referrals_events::Verifier;
use referrals_mirror::Opened;
use referrals_mirror::receiver::{Notice, Receiver, http};

use crate::Context;
use crate::stop::Stop;

/// The options of `listen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mirror to keep current, as `sync --db` keeps it (an unfiltered one): a SQLite file,
    /// or a PostgreSQL database (postgres://..., the password in PGPASSWORD) that several
    /// receivers may share.
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
    /// Intermediate authorities of the signing certificate (PEM or DER), for a chain whose
    /// issuers are not fetched from the certificate's AIA (only allowed PKI hosts are).
    #[arg(long, value_name = "FILE")]
    intermediate: Vec<PathBuf>,
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
    /// A callback whose body is byte for byte one received within this window is acknowledged
    /// and not stored again (a replay, or a delivery made again).
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = crate::mirror::skew)]
    replay_window: Duration,
    /// At most how many referrals are read a second for events, whatever arrives.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    reads_per_second: u32,
    /// At most how many connections are served at once; one beyond is answered 503 and closed
    /// (over TLS, closed).
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// At most how many referrals are read at once for events.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    read_concurrency: u16,
    /// Serve GET /healthz, /readyz and /metrics on this address (such as 127.0.0.1:9090)
    /// rather than on the callbacks' address, which then takes callbacks alone.
    #[arg(long, value_name = "ADDR")]
    observe: Option<SocketAddr>,
    /// How notices are written on standard error: lines of text, or one JSON object a line
    /// (time, level, message, fields; with the request and correlation ids of the service's
    /// calls).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
}

/// How notices are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Writes the `tracing` events (the receiver's notices, the client's calls) as JSON lines on
/// standard error.
fn json_logs() {
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .with_span_list(true)
        .finish();
    // A subscriber set before (a test's) stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

pub async fn run(context: &Context, args: &Args) -> anyhow::Result<()> {
    let quiet = context.quiet;
    let json = args.log_format == LogFormat::Json;
    let mut builder = Receiver::builder(context.client.clone(), &args.db)
        .verifier(verifier(args)?)
        .every(args.every)
        .skew(args.skew)
        .replay_window(args.replay_window)
        .reads_per_second(args.reads_per_second)
        .read_concurrency(usize::from(args.read_concurrency));
    if json {
        json_logs();
    } else {
        builder = builder.on_notice(move |notice| say(quiet, notice));
    }
    let receiver = builder.build().await?;
    let tell = |message: std::fmt::Arguments<'_>| {
        if json {
            tracing::info!("{message}");
        } else {
            context.say(message);
        }
    };
    if let Opened::Upgraded {
        log_started: true, ..
    } = receiver.opened()
    {
        tell(format_args!(
            "{}: upgraded; its change log starts empty (a consumer can start from a snapshot)",
            receiver.name()
        ));
    }
    let stop = Stop::listen(context.quiet);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    tell(format_args!("listening on {}{}", scheme(args), addr));
    let router = routes(&receiver, args.observe, &stop).await?;
    let running = receiver.start();
    let max = open_files_for(context, args.max_connections);
    let served = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            crate::tls::serve(listener, router, (cert, key), max, stop.clone()).await
        }
        _ => {
            let wait = stop.clone();
            let shutdown = async move { wait.wait().await };
            http::serve_with(listener, router, shutdown, max).await;
            Ok(())
        }
    };
    running.stop().await;
    served
}

/// The routes of the callbacks' address: with `observe`, the callbacks alone, and
/// `/healthz`, `/readyz` and `/metrics` served on `observe` (an address that only the
/// operator's network reaches); else all of them.
async fn routes(
    receiver: &Receiver,
    observe: Option<SocketAddr>,
    stop: &Stop,
) -> anyhow::Result<axum::Router> {
    let Some(addr) = observe else {
        return Ok(receiver.router());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--observe)"))?;
    let (observer, wait) = (receiver.observer::<()>(), stop.clone());
    tokio::spawn(async move {
        let shutdown = async move { wait.wait().await };
        http::serve(listener, observer, shutdown).await;
    });
    Ok(axum::Router::new().fallback(receiver.route::<()>()))
}

/// The cap of connections, with the process's limit of open files raised to hold it (each
/// connection is one; the usual soft limit, 1,024, would refuse connections below the cap):
/// lowered to what the limit allows when it cannot be raised so far.
fn open_files_for(context: &Context, connections: u32) -> usize {
    // The mirror's files, the certificates' fetches and the service's connections beside.
    const BESIDE: u64 = 256;
    let wanted = u64::from(connections).saturating_add(BESIDE);
    let allowed = rlimit::increase_nofile_limit(wanted).unwrap_or(0);
    let cap = if allowed >= wanted {
        u64::from(connections)
    } else {
        let cap = allowed.saturating_sub(BESIDE).max(1);
        context.warn(format_args!(
            "the limit of open files allows {allowed}: at most {cap} connections at once \
             rather than {connections} (raise it with ulimit -n)"
        ));
        cap
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
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
        let root =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        builder = builder.trust_root(root);
    }
    for path in &args.intermediate {
        let intermediate =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        builder = builder.intermediate(intermediate);
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
    builder.build().with_context(|| match &args.trust_root {
        Some(path) => format!("--trust-root {}", path.display()),
        None => "the platform's roots".to_owned(),
    })
}

/// A notice of the receiver on standard error: refusals and failures always, the rest unless
/// `--quiet`.
fn say(quiet: bool, notice: &Notice<'_>) {
    let line = match notice {
        Notice::Refused {
            status,
            check,
            reason,
        } => format!("refused {status} ({check}): {reason}"),
        Notice::Failed { doing, error } => format!("error: {doing}: {error}"),
        Notice::Gone { referral } => {
            format!("the referral {referral} of an event does not answer (404); event dropped")
        }
        Notice::Retrying {
            seq,
            referral,
            attempts,
            wait,
            error,
        } => format!(
            "the event {seq} ({}) failed {attempts} times; tried again in {} s: {error}",
            referral.unwrap_or("-"),
            wait.as_secs()
        ),
        Notice::SetAside {
            seq,
            referral,
            attempts,
            error,
        } => format!(
            "the event {seq} ({}) failed {attempts} times and is set aside \
             (referrals events --retry {seq}): {error}",
            referral.unwrap_or("-")
        ),
        _ if quiet => return,
        Notice::Accepted { event, referral } => {
            format!("accepted {event} {}", referral.unwrap_or_default())
        }
        Notice::Ignored { event } => format!("ignored the event {event}: not about a referral"),
        Notice::Replayed { event, seq } => {
            format!("a callback received before ({event}, event {seq}): not stored again")
        }
        Notice::Synced(report) if report.skipped => {
            "sync: another process is syncing; skipped".to_owned()
        }
        Notice::Synced(report) => format!("sync: {} referrals changed", report.changed),
        _ => return,
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
