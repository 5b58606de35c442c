//! One test per file of `openapi/examples/`, found at run time, so a new example is tested
//! without a code change. For each place where the document attaches the example:
//!
//! - (a) the payload validates against the attached schema, as JSON Schema;
//! - (b) it decodes into the generated type of that schema;
//! - (c) encoding the value gives back the payload, under the rules of
//!   `referrals_contract_tests::equivalence` (unknown members included);
//! - (d) an insta snapshot (`tests/snapshots/`) of the decoded value, as the generated type
//!   writes it, in YAML: a reviewer sees what is kept and how (date-times normalized, `null`
//!   members dropped, unknown members kept after the known ones, amounts digit for digit);
//!
//! Beside each, `declared::<example>` checks that every member of the payload is a declared
//! property of its schema, not only caught by the catch-all map. It is a separate test because
//! a payload with members that the document does not name yet must still pass the four checks
//! above (it decodes and round-trips): it only shows that the document should name them.
//!
//! A failure names the example, the check, the JSON path, and what was expected and found.

use std::collections::BTreeMap;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use referrals_contract_tests::Contract;
use referrals_contract_tests::codec::{self, Codec, TypeVisitor};
use referrals_contract_tests::json::Json;
use referrals_contract_tests::spec::Attachment;

fn main() {
    let args = Arguments::from_args();
    let contract = Arc::new(Contract::load());
    let attachments = contract.spec.attachments_by_file();
    let files = contract.spec.example_files();

    let mut trials = Vec::new();
    for file in &files {
        let name = file
            .trim_start_matches("examples/")
            .trim_end_matches(".json")
            .to_owned();
        let contract = Arc::clone(&contract);
        let file = file.clone();
        let uses = attachments.get(&file).cloned().unwrap_or_default();
        {
            let (contract, file, uses) = (Arc::clone(&contract), file.clone(), uses.clone());
            trials.push(Trial::test(format!("declared::{name}"), move || {
                check_declared(&contract, &file, &uses)
            }));
        }
        trials.push(Trial::test(format!("example::{name}"), move || {
            check_example(&contract, &file, &uses)
        }));
    }
    // The other direction: every example that the document names exists.
    for (file, uses) in &attachments {
        if !files.contains(file) {
            let message = format!(
                "{} of {} names the example `{file}`, which is not a file of openapi/examples/",
                uses[0].place, uses[0].operation
            );
            trials.push(Trial::test(format!("attachment::{file}"), move || {
                Err(message.into())
            }));
        }
    }
    // And every snapshot belongs to an example, so a removed example takes its snapshot along.
    let stems: Vec<String> = files.iter().map(|file| snapshot_name(file)).collect();
    trials.push(Trial::test(
        "snapshots::all_belong_to_an_example",
        move || {
            let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots");
            let mut strays = Vec::new();
            for entry in std::fs::read_dir(folder).map_err(|error| format!("{folder}: {error}"))? {
                let name = entry
                    .map_err(|error| error.to_string())?
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                let Some(stem) = name.strip_suffix(".snap") else {
                    strays.push(format!(
                        "{name} (a pending snapshot: review it, then rename or delete it)"
                    ));
                    continue;
                };
                let example = stem.split('.').next().unwrap_or(stem);
                if !stems.iter().any(|known| known == example) {
                    strays.push(format!("{name} (no example examples/{example}.json)"));
                }
            }
            if strays.is_empty() {
                Ok(())
            } else {
                Err(
                    format!("files in tests/tests/snapshots/ that no example makes: {strays:?}")
                        .into(),
                )
            }
        },
    ));
    libtest_mimic::run(&args, trials).exit();
}

fn check_example(contract: &Contract, file: &str, uses: &[Attachment]) -> Result<(), Failed> {
    let payload = contract.spec.read_example(file)?;
    if uses.is_empty() {
        return Err(format!(
            "{file} is not attached to any operation: add it under components/examples of \
             openapi/referrals.yaml (externalValue: {file}) and refer to it from the request body \
             or response that it shows"
        )
        .into());
    }

    // One check per schema; an example shown in several places usually has one.
    let mut by_schema: BTreeMap<String, Vec<&Attachment>> = BTreeMap::new();
    for attachment in uses {
        by_schema
            .entry(attachment.schema.to_string())
            .or_default()
            .push(attachment);
    }
    let several = by_schema.len() > 1;
    let mut problems = Vec::new();
    for attachments in by_schema.values() {
        let first = attachments[0];
        let places = attachments
            .iter()
            .map(|attachment| format!("{} of {}", attachment.place, attachment.operation))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(component) = first.component() else {
            problems.push(format!(
                "{places}: the schema {} is not a $ref to components/schemas, so no generated \
                 type can be named for it",
                first.schema
            ));
            continue;
        };
        let heading = format!("{file} as {component} ({places})");
        for violation in contract.violations(component, &payload) {
            problems.push(format!("{heading}: (a) schema: {violation}"));
        }
        let snapshot = if several {
            format!("{}.{component}", snapshot_name(file))
        } else {
            snapshot_name(file)
        };
        let visitor = Check {
            file,
            payload: &payload,
            snapshot,
            heading: &heading,
        };
        match codec::visit(component, visitor) {
            Some(found) => problems.extend(found),
            None => problems.push(format!("{heading}: no generated type for `{component}`")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
        .into())
    }
}

fn check_declared(contract: &Contract, file: &str, uses: &[Attachment]) -> Result<(), Failed> {
    let payload = contract.spec.read_example(file)?;
    let mut problems = Vec::new();
    let mut components: Vec<&str> = uses.iter().filter_map(Attachment::component).collect();
    components.dedup();
    for component in components {
        for member in contract.undeclared_members(component, &payload) {
            problems.push(format!("{file} as {component}: {member}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "members that the document does not declare (the client keeps them in `extra`, but \
             the document should name them):\n  {}",
            problems.join("\n  ")
        )
        .into())
    }
}

fn snapshot_name(file: &str) -> String {
    file.trim_start_matches("examples/")
        .trim_end_matches(".json")
        .to_owned()
}

/// Checks (b), (c) and (d) with the generated type of the example's schema.
struct Check<'a> {
    file: &'a str,
    payload: &'a Json,
    snapshot: String,
    heading: &'a str,
}

impl TypeVisitor for Check<'_> {
    type Output = Vec<String>;

    fn visit<T: Codec>(self, rust_type: &'static str) -> Vec<String> {
        let round_trip = match codec::round_trip::<T>(self.payload) {
            Ok(round_trip) => round_trip,
            Err(error) => {
                return vec![format!(
                    "{}: (b) does not decode into {rust_type} {error}",
                    self.heading
                )];
            }
        };
        if !round_trip.differences.is_empty() {
            return round_trip
                .differences
                .iter()
                .map(|difference| {
                    format!(
                        "{}: (c) round trip through {rust_type} changed it {difference}",
                        self.heading
                    )
                })
                .collect();
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(format!("openapi/{}", self.file));
        settings.set_description(format!(
            "openapi/{} decoded as {rust_type}, then encoded again",
            self.file
        ));
        let yaml = referrals_contract_tests::yaml::to_yaml(&round_trip.back);
        // insta's own hint names `cargo insta review`, a tool that this workspace does not
        // install: the failure says the workspace's command.
        let asserted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(self.snapshot.as_str(), yaml));
        }));
        if asserted.is_err() {
            return vec![format!(
                "{}: (d) the snapshot tests/tests/snapshots/{}.snap differs (see the diff above): \
                 if the change is meant, accept it with `cargo xtask snapshots` and review it \
                 with `git diff tests/tests/snapshots`",
                self.heading, self.snapshot
            )];
        }
        Vec::new()
    }
}
