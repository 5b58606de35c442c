//! What the workspace's tests share, so that no test crate keeps a copy of its own:
//!
//! - [`NoWait`], a clock whose waits end at once, so that a `Retry-After` or a backoff costs a
//!   test nothing;
//! - [`config`] and [`start`], a sandbox on a free loopback port that takes the bearer token
//!   [`TOKEN`] and logs nothing;
//! - [`client`] and [`builder`], a client of any loopback root with that token and that clock.
//!
//! ```no_run
//! # async fn run() {
//! use referrals_sandbox::Config;
//!
//! let sandbox = referrals_testkit::start(Config { seed_count: 50, ..referrals_testkit::config() }).await;
//! let client = referrals_testkit::client(&sandbox.url());
//! let lead = client.referral("61c65491-2f2c-461a-84b4-3654499bc1d9").await.unwrap();
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use referrals_client::{Client, ClientBuilder, Clock, StaticToken};
use referrals_sandbox::{Config, Sandbox};

/// The bearer token that the sandbox of [`config`] takes and the client of [`client`] sends.
pub const TOKEN: &str = "testkit-secret";

/// A clock whose waits end at once; its time is the system's.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWait;

impl Clock for NoWait {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async {})
    }
}

/// The sandbox's default configuration, with the token [`TOKEN`] and without a log line per
/// request.
pub fn config() -> Config {
    Config {
        token: Some(TOKEN.to_owned()),
        log: false,
        ..Config::default()
    }
}

/// Starts a sandbox of `config` on loopback; it stops when dropped.
///
/// # Panics
/// When no loopback port can be bound: the test cannot go on.
pub async fn start(config: Config) -> Sandbox {
    referrals_sandbox::start(config)
        .await
        .expect("a sandbox starts on a loopback port")
}

/// A builder of a client of `root` (a loopback root may be plain http) with the token
/// [`TOKEN`] and the clock [`NoWait`].
pub fn builder(root: &str) -> ClientBuilder {
    Client::builder(root, StaticToken::new(TOKEN))
        .allow_http_to_loopback(true)
        .clock(NoWait)
}

/// A client of `root`, as [`builder`] makes it.
///
/// # Panics
/// When `root` is not a URL a client takes.
pub fn client(root: &str) -> Client {
    builder(root).build().expect("a client of a loopback root")
}

pub mod postgres;
