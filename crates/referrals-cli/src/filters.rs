//! The filter flags of `list`, `export` and `sync`, made from the document's `x-filterable`
//! (the generated tables [`facts::FILTERABLE`] and [`facts::LAMBDAS`]): a member added to the
//! document gets its flag with the next build, and no flag names a member that `$filter` does
//! not take.
//!
//! - a member compared with `eq` gets a flag of its name in kebab case (`--status`,
//!   `--country` for `customerProfile/address/country`; the whole path when two would clash),
//!   which may be repeated: `--status New --status Active` keeps either;
//! - a member of an array compared in a lambda gets the array's and the member's names
//!   (`--team-email` for `team/any(t:t/email eq ...)`);
//! - a member compared with `ne` gets `--not-<name>`, which may be repeated too:
//!   `--not-status Closed --not-status Active` keeps neither;
//! - a date-time or a date compared with `ge`, `le`, `gt` and `lt` gets `--<name>-from`,
//!   `--<name>-to` (bounds included; `createdDateTime` gives `--created-from`),
//!   `--<name>-after` and `--<name>-before`; other ordered members `--<name>-min`,
//!   `--<name>-max`, `--<name>-above` and `--<name>-below`.
//!
//! A member's name is its `x-accessors` name where it has one (`--customer-size` for
//! `customerProfile/size`).
//!
//! Each value becomes an OData literal (a string in quotes with `'` doubled), so that no value
//! can change what the filter means; flags combine with `and`, and with `--filter`.

use std::collections::BTreeSet;

use clap::{Arg, ArgAction, ArgMatches, Command};
use referrals_client::facts::{self, Kind};
use referrals_client::query::Filter;
use referrals_odata::{CompareOp, Expr, LambdaKind, Literal, Member, Operand};

/// The flags that the hand-written commands take themselves (`list`, `export`, `sync` and the
/// global ones); a member's flag never takes one. The flags are also read back from the matches
/// without the command at hand, so the names cannot come from it. A name missing here that a
/// member's flag takes fails `tests::the_command_line_is_consistent` (clap refuses a long
/// name given twice).
const TAKEN: &[&str] = &[
    "filter", "orderby", "select", "top", "count", "format", "out", "restart", "raw-csv", "db",
    "every", "skew", "root", "token", "quiet", "help", "version",
];

/// One filter flag.
#[derive(Debug, Clone)]
pub struct Flag {
    /// Its long name, which is also its id in the matches.
    pub long: String,
    /// The member path as a filter writes it.
    path: &'static str,
    /// The comparison.
    op: CompareOp,
    kind: Kind,
    /// For a member of an array's items: the array, the lambda and the member within an item.
    lambda: Option<(&'static str, LambdaKind, &'static str)>,
    help: String,
    /// What the flag's name holds around the member's name (`not-`, `-min`), kept when a
    /// clash gives it the member's path instead.
    affix: (&'static str, String),
}

/// Every filter flag, from the tables.
pub fn flags() -> Vec<Flag> {
    let mut flags = Vec::new();
    for member in facts::FILTERABLE {
        flags.extend(member_flags(member));
    }
    for lambda in facts::LAMBDAS {
        for member in lambda.members {
            if !member.operators.contains(CompareOp::Eq) {
                continue;
            }
            flags.push(Flag {
                long: kebab(&format!("{}/{}", lambda.collection, member.path)),
                path: member.path,
                op: CompareOp::Eq,
                kind: member.kind,
                lambda: Some((lambda.collection, lambda.lambda, member.path)),
                affix: ("", String::new()),
                help: format!(
                    "Only referrals with an item of `{}` whose `{}` is this; repeat the flag for \
                     any of several.",
                    lambda.collection, member.path
                ),
            });
        }
    }
    rename_clashes(&mut flags);
    flags
}

/// The flags of one filterable member: equality and inequality (not for a date-time), and
/// the bounds it takes.
fn member_flags(member: &'static facts::Filterable) -> Vec<Flag> {
    let name = kebab(member.name);
    // `createdDateTime` gives `--created-from`.
    let base = name.strip_suffix("-date-time").unwrap_or(&name).to_owned();
    let path = member.path;
    let flag = |op, prefix: &'static str, stem: &str, suffix: String, help: String| Flag {
        long: format!("{prefix}{stem}{suffix}"),
        path,
        op,
        kind: member.kind,
        lambda: None,
        help,
        affix: (prefix, suffix),
    };
    let mut flags = Vec::new();
    let ops = member.operators;
    if member.kind != Kind::Time {
        let known = match member.known {
            [] => String::new(),
            known => format!(" Known values: {} (others may come).", known.join(", ")),
        };
        if ops.contains(CompareOp::Eq) {
            let help = format!(
                "Only referrals whose `{path}` is this; repeat the flag for any of several.{known}"
            );
            flags.push(flag(CompareOp::Eq, "", &name, String::new(), help));
        }
        if ops.contains(CompareOp::Ne) {
            let help = format!(
                "Only referrals whose `{path}` is not this; repeat the flag for none of several."
            );
            flags.push(flag(CompareOp::Ne, "not-", &name, String::new(), help));
        }
    }
    let what = match member.kind {
        Kind::Time => "date-time (RFC 3339, or a date for its midnight UTC)",
        kind if kind.is_temporal() => "date",
        _ => "value",
    };
    for (op, suffix, bound) in bounds(member.kind) {
        if ops.contains(op) {
            let help = format!("Only referrals whose `{path}` is {bound} this {what}.");
            flags.push(flag(op, "", &base, format!("-{suffix}"), help));
        }
    }
    flags
}

/// The bound operators, with the suffix of their flag and what they keep.
fn bounds(kind: Kind) -> [(CompareOp, &'static str, &'static str); 4] {
    if kind.is_temporal() {
        [
            (CompareOp::Ge, "from", "at or after"),
            (CompareOp::Le, "to", "at or before"),
            (CompareOp::Gt, "after", "after"),
            (CompareOp::Lt, "before", "before"),
        ]
    } else {
        [
            (CompareOp::Ge, "min", "at least"),
            (CompareOp::Le, "max", "at most"),
            (CompareOp::Gt, "above", "above"),
            (CompareOp::Lt, "below", "below"),
        ]
    }
}

/// A name taken twice, or taken by a command, is replaced by the whole path.
fn rename_clashes(flags: &mut [Flag]) {
    let mut seen = BTreeSet::new();
    let clashes: BTreeSet<String> = flags
        .iter()
        .filter(|flag| !seen.insert(flag.long.clone()) || TAKEN.contains(&flag.long.as_str()))
        .map(|flag| flag.long.clone())
        .collect();
    for flag in flags {
        if clashes.contains(&flag.long) {
            let path = match flag.lambda {
                Some((collection, _, member)) => format!("{collection}/{member}"),
                None => flag.path.to_owned(),
            };
            let (prefix, suffix) = &flag.affix;
            flag.long = format!("{prefix}{}{suffix}", kebab(&path));
        }
    }
}

/// Whether a flag of `op` may be given more than once.
fn repeats(op: CompareOp) -> bool {
    matches!(op, CompareOp::Eq | CompareOp::Ne)
}

/// Adds the filter flags to `command`, under their own heading.
pub fn add(command: Command) -> Command {
    flags().into_iter().fold(command, |command, flag| {
        let kind = flag.kind;
        command.arg(
            Arg::new(flag.long.clone())
                .long(flag.long.clone())
                .value_name(kind.value_name())
                .help(flag.help)
                .help_heading("Filters (from the document's x-filterable)")
                .action(if repeats(flag.op) {
                    ArgAction::Append
                } else {
                    ArgAction::Set
                })
                .value_parser(move |text: &str| literal(kind, text).map(|_| text.to_owned())),
        )
    })
}

/// The filter that the flags of `matches` and its `--filter` say, if any.
pub fn filter(matches: &ArgMatches) -> Result<Option<Filter>, String> {
    let mut all: Option<Filter> = None;
    let mut push = |filter: Filter| {
        all = Some(match all.take() {
            Some(before) => before.and(filter),
            None => filter,
        });
    };
    for flag in flags() {
        let Some(values) = matches.get_many::<String>(&flag.long) else {
            continue;
        };
        // `--status A --status B` keeps either; `--not-status A --not-status B` neither.
        let mut any: Option<Expr> = None;
        for value in values {
            let comparison = flag.comparison(literal(flag.kind, value)?);
            any = Some(match any.take() {
                Some(before) if flag.op == CompareOp::Ne => before.and(comparison),
                Some(before) => before.or(comparison),
                None => comparison,
            });
        }
        if let Some(expr) = any {
            push(Filter::expr(expr));
        }
    }
    if let Some(text) = matches.get_one::<String>("filter") {
        referrals_odata::parse_filter(text)
            .map_err(|error| format!("--filter `{text}` is not a filter: {error}"))?;
        push(Filter::raw(text.clone()));
    }
    Ok(all)
}

impl Flag {
    fn comparison(&self, value: Literal) -> Expr {
        match self.lambda {
            None => Expr::Compare {
                left: Operand::Member(Member::new(self.path)),
                op: self.op,
                right: Operand::Literal(value),
            },
            Some((collection, kind, member)) => {
                let variable = facts::variable(collection);
                Expr::Lambda {
                    collection: Member::new(collection),
                    kind,
                    predicate: Box::new(Expr::Compare {
                        left: Operand::Member(Member::new(&format!("{variable}/{member}"))),
                        op: self.op,
                        right: Operand::Literal(value),
                    }),
                    variable,
                }
            }
        }
    }
}

/// The literal of `text` for a member of kind `kind`, or why it is not one.
fn literal(kind: Kind, text: &str) -> Result<Literal, String> {
    kind.literal_of_text(text)
}

/// `customerProfile/address` → `customer-profile-address`.
fn kebab(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    let mut previous_lower = false;
    for c in path.chars() {
        if c == '/' || c == '_' || c == '.' || c == '@' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            previous_lower = false;
        } else if c.is_uppercase() {
            if previous_lower && !out.ends_with('-') {
                out.push('-');
            }
            out.extend(c.to_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<String>, String> {
        let command = add(Command::new("list").arg(Arg::new("filter").long("filter")));
        let matches = command
            .try_get_matches_from(std::iter::once("list").chain(args.iter().copied()))
            .map_err(|error| error.to_string())?;
        filter(&matches).map(|filter| filter.map(|filter| filter.to_string()))
    }

    #[test]
    fn names_come_from_the_paths() {
        let names: Vec<String> = flags().into_iter().map(|flag| flag.long).collect();
        for expected in [
            "status",
            "substatus",
            "direction",
            "country",
            "team-email",
            "created-from",
            "updated-to",
        ] {
            assert!(
                names.iter().any(|name| name == expected),
                "{expected} in {names:?}"
            );
        }
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(
            kebab("customerProfile/address/country"),
            "customer-profile-address-country"
        );
    }

    #[test]
    fn flags_make_one_filter() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&[
                "--status",
                "New",
                "--status",
                "Active",
                "--direction",
                "Incoming"
            ])
            .unwrap(),
            Some("(status eq 'New' or status eq 'Active') and direction eq 'Incoming'".into())
        );
        assert_eq!(
            parse(&["--team-email", "a@b.c", "--created-from", "2024-05-01"]).unwrap(),
            Some(
                "createdDateTime ge 2024-05-01T00:00:00Z and team/any(t:t/email eq 'a@b.c')".into()
            )
        );
        assert_eq!(
            parse(&["--country", "US", "--filter", "type eq 'Shared' or type eq 'Independent'"])
                .unwrap(),
            Some(
                "(customerProfile/address/country eq 'US') and (type eq 'Shared' or type eq 'Independent')"
                    .into()
            )
        );
        assert_eq!(
            parse(&[
                "--not-status",
                "Closed",
                "--not-status",
                "Active",
                "--updated-after",
                "2024-05-01"
            ])
            .unwrap(),
            Some(
                "status ne 'Closed' and status ne 'Active' and updatedDateTime gt 2024-05-01T00:00:00Z"
                    .into()
            )
        );
    }

    #[test]
    fn a_value_cannot_change_the_meaning() {
        let text = parse(&[
            "--country",
            "x' or status eq 'New",
            "--status",
            "Ünïcødé 'q'",
        ])
        .unwrap()
        .unwrap();
        let parsed = referrals_odata::parse_filter(&text).unwrap();
        let Expr::And(left, right) = parsed else {
            panic!("two comparisons joined by and: {text}")
        };
        assert!(
            matches!(*left, Expr::Compare { right: Operand::Literal(Literal::String(ref value)), .. } if value == "Ünïcødé 'q'"),
            "{text}"
        );
        assert!(
            matches!(*right, Expr::Compare { right: Operand::Literal(Literal::String(ref value)), .. } if value == "x' or status eq 'New"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_are_refused_when_parsed() {
        let error = parse(&["--created-from", "yesterday"]).unwrap_err();
        assert!(error.contains("not a date-time"), "{error}");
        let error = parse(&["--filter", "status eq"]).unwrap_err();
        assert!(error.contains("is not a filter"), "{error}");
    }
}
