//! The keeper's loop: a change set that the service might ship tomorrow, one change of each
//! kind of fact, is an edit of the document alone. On a copy of the workspace's document and
//! of the crates that the contract tests build, the document gains
//!
//! - members of every scalar kind that was not filterable or sortable before: an integer
//!   (`int32`, `minimum`/`maximum`, nullable, read-only) filterable with `eq`/`ne`/`ge`/`le`
//!   and sortable, a date, a UUID, a binary float (`double`) sortable, a nested value set
//!   (`customerProfile/size`) filterable, an existing value set (`qualification`) sortable;
//! - every JSON Patch op of RFC 6902: `remove`, `move`, `copy` and `test`, declared on paths;
//! - a status (`Paused`) with a substatus of its own (`Waiting`), reached from `Active`, with
//!   rules that go back to it;
//!
//! then `cargo xtask codegen` (this crate's binary) rewrites the copy's generated code, whose
//! summary names what was added, `--check` finds it current, the whole set of contract tests
//! passes on the copy, and the copy's `referrals` offers the new flags, sort keys and status,
//! with no Rust file edited.
//!
//! It builds the copy's crates and their tests in the target directory that holds this test
//! (their paths differ from the workspace's, so nothing of the workspace's build is replaced)
//! and runs every contract test: several minutes on two cores.

mod common;

use common::{cargo_in, codegen_copy, copy_workspace, root, show};

/// The crates that the contract tests and the CLI build, copied with the document.
const CRATES: [&str; 10] = [
    "referrals-codegen",
    "referrals-odata",
    "referrals-model",
    "referrals-document",
    "referrals-client",
    "referrals-sandbox",
    "referrals-testkit",
    "referrals-events",
    "referrals-mirror",
    "referrals-cli",
];

/// What the CLI's help must offer for the new facts: `(command, text)`.
const HELP: &[(&str, &str)] = &[
    ("list", "--partner-score-min"),
    ("list", "--not-partner-score"),
    ("list", "--customer-size"),
    ("list", "--not-customer-size"),
    ("list", "--review-date-after"),
    ("list", "--confidence-above"),
    (
        "list",
        "updatedDateTime, qualification, partnerScore, confidence",
    ),
    (
        "set-status",
        "Paused     → Paused, Active, Closed; substatus Waiting",
    ),
];

/// One edit: the text `from`, which the document must hold once at least, becomes `to`.
struct Edit {
    from: &'static str,
    to: &'static str,
}

const EDITS: &[Edit] = &[
    // New members of kinds that no filter or sort of the document had.
    Edit {
        from: concat!(
            "        externalReferenceId:\n",
            "          type: string\n",
            "          nullable: true\n",
            "          description: The caller's own identifier for this referral, such as its CRM record id.\n",
        ),
        to: concat!(
            "        externalReferenceId:\n",
            "          type: string\n",
            "          nullable: true\n",
            "          description: The caller's own identifier for this referral, such as its CRM record id.\n",
            "        partnerScore:\n",
            "          type: integer\n",
            "          format: int32\n",
            "          minimum: 0\n",
            "          maximum: 100\n",
            "          nullable: true\n",
            "          readOnly: true\n",
            "          description: How well the referral fits the partner, from 0 to 100.\n",
            "        reviewDate:\n",
            "          type: string\n",
            "          format: date\n",
            "          description: The day the referral is next reviewed.\n",
            "        scoringRunId:\n",
            "          type: string\n",
            "          format: uuid\n",
            "          description: The run of the model that scored the referral.\n",
            "        confidence:\n",
            "          type: number\n",
            "          format: double\n",
            "          description: How sure the scoring is, from 0 to 1.\n",
        ),
    },
    Edit {
        from: "      x-filterable:\n",
        to: concat!(
            "      x-filterable:\n",
            "        partnerScore: {operators: [eq, ne, ge, le]}\n",
            "        reviewDate: {operators: [eq, gt, lt]}\n",
            "        scoringRunId: {operators: [eq, ne]}\n",
            "        confidence: {operators: [gt, le]}\n",
            "        customerProfile/size: {operators: [eq, ne]}\n",
        ),
    },
    Edit {
        from: "      x-sortable: [createdDateTime, updatedDateTime]\n",
        to: "      x-sortable: [createdDateTime, updatedDateTime, qualification, partnerScore, confidence]\n",
    },
    // Every op of RFC 6902.
    Edit {
        from: "      enum: [replace, add]\n",
        to: "      enum: [replace, add, remove, move, copy, test]\n",
    },
    Edit {
        from: "        /externalReferenceId: [replace, add]\n",
        to: "        /externalReferenceId: [replace, add, remove, test]\n",
    },
    Edit {
        from: "        /details/notes: [replace, add]\n",
        to: "        /details/notes: [replace, add, remove, move, copy, test]\n",
    },
    Edit {
        from: "        /statusReason: [replace, add]\n",
        to: "        /statusReason: [add, remove, copy]\n",
    },
    // A status of its own substatus, with rules that go back.
    Edit {
        from: "          enum: [None, New, Active, Closed]\n",
        to: "          enum: [None, New, Active, Closed, Paused]\n",
    },
    Edit {
        from: "          enum: [None, Pending, Received, Accepted, Won, Lost, Declined, Expired]\n",
        to: "          enum: [None, Pending, Received, Accepted, Won, Lost, Declined, Expired, Waiting]\n",
    },
    Edit {
        from: "        Active: {to: [Active, Closed], substatus: [Accepted]}\n",
        to: concat!(
            "        Active: {to: [Active, Paused, Closed], substatus: [Accepted]}\n",
            "        Paused: {to: [Paused, Active, Closed], substatus: [Waiting]}\n",
        ),
    },
];

/// What the codegen's summary must name.
const NAMED: &[&str] = &[
    "added struct types::Referral.partner_score",
    "added enum types::JsonPatchOp::Remove",
    "added enum types::ReferralStatus::Paused",
    "added static tables::FILTERABLE[\"partnerScore\"]: kind Integer; operators EQ | NE | GE | LE",
    "added static tables::FILTERABLE[\"customerProfile/size\"]: name \"customerSize\"; kind Set",
    "added static tables::SORTABLE[\"confidence\"]: kind Number",
    "changed static tables::PATCHABLE[\"/details/notes\"]: ops [Replace, Add] → \
     [Replace, Add, Remove, Move, Copy, Test]",
    "changed static tables::STATUS_RULES[Active]: to [Active, Closed] → [Active, Paused, Closed]",
    "added static tables::STATUS_RULES[Paused]: to [Paused, Active, Closed]; substatus [Waiting]",
];

/// What the generated model must hold: a typed filter, sort key and patch method of each kind.
const GENERATED: &[&str] = &[
    "pub fn partner_score()",
    "pub fn review_date()",
    "pub fn scoring_run_id()",
    "pub fn confidence()",
    // `customerProfile/size` by its `x-accessors` name.
    "pub fn customer_size()",
    "pub fn remove_external_reference_id(",
    "pub fn test_external_reference_id(",
    "pub fn move_details_notes_from(",
    "pub fn copy_details_notes_from(",
    "pub fn copy_status_reason_from(",
];

#[test]
fn a_change_of_every_kind_is_an_edit_of_the_document_alone() {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("workspace");
    let root = root();
    copy_workspace(&root, &copy, &CRATES, &["tests"]);
    let document = copy.join("openapi/referrals.yaml");
    let mut text = std::fs::read_to_string(&document).unwrap();
    for edit in EDITS {
        assert!(
            text.contains(edit.from),
            "the document no longer holds the text that the keeper's change edits:\n{}",
            edit.from
        );
        text = text.replacen(edit.from, edit.to, 1);
    }
    std::fs::write(&document, text).unwrap();

    let written = codegen_copy(&copy, false);
    assert!(written.status.success(), "{}", show(&written));
    let report = String::from_utf8_lossy(&written.stdout);
    for named in NAMED {
        assert!(
            report.contains(named),
            "the summary names {named}:\n{report}"
        );
    }
    let checked = codegen_copy(&copy, true);
    assert!(checked.status.success(), "{}", show(&checked));
    let model =
        std::fs::read_to_string(copy.join("crates/referrals-model/generated/model.rs")).unwrap();
    for item in GENERATED {
        assert!(model.contains(item), "the generated model has {item}");
    }

    let tested = cargo_in(
        &copy,
        &["test", "-p", "referrals-contract-tests", "--no-fail-fast"],
    );
    assert!(tested.status.success(), "{}", show(&tested));
    for (command, text) in HELP {
        let args = ["run", "-q", "-p", "referrals-cli", "--", command, "--help"];
        let help = cargo_in(&copy, &args);
        assert!(help.status.success(), "{}", show(&help));
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains(text),
            "`referrals {command} --help` has {text}:\n{help}"
        );
    }
}
