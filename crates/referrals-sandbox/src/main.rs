//! `referrals-sandbox`: a local server of the Partner API for referrals.
//!
//! ```text
//! cargo run -p referrals-sandbox -- --addr 127.0.0.1:8080 --seed-count 1000 --token secret
//! ```

use std::io::Write;
use std::process::ExitCode;

use referrals_sandbox::Config;

const USAGE: &str = "\
usage: referrals-sandbox [options]

  --addr ADDR          where to listen (default 127.0.0.1:0, any free port on loopback)
  --seed-count N       synthetic referrals beside the seed examples (default 1000)
  --seed N             the generator's seed; the same seed and count give the same data (default 42)
  --token TOKEN        the one bearer token accepted (default: any non-empty token)
  --fault-429 SHARE    answer this share of requests with 429 and Retry-After (default 0)
  --fault-503 SHARE    answer this share of requests with 503 and Retry-After (default 0)
  --page-size N        the most referrals on a page (default 100)
  --quiet              no line per request
";

fn parse() -> Result<Config, String> {
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |text: String, what: &str| {
            text.parse::<f64>()
                .map_err(|_| format!("{what} needs a number, not `{text}`"))
        };
        match arg.as_str() {
            "--addr" => {
                let text = value()?;
                config.addr = text
                    .parse()
                    .map_err(|_| format!("`{text}` is not an address such as 127.0.0.1:8080"))?;
            }
            "--seed-count" => {
                let text = value()?;
                config.seed_count = text
                    .parse()
                    .map_err(|_| format!("--seed-count needs a count, not `{text}`"))?;
            }
            "--seed" => {
                let text = value()?;
                config.seed = text
                    .parse()
                    .map_err(|_| format!("--seed needs a number, not `{text}`"))?;
            }
            "--token" => config.token = Some(value()?).filter(|token| !token.is_empty()),
            "--fault-429" => config.fault_429 = number(value()?, "--fault-429")?,
            "--fault-503" => config.fault_503 = number(value()?, "--fault-503")?,
            "--page-size" => {
                let text = value()?;
                config.page_size = text
                    .parse()
                    .map_err(|_| format!("--page-size needs a count, not `{text}`"))?;
            }
            "--quiet" => config.log = false,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    for (share, name) in [
        (config.fault_429, "--fault-429"),
        (config.fault_503, "--fault-503"),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("{name} is a share from 0 to 1"));
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse() {
        Ok(config) => config,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sandbox = match referrals_sandbox::start(config.clone()).await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", sandbox.url());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
