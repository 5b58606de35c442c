//! The measuring programs of `cargo xtask bench`, each run in its own process so that its peak
//! memory is its own.
//!
//! ```text
//! referrals-bench client URL TOKEN     page through every referral with Client::list_all
//! referrals-bench raw URL TOKEN        the same pages with plain reqwest + serde_json
//! referrals-bench load URL TOKEN PATH CONCURRENCY SECONDS
//!                                      GET PATH as fast as CONCURRENCY connections allow
//! referrals-bench verify SECONDS       verify a signed event again and again (one core)
//! referrals-bench latency URL TOKEN DB RATE COUNT
//!                                      change COUNT referrals at RATE a second; time to the mirror
//! referrals-bench sync-into URL TOKEN DB [--unlogged]
//!                                      a first sync into a mirror, with or without its change log
//! referrals-bench feed-latency URL TOKEN DB RATE COUNT library|exec|post
//!                                      change COUNT referrals at RATE a second; time to a consumer
//! referrals-bench ties COUNT PAGE [--no-count]
//!                                      a sync of the ties of COUNT referrals, shuffled; requests
//! referrals-bench measure PROGRAM ARGS...
//!                                      run PROGRAM; its wall time and peak memory
//! ```
//!
//! Each prints one JSON line: what it counted, how long it took, and its peak resident memory
//! (VmHWM from /proc/self/status).

mod events;
mod feed;
mod groups;

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use referrals_client::query::Query;
use referrals_client::{Client, StaticToken};

/// The measuring programs of `cargo xtask bench`; each prints one JSON line.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Page through every referral with `Client::list_all`.
    Client(Target),
    /// Page through every referral with plain reqwest + serde_json.
    Raw(Target),
    /// Sync every referral with `referrals_client::sync`, from no state, committing each batch.
    Sync(Target),
    /// A sandbox in this process that shuffles ties: a sync of what its batch job imported
    /// (ties of both instants), with the requests it cost.
    Ties {
        /// How many referrals the sandbox holds (a twenty-fifth of them are in ties).
        count: usize,
        /// The most referrals on a page.
        page_size: usize,
        /// A sandbox that leaves `@odata.count` out.
        #[arg(long)]
        no_count: bool,
    },
    /// Run a program to its end: its wall time, exit status and peak resident memory (Linux).
    Measure {
        /// The program.
        program: std::path::PathBuf,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Verify a signed event again and again, with its certificate cached.
    Verify {
        /// How long to run, in seconds.
        #[arg(default_value_t = 5)]
        seconds: u64,
    },
    /// Change referrals at a rate, and time each change's way to a mirror.
    Latency {
        #[command(flatten)]
        target: Target,
        /// The mirror (SQLite) that a receiver or a sync keeps.
        db: std::path::PathBuf,
        /// Changes a second.
        rate: u32,
        /// How many changes.
        count: usize,
    },
    /// A first sync of every referral into an empty mirror, with its change log or without.
    SyncInto {
        #[command(flatten)]
        target: Target,
        /// The mirror: a SQLite file (removed first), or a PostgreSQL database (its mirror's
        /// tables dropped first).
        db: String,
        /// Without the change log.
        #[arg(long)]
        unlogged: bool,
    },
    /// Change referrals at a rate, and time each change's way to a consumer of the mirror that
    /// a `referrals listen` keeps.
    FeedLatency {
        #[command(flatten)]
        target: Target,
        /// The mirror (a file or postgres://).
        db: String,
        /// Changes a second.
        rate: u32,
        /// How many changes.
        count: usize,
        /// Who handles the changes.
        #[arg(value_enum)]
        consumer: feed::Consumer,
    },
    /// How many referrals a mirror holds (0 when it cannot be read yet).
    Count {
        /// The mirror: a SQLite file, or a PostgreSQL database (postgres://).
        db: std::path::PathBuf,
    },
    /// GET one path as fast as some connections allow.
    Load {
        #[command(flatten)]
        target: Target,
        /// The path and query to GET.
        path: String,
        /// How many connections send requests, each after the last answer.
        #[arg(default_value_t = 2)]
        concurrency: usize,
        /// How long to run, in seconds.
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Debug, clap::Args)]
struct Target {
    /// The service root, such as http://127.0.0.1:8080.
    url: String,
    /// The bearer token.
    token: String,
}

#[tokio::main]
async fn main() {
    let cli = <Cli as clap::Parser>::parse();
    let report = match cli.mode {
        Mode::Client(target) => client(&target.url, &target.token).await,
        Mode::Raw(target) => raw(&target.url, &target.token).await,
        Mode::Sync(target) => sync(&target.url, &target.token).await,
        Mode::Measure { program, args } => measure(&program, &args),
        Mode::Ties {
            count,
            page_size,
            no_count,
        } => groups::ties(count, page_size.max(1), !no_count).await,
        Mode::Verify { seconds } => {
            // One core: a runtime of one thread.
            tokio::task::spawn_blocking(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(events::verify(seconds))
            })
            .await
            .expect("the measure")
        }
        Mode::Latency {
            target,
            db,
            rate,
            count,
        } => events::latency(&target.url, &target.token, &db, rate, count).await,
        Mode::SyncInto {
            target,
            db,
            unlogged,
        } => feed::sync_into(&target.url, &target.token, &db, unlogged).await,
        Mode::FeedLatency {
            target,
            db,
            rate,
            count,
            consumer,
        } => feed::latency(&target.url, &target.token, &db, rate, count, consumer).await,
        Mode::Count { db } => {
            let count = match db.to_str().filter(|db| referrals_mirror::is_server(db)) {
                Some(url) => match referrals_mirror::Db::open(url).await {
                    Ok(mirror) => mirror.count().await.unwrap_or(0),
                    Err(_) => 0,
                },
                None => rusqlite::Connection::open(&db)
                    .and_then(|mirror| {
                        mirror.query_row("SELECT count(*) FROM referrals", [], |row| {
                            row.get::<_, i64>(0)
                        })
                    })
                    .map_or(0, |count| u64::try_from(count).unwrap_or(0)),
            };
            serde_json::json!({ "mode": "count", "referrals": count })
        }
        Mode::Load {
            target,
            path,
            concurrency,
            seconds,
        } => {
            load(
                &target.url,
                &target.token,
                &path,
                concurrency,
                Duration::from_secs(seconds),
            )
            .await
        }
    };
    println!("{report}");
}

/// Every referral through the client: typed pages, the runtime's hooks, next links.
async fn client(url: &str, token: &str) -> serde_json::Value {
    let client = Client::builder(url, StaticToken::new(token))
        .allow_http_to_loopback(true)
        .build()
        .expect("a client");
    let started = Instant::now();
    let mut count = 0usize;
    let mut referrals = std::pin::pin!(client.list_all(Query::new()));
    while let Some(referral) = referrals.try_next().await.expect("a page") {
        count += usize::from(referral.id.is_some());
    }
    serde_json::json!({ "mode": "client", "referrals": count, "seconds": started.elapsed().as_secs_f64(), "peak_kib": peak_kib() })
}

/// Every referral through a first run of the sync: pages asked by watermark, groups of
/// referrals that share an instant read through the service's pages, each batch committed.
async fn sync(url: &str, token: &str) -> serde_json::Value {
    let client = Client::builder(url, StaticToken::new(token))
        .allow_http_to_loopback(true)
        .build()
        .expect("a client");
    let started = Instant::now();
    let (mut count, mut batches, mut state_bytes) = (0usize, 0usize, 0usize);
    let options = referrals_client::sync::SyncOptions::new().skew(Duration::ZERO);
    let mut run = client.sync(None, options).expect("a sync");
    while let Some(batch) = run.next().await.expect("a batch") {
        count += batch
            .items()
            .iter()
            .filter(|referral| referral.id.is_some())
            .count();
        batches += 1;
        state_bytes = state_bytes.max(batch.commit().to_json().len());
    }
    serde_json::json!({
        "mode": "sync", "referrals": count, "batches": batches, "largest_state_bytes": state_bytes,
        "seconds": started.elapsed().as_secs_f64(), "cpu_seconds": cpu_seconds(),
        "peak_kib": peak_kib(),
    })
}

/// The same pages with nothing but reqwest and serde_json: the floor that the client is
/// measured against.
async fn raw(url: &str, token: &str) -> serde_json::Value {
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut count = 0usize;
    let mut next = Some(format!("{url}/v1.0/engagements/referrals"));
    while let Some(link) = next.take() {
        let page: serde_json::Value = http
            .get(&link)
            .bearer_auth(token)
            .send()
            .await
            .expect("an answer")
            .json()
            .await
            .expect("a page");
        count += page["value"].as_array().map_or(0, |items| {
            items.iter().filter(|item| item["id"].is_string()).count()
        });
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    serde_json::json!({
        "mode": "raw", "referrals": count, "seconds": started.elapsed().as_secs_f64(),
        "cpu_seconds": cpu_seconds(), "peak_kib": peak_kib(),
    })
}

/// A closed-loop load: `concurrency` tasks, each sending the next request when the last one
/// is answered, for `duration`.
async fn load(
    url: &str,
    token: &str,
    path: &str,
    concurrency: usize,
    duration: Duration,
) -> serde_json::Value {
    referrals_client::install_crypto_provider();
    let http = reqwest::Client::new();
    let target = format!("{url}{path}");
    let started = Instant::now();
    let tasks = (0..concurrency).map(|_| {
        let http = http.clone();
        let target = target.clone();
        let token = token.to_owned();
        tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            while started.elapsed() < duration {
                let sent = Instant::now();
                let answer = http.get(&target).bearer_auth(&token).send().await;
                match answer {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        ok += 1;
                        latencies.push(sent.elapsed());
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed, latencies)
        })
    });
    let results = futures_util::future::join_all(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
    for result in results {
        let (o, f, l) = result.expect("a load task");
        ok += o;
        failed += f;
        latencies.extend(l);
    }
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
    };
    serde_json::json!({
        "mode": "load", "path": path, "concurrency": concurrency, "ok": ok, "failed": failed,
        "requests_per_second": ok as f64 / elapsed, "p50_ms": percentile(0.5), "p99_ms": percentile(0.99),
    })
}

/// Runs `program` and reports its wall time and the peak resident memory of that one child,
/// from `wait4` (a poll of `/proc` would miss the last moments of a short process).
// The child is reaped by `wait4` below, which `Child::wait` cannot be told apart from.
#[allow(clippy::zombie_processes)]
fn measure(program: &std::path::Path, args: &[String]) -> serde_json::Value {
    let started = Instant::now();
    let child = std::process::Command::new(program)
        .args(args)
        .env("MALLOC_ARENA_MAX", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    let pid = i32::try_from(child.id()).expect("a pid fits in an i32");
    let sampler = RssSampler::start(pid);
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct, which wait4 fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; both pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(
        waited,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    let seconds = started.elapsed().as_secs_f64();
    let (anon, file) = sampler.stop();
    let exited = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Linux gives ru_maxrss in KiB.
    serde_json::json!({
        "mode": "measure", "seconds": seconds, "exit": exited, "peak_kib": usage.ru_maxrss,
        "peak_anon_kib": anon, "peak_file_kib": file,
    })
}

/// What makes up a child's resident memory, sampled from `/proc/PID/status` every 2 ms: the
/// largest `RssAnon` (what the program allocated, its stacks and the pages of its own tables
/// it wrote) and the largest `RssFile` (pages of files mapped: its code and read-only data,
/// as the kernel maps them around each page touched). Each is a sample's, so a peak shorter
/// than a sample can be missed; `wait4`'s `peak_kib` is exact.
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl RssSampler {
    fn start(pid: i32) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            use std::io::{Read, Seek};
            // Opened once: read again through the same descriptor, it fails once the child is
            // gone, and never shows another process that took its number.
            let Ok(mut source) = std::fs::File::open(format!("/proc/{pid}/status")) else {
                return (0, 0);
            };
            let (mut anon, mut file, mut status) = (0, 0, String::new());
            while !stopped.load(Ordering::Relaxed) {
                status.clear();
                let read = source
                    .rewind()
                    .and_then(|()| source.read_to_string(&mut status));
                if !matches!(read, Ok(length) if length > 0) {
                    break;
                }
                anon = anon.max(status_kib(&status, "RssAnon:").unwrap_or(0));
                file = file.max(status_kib(&status, "RssFile:").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(2));
            }
            (anon, file)
        });
        Self { stop, thread }
    }

    /// The largest samples, once the child has ended.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0))
    }
}

/// The value in KiB of the line of `/proc/PID/status` that starts with `key`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The processor time this process used so far, user and system, in seconds: what the client
/// cost, apart from a server on the same machine.
fn cpu_seconds() -> f64 {
    // SAFETY: a zeroed rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given and reads nothing else.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The peak resident memory of this process, in KiB (Linux).
fn peak_kib() -> Option<u64> {
    status_kib(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmHWM:",
    )
}
