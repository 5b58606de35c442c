//! Every status rule of the document (`x-status-rules`) holds on a running sandbox, through
//! the client, whatever statuses and substatuses the document names: each change that a rule
//! allows is taken with `/status` alone (the referral gets the first substatus of its new
//! status, as the document says) and with each substatus of the status named; each change that
//! the rules leave out is refused by the client before it is sent, and by the sandbox.
//!
//! A referral is brought to a status by the shortest path of allowed changes from the status
//! that a new referral has, so a status that only a path of changes reaches is covered too.

use std::collections::{BTreeMap, VecDeque};

use referrals_client::facts::{STATUS_RULES, Status};
use referrals_client::patch::Patch;
use referrals_client::transitions;
use referrals_client::types::{NewReferral, Referral};
use referrals_client::{Client, ErrorKind, StatusChange};
use referrals_sandbox::Sandbox;

async fn start() -> (Sandbox, Client) {
    let sandbox = referrals_testkit::start(referrals_sandbox::Config {
        seed_count: 0,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    (sandbox, client)
}

/// A new referral made from the documented create request.
async fn created(client: &Client) -> Referral {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/examples/ours-create-request.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let new: NewReferral = serde_json::from_str(&text).unwrap();
    client.create(&new).await.unwrap()
}

/// The shortest paths of allowed changes from `start` to each status the rules reach.
fn paths_from(start: &Status) -> BTreeMap<String, Vec<Status>> {
    let mut paths = BTreeMap::from([(start.to_string(), Vec::new())]);
    let mut queue = VecDeque::from([start.clone()]);
    while let Some(status) = queue.pop_front() {
        let path = paths[status.as_str()].clone();
        for next in transitions::next_statuses(&status).unwrap_or_default() {
            if !paths.contains_key(next.as_str()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                paths.insert(next.to_string(), longer);
                queue.push_back(next.clone());
            }
        }
    }
    paths
}

/// A new referral brought to `status` by patches of `/status` alone.
async fn in_status(client: &Client, status: &Status) -> Referral {
    let mut referral = created(client).await;
    let start = referral.status.clone().unwrap();
    let paths = paths_from(&start);
    let path = paths
        .get(status.as_str())
        .unwrap_or_else(|| panic!("no rule leads from {start} to {status}"));
    for step in path {
        referral = client
            .update(&referral, Patch::new().set_status(step.clone()))
            .await
            .unwrap_or_else(|error| panic!("{start} → {status}: at {step}: {error}"));
    }
    referral
}

#[tokio::test]
async fn every_rule_holds_on_the_sandbox_through_the_client() {
    let (_sandbox, client) = start().await;
    let start = created(&client).await.status.unwrap();
    let reached = paths_from(&start);
    let mut checked = 0;
    for rule in STATUS_RULES {
        // A status that no rule leads to (one that only the service sets) cannot be reached.
        if !reached.contains_key(rule.from.as_str()) {
            continue;
        }
        checked += 1;
        for to in rule.to {
            status_alone(&client, &rule.from, to).await;
            for substatus in transitions::substatuses(to).unwrap() {
                let referral = in_status(&client, &rule.from).await;
                let change = StatusChange::To {
                    status: to.clone(),
                    substatus: Some(substatus.clone()),
                    reason: None,
                };
                let done = client.change(&referral, &change).await.unwrap();
                assert_eq!(
                    done.substatus.as_ref(),
                    Some(substatus),
                    "{} → {to}",
                    rule.from
                );
            }
        }
        for other in STATUS_RULES
            .iter()
            .filter(|other| !rule.to.contains(&other.from))
        {
            refused(&client, &rule.from, &other.from).await;
        }
    }
    assert!(checked > 1, "{checked} rules reached from {start}");
}

/// `/status` alone, sent as a patch and as a `StatusChange` without a substatus: both give
/// the substatus that the document says.
async fn status_alone(client: &Client, from: &Status, to: &Status) {
    let referral = in_status(client, from).await;
    // The document's words: a referral entering a status gets its first substatus; one that
    // stays keeps its own.
    let expected = if from == to {
        referral.substatus.clone()
    } else {
        STATUS_RULES
            .iter()
            .find(|rule| rule.from == *to)
            .and_then(|rule| rule.substatus.first().cloned())
    };
    let patched = client
        .update(&referral, Patch::new().set_status(to.clone()))
        .await
        .unwrap_or_else(|error| panic!("{from} → {to} with /status alone: {error}"));
    assert_eq!(patched.status.as_ref(), Some(to));
    assert_eq!(
        patched.substatus, expected,
        "{from} → {to} with /status alone"
    );
    let referral = in_status(client, from).await;
    let change = StatusChange::To {
        status: to.clone(),
        substatus: None,
        reason: None,
    };
    if from == to {
        // Nothing to send: the referral is there already, with its own substatus.
        assert!(change.is_done(&referral), "{from} → {to}: already done");
        return;
    }
    let changed = client.change(&referral, &change).await.unwrap();
    assert_eq!(
        changed.substatus, patched.substatus,
        "{from} → {to}: StatusChange and the sandbox"
    );
}

/// A change that the rules leave out: the client refuses it before sending, the sandbox when
/// it is sent anyway.
async fn refused(client: &Client, from: &Status, to: &Status) {
    let referral = in_status(client, from).await;
    let change = StatusChange::To {
        status: to.clone(),
        substatus: None,
        reason: None,
    };
    let error = client.change(&referral, &change).await.unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidTransition,
        "{from} → {to}: {error}"
    );
    let sent = client
        .update(&referral, Patch::new().set_status(to.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        sent.status().map(|status| status.as_u16()),
        Some(400),
        "{from} → {to}: {sent}"
    );
}
