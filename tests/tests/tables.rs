//! The generated tables (`referrals_model::facts`) against the document, read here on its own,
//! and against the sandbox: each table entry names a member of the document with the type that
//! the entry says, each extension's entries are all in the tables, and the sandbox accepts
//! exactly what the tables list.

use referrals_client::facts::{self, Kind};
use referrals_client::types::{NewReferral, Referral};
use referrals_contract_tests::Contract;
use referrals_contract_tests::members::{shape_at, strip};
use referrals_contract_tests::model::{Model, Shape};
use referrals_sandbox::Config;
use serde_json::Value;

/// The extension `name` of the `Referral` schema, as the document writes it.
fn extension(contract: &Contract, name: &str) -> Value {
    contract
        .spec
        .component("Referral")
        .and_then(|schema| schema.get(name))
        .cloned()
        .unwrap_or_else(|| panic!("the Referral schema has no {name}"))
}

/// The kind of a member, told from its shape in the document, apart from the codegen.
fn kind_of(model: &Model, shape: &Shape) -> Kind {
    match strip(model, shape) {
        Shape::String {
            format,
            values: None,
        } => match format.as_deref() {
            Some("date-time") => Kind::Time,
            Some("date") => Kind::Date,
            Some("uuid") => Kind::Uuid,
            _ => Kind::Text,
        },
        Shape::OpenEnum(_) => Kind::Set,
        Shape::Number { format: None } => Kind::Money,
        Shape::Number { format: Some(_) } => Kind::Number,
        Shape::Integer { .. } => Kind::Integer,
        Shape::Boolean => Kind::Bool,
        other => panic!("not a comparable member: {other:?}"),
    }
}

#[test]
fn every_entry_of_the_tables_names_a_member_of_its_kind() {
    let contract = Contract::load();
    for member in facts::FILTERABLE {
        let segments: Vec<&str> = member.path.split('/').collect();
        assert_eq!(
            kind_of(
                &contract.model,
                &shape_at(&contract.model, "Referral", &segments)
            ),
            member.kind,
            "{}",
            member.path
        );
    }
    for lambda in facts::LAMBDAS {
        for member in lambda.members {
            let segments: Vec<&str> = lambda
                .collection
                .split('/')
                .chain(member.path.split('/'))
                .collect();
            assert_eq!(
                kind_of(
                    &contract.model,
                    &shape_at(&contract.model, "Referral", &segments)
                ),
                member.kind,
                "{}/{}",
                lambda.collection,
                member.path
            );
        }
    }
    for member in facts::SORTABLE {
        let segments: Vec<&str> = member.path.split('/').collect();
        assert_eq!(
            kind_of(
                &contract.model,
                &shape_at(&contract.model, "Referral", &segments)
            ),
            member.kind,
            "{}",
            member.path
        );
    }
}

#[test]
fn the_filterable_table_holds_every_entry_of_the_extension() {
    let contract = Contract::load();
    let filterable = extension(&contract, "x-filterable");
    let mut listed: Vec<(String, Vec<String>)> = filterable
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, entry)| {
            let operators = entry["operators"]
                .as_array()
                .unwrap()
                .iter()
                .map(|op| op.as_str().unwrap().to_owned())
                .collect();
            (path.clone(), operators)
        })
        .collect();
    let mut tabled: Vec<(String, Vec<String>)> = facts::FILTERABLE
        .iter()
        .map(|member| (member.path.to_owned(), keywords(member.operators)))
        .chain(facts::LAMBDAS.iter().flat_map(|lambda| {
            lambda.members.iter().map(|member| {
                (
                    format!("{}/{}", lambda.collection, member.path),
                    keywords(member.operators),
                )
            })
        }))
        .collect();
    listed.sort();
    tabled.sort();
    assert_eq!(tabled, listed);
}

#[test]
fn the_sortable_table_holds_every_entry_of_the_extension() {
    let contract = Contract::load();
    let sortable: Vec<String> = extension(&contract, "x-sortable")
        .as_array()
        .unwrap()
        .iter()
        .map(|path| path.as_str().unwrap().to_owned())
        .collect();
    let tabled: Vec<String> = facts::SORTABLE
        .iter()
        .map(|member| member.path.to_owned())
        .collect();
    assert_eq!(tabled, sortable);
}

#[test]
fn the_patchable_table_holds_every_entry_of_the_extension() {
    let contract = Contract::load();
    let patchable = extension(&contract, "x-patchable");
    let mut listed: Vec<(String, Vec<String>)> = patchable
        .as_object()
        .unwrap()
        .iter()
        .map(|(pointer, ops)| {
            let ops = ops
                .as_array()
                .unwrap()
                .iter()
                .map(|op| op.as_str().unwrap().to_owned())
                .collect();
            (pointer.clone(), ops)
        })
        .collect();
    let mut tabled: Vec<(String, Vec<String>)> = facts::PATCHABLE
        .iter()
        .map(|entry| {
            (
                entry.pointer.to_owned(),
                entry.ops.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    listed.sort();
    tabled.sort();
    assert_eq!(tabled, listed);
}

#[test]
fn the_status_rules_hold_every_entry_of_the_extension() {
    let contract = Contract::load();
    let rules = extension(&contract, "x-status-rules");
    assert_eq!(rules.as_object().unwrap().len(), facts::STATUS_RULES.len());
    for rule in facts::STATUS_RULES {
        let listed = &rules[rule.from.as_str()];
        let names = |list: &Value| -> Vec<String> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|value| value.as_str().unwrap().to_owned())
                .collect()
        };
        let to: Vec<String> = rule.to.iter().map(ToString::to_string).collect();
        let substatus: Vec<String> = rule.substatus.iter().map(ToString::to_string).collect();
        assert_eq!(to, names(&listed["to"]), "{}", rule.from);
        assert_eq!(substatus, names(&listed["substatus"]), "{}", rule.from);
    }
}

fn keywords(operators: facts::Operators) -> Vec<String> {
    operators
        .keywords()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn required_and_read_only_members_are_the_document_s() {
    let contract = Contract::load();
    let schema = |name: &str| contract.spec.component(name).unwrap().clone();
    let required: Vec<String> = schema("NewReferral")["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(NewReferral::REQUIRED, required.as_slice());
    let read_only: Vec<String> = schema("Referral")["properties"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, property)| property["readOnly"] == Value::Bool(true))
        .map(|(name, _)| name.clone())
        .collect();
    let mut tabled: Vec<&str> = Referral::READ_ONLY.to_vec();
    tabled.sort();
    assert_eq!(tabled, read_only);
}

/// A literal of `kind`, as a filter writes it.
fn literal(kind: Kind) -> String {
    kind.example().to_string()
}

const OPERATORS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];

#[tokio::test]
async fn the_sandbox_takes_each_operator_of_a_member_and_no_other() {
    let sandbox = referrals_sandbox::start(Config {
        seed_count: 10,
        log: false,
        ..Config::default()
    })
    .await
    .unwrap();
    let http = http();
    let mut filters = Vec::new();
    for member in facts::FILTERABLE {
        for op in OPERATORS {
            let allowed = member.operators.keywords().contains(&op);
            filters.push((
                format!("{} {op} {}", member.path, literal(member.kind)),
                allowed,
            ));
        }
    }
    for lambda in facts::LAMBDAS {
        let variable = lambda.variable();
        for member in lambda.members {
            for op in OPERATORS {
                let allowed = member.operators.keywords().contains(&op);
                filters.push((
                    format!(
                        "{}/any({variable}:{variable}/{} {op} {})",
                        lambda.collection,
                        member.path,
                        literal(member.kind)
                    ),
                    allowed,
                ));
            }
        }
    }
    for (filter, allowed) in filters {
        let url = format!(
            "{}/v1.0/engagements/referrals?{}",
            sandbox.url(),
            referrals_odata::wire::encode_query([("$filter", filter.as_str())])
        );
        let status = http
            .get(url)
            .bearer_auth("any")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, if allowed { 200 } else { 400 }, "{filter}");
    }
}

/// A plain HTTP client for requests that the client of the crate would never send.
fn http() -> reqwest::Client {
    referrals_client::install_crypto_provider();
    reqwest::Client::new()
}
