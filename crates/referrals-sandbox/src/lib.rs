//! A local sandbox of the Partner API for referrals: a server that implements
//! `openapi/referrals.yaml` on an in-memory store, for developing and testing integrations
//! offline (the real service offers no test tenant for referrals).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let sandbox = referrals_sandbox::start(referrals_sandbox::Config {
//!     seed_count: 100,
//!     ..referrals_sandbox::Config::default()
//! })
//! .await?;
//! println!("listening on {}", sandbox.url());
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! What it does, from the document's generated model and tables (`referrals-model`) alone:
//! - every operation of the document at its path, with the document's status codes, headers
//!   and error body; `$filter` on the members and with the operators of `x-filterable`
//!   (comparisons, `and`/`or`/`not` with OData's precedence, grouping, `''` in strings,
//!   lambdas such as `team/any(t:t/email eq ...)`), `$orderby` on the members of
//!   `x-sortable`, `$select`, `$top`, `$skip`, `$count`, and pages of at most 100 linked by a
//!   `$skiptoken`: a keyset over a snapshot by default, or an offset ([`Paging::Offset`]), to
//!   test a client against a service whose pages shift when referrals change;
//! - JSON Patch on the paths of `x-patchable`; the members that the service sets (`readOnly`)
//!   are its own on create and replace; a `Date` header on every answer;
//! - eTags with `If-Match` (412 when stale, one winner among concurrent updates), the status
//!   rules of the document (`referrals_model::transitions`), the two-step shared referral;
//! - a bearer token on every request (401 without), and optional faults (429 and 503 with
//!   `Retry-After`) to exercise a client's retries; every error body carries one of the
//!   document's `ErrorCode` values (a 429 says `serviceNotAvailable`: the document lists no
//!   code of its own for throttling);
//! - a 4xx with the error body for every bad input (bad JSON, deep nesting, wrong content type,
//!   invalid UTF-8, oversized bodies, absurd `$top`), never a crash.

mod api;
mod drift;
pub mod error;
pub mod events;
mod fill;
pub mod filter;
mod pace;
mod paging;
mod request;
mod router;
pub mod seed;
pub mod signer;
mod skiptoken;
pub mod store;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::oneshot;

use crate::store::Store;

pub use router::router;

/// How the sandbox starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 takes any free port. Default: `127.0.0.1:0`.
    pub addr: SocketAddr,
    /// How many synthetic referrals to add to the seed examples. Default: 1,000.
    pub seed_count: usize,
    /// The seed of the generator: the same seed and count give the same data. Default: 42.
    pub seed: u64,
    /// The one bearer token accepted; `None` accepts any non-empty token. Default: `None`.
    pub token: Option<String>,
    /// The share of requests answered 429 with `Retry-After: 1`, from 0 to 1. Default: 0.
    pub fault_429: f64,
    /// The share of requests answered 503 with `Retry-After: 1`, from 0 to 1. Default: 0.
    pub fault_503: f64,
    /// The most referrals on one page. Default: 100, as the service.
    pub page_size: usize,
    /// The largest request body, in bytes. Default: 1 MiB.
    pub max_body: usize,
    /// Whether to log one line per request on standard error. Default: true.
    pub log: bool,
    /// What a `$skiptoken` holds. Default: [`Paging::Keyset`].
    pub paging: Paging,
    /// The share of events dropped on purpose (kept in the offline queue, never delivered),
    /// from 0 to 1, to test a receiver's catching up. Default: 0.
    pub drop_events: f64,
    /// The certificate that signs the events; `None` (the default) for a good one, issued by
    /// an intermediate authority that the sandbox serves (its AIA names it). Another shows a
    /// receiver's refusals.
    pub signing: Option<signer::SigningCertificate>,
    /// Whether the good certificate is issued by the root itself, with no intermediate.
    /// Default: false.
    pub sign_direct: bool,
    /// The wait before the second attempt of a delivery; each next one doubles. Default: 1 s.
    pub event_backoff: std::time::Duration,
    /// A time added to every answer, as a service's round trip. Default: none.
    pub latency: std::time::Duration,
    /// Requests a second above which the answer is 429 with `Retry-After`. Default: no limit.
    pub rate_limit: Option<u32>,
    /// Whether `$count=true` gets `@odata.count` in the answer. Default: true; false shows a
    /// client a service that leaves it out.
    pub answer_count: bool,
    /// Whether the listing answers as a service that drifted from the document: 203, an
    /// undeclared header, and in the first referrals of each page an undeclared member, an
    /// unknown status and a name that is a number. Default: false.
    pub drift: bool,
    /// Whether every synthetic referral was last updated by one migration, at one instant
    /// ([`seed::MIGRATION`], after every creation): a group of the whole data that shares its
    /// `updatedDateTime`, as a service-side migration leaves. Default: false.
    pub migrated: bool,
    /// Whether every synthetic referral was created and last updated by one import, at one
    /// instant ([`seed::MIGRATION`]): one tie of the whole data, which shares both its
    /// `createdDateTime` and its `updatedDateTime`. Default: false.
    pub imported: bool,
}

/// What a `$skiptoken` of the sandbox holds. The document says nothing of it; a client must
/// work with either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paging {
    /// The key of the last referral of the page, in the snapshot that the listing started
    /// from: a listing returns each referral exactly once, whatever is written meanwhile.
    #[default]
    Keyset,
    /// How many matching referrals came before, counted anew on each page against the store as
    /// it is then: a referral that leaves the result set mid-listing (because it was updated)
    /// shifts the later ones, and one of them is never returned.
    Offset,
    /// As [`Paging::Offset`], and referrals that tie on the keys of a `$orderby` come in a new
    /// order on every request, as from a service that sorts without a tiebreaker: a listing
    /// may then return one of them twice and another never. (Without `$orderby` the order
    /// stays total, for a test to read what the sandbox holds.)
    Shuffled,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed_count: 1000,
            seed: 42,
            token: None,
            fault_429: 0.0,
            fault_503: 0.0,
            page_size: 100,
            max_body: 1024 * 1024,
            log: true,
            paging: Paging::Keyset,
            drop_events: 0.0,
            signing: None,
            event_backoff: std::time::Duration::from_secs(1),
            latency: std::time::Duration::ZERO,
            rate_limit: None,
            answer_count: true,
            drift: false,
            migrated: false,
            imported: false,
            sign_direct: false,
        }
    }
}

/// The state shared by the handlers.
pub struct App {
    store: RwLock<Store>,
    /// The root that links point to, such as `http://127.0.0.1:8080`.
    base: String,
    token: Option<String>,
    fault_429: f64,
    fault_503: f64,
    faults: Mutex<fastrand::Rng>,
    page_size: usize,
    max_body: usize,
    log: bool,
    paging: Paging,
    /// The document's schemas, which every request body must satisfy.
    validators: referrals_document::Validators,
    /// The counts (`$count`) of the queries asked at the store's current version.
    counts: Mutex<Counts>,
    /// The webhook registration and the events it receives.
    events: events::Events,
    latency: std::time::Duration,
    rate_limit: Option<u32>,
    window: Mutex<pace::Window>,
    answer_count: bool,
    drift: bool,
    /// The order of ties under [`Paging::Shuffled`].
    ties: Mutex<fastrand::Rng>,
    /// How many listing requests were answered with a page.
    listings: std::sync::atomic::AtomicU64,
    /// How many requests for one referral were answered (found or not).
    reads: std::sync::atomic::AtomicU64,
}

/// The number of matches of each query (by its fingerprint) at one version of the store: a
/// count is a walk over every match, and a listing, or a client that asks the same first page
/// again, reuses it until the store changes.
#[derive(Debug, Default)]
struct Counts {
    version: u64,
    by_query: std::collections::HashMap<String, u64>,
}

impl App {
    /// The count of the query `query` at `version`, computed by `count` when it is not known.
    fn count(&self, version: u64, query: &str, count: impl FnOnce() -> u64) -> u64 {
        /// Enough for the queries of a few clients at once; more empties the cache.
        const KEPT: usize = 256;
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counts.version != version {
            counts.version = version;
            counts.by_query.clear();
        }
        if let Some(known) = counts.by_query.get(query) {
            return *known;
        }
        // Counted with the lock held: two requests for the same count wait for one walk.
        let counted = count();
        if counts.by_query.len() >= KEPT {
            counts.by_query.clear();
        }
        counts.by_query.insert(query.to_owned(), counted);
        counted
    }
}

/// A running sandbox.
pub struct Sandbox {
    addr: SocketAddr,
    app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its service root, such as `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The root that a receiver of this sandbox's events trusts, PEM (the signer is made on
    /// first use).
    pub fn events_root_pem(&self) -> Result<String, String> {
        Ok(self.app.events.signer()?.root_pem().to_owned())
    }

    /// The root that a receiver of this sandbox's events trusts, DER.
    pub fn events_root_der(&self) -> Result<Vec<u8>, String> {
        Ok(self.app.events.signer()?.root_der().to_vec())
    }

    /// How many listing requests it has answered with a page so far: what a client's
    /// reading costs.
    pub fn listings(&self) -> u64 {
        self.app.listings.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many requests for one referral (`GET .../referrals/{id}`) it has answered so far,
    /// found or not.
    pub fn reads(&self) -> u64 {
        self.app.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops it and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Binds `config.addr`, loads the data and serves in a background task.
pub async fn start(config: Config) -> std::io::Result<Sandbox> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(app(&config, &format!("http://{addr}")));
    let served = Arc::clone(&app);
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, router(served)).with_graceful_shutdown(async move {
            let _ = signal.await;
        });
        if let Err(error) = server.await {
            eprintln!("the sandbox stopped: {error}");
        }
    });
    Ok(Sandbox {
        addr,
        app,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

/// The state for `config`, with links that point to `base`.
pub fn app(config: &Config, base: &str) -> App {
    let mut store = Store::default();
    for referral in seed::examples() {
        store.put(referral);
    }
    for mut referral in seed::synthetic(config.seed_count, config.seed, base) {
        if config.migrated || config.imported {
            referral.updated_date_time = Some(seed::MIGRATION);
        }
        if config.imported {
            referral.created_date_time = Some(seed::MIGRATION);
        }
        store.put(referral);
    }
    App {
        store: RwLock::new(store),
        base: base.to_owned(),
        token: config.token.clone(),
        fault_429: config.fault_429,
        fault_503: config.fault_503,
        faults: Mutex::new(fastrand::Rng::with_seed(config.seed)),
        page_size: config.page_size.max(1),
        max_body: config.max_body,
        log: config.log,
        paging: config.paging,
        counts: Mutex::new(Counts::default()),
        latency: config.latency,
        rate_limit: config.rate_limit.filter(|limit| *limit > 0),
        window: Mutex::new(pace::Window::default()),
        answer_count: config.answer_count,
        drift: config.drift,
        ties: Mutex::new(fastrand::Rng::with_seed(config.seed)),
        listings: std::sync::atomic::AtomicU64::new(0),
        reads: std::sync::atomic::AtomicU64::new(0),
        events: events::Events::new(
            config.signing.clone(),
            config.sign_direct,
            base,
            config.drop_events,
            config.seed,
            config.event_backoff,
        ),
        validators: referrals_document::Validators::new(
            &referrals_document::parse(referrals_document::REFERRALS_YAML)
                .expect("the embedded document is valid YAML"),
        ),
    }
}
