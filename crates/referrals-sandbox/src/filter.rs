//! `$filter` and `$orderby` on the store: which members can be named, and what they hold.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use referrals_client::Amount;
use referrals_client::types::{Member, Referral};
use referrals_odata::{CompareOp, Expr, LambdaKind, Literal, Operand, OrderItem};

use crate::error::ApiError;

/// What kind of value a member holds, which decides the literals it compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A value of an open value set, compared as its string.
    Set,
    /// A date-time, compared by instant; written bare (`2020-10-30T00:00:00Z`).
    Time,
    /// Money, compared by value.
    Money,
    /// `true` or `false`.
    Bool,
}

/// A member's value in one referral.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// The member is absent or `null`.
    Null,
    /// A string or a value of a set.
    Text(&'a str),
    /// A date-time.
    Time(DateTime<Utc>),
    /// An amount.
    Money(&'a Amount),
    /// A boolean.
    Bool(bool),
}

impl Scalar<'_> {
    /// Orders two values of one member; `null` first.
    pub fn compare(&self, other: &Scalar<'_>) -> Ordering {
        match (self, other) {
            (Scalar::Null, Scalar::Null) => Ordering::Equal,
            (Scalar::Null, _) => Ordering::Less,
            (_, Scalar::Null) => Ordering::Greater,
            (Scalar::Text(a), Scalar::Text(b)) => a.cmp(b),
            (Scalar::Time(a), Scalar::Time(b)) => a.cmp(b),
            (Scalar::Money(a), Scalar::Money(b)) => a.cmp(b),
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            // One member always gives one kind; this is never reached.
            _ => Ordering::Equal,
        }
    }

    /// The value as JSON, for a `$skiptoken`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Text(text) => serde_json::Value::String((*text).to_owned()),
            Scalar::Time(time) => serde_json::Value::String(time.to_rfc3339()),
            Scalar::Money(amount) => serde_json::Value::String(amount.as_str().to_owned()),
            Scalar::Bool(value) => serde_json::Value::Bool(*value),
        }
    }
}

/// An owned value, read back from a `$skiptoken` or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// A string.
    Text(String),
    /// A date-time.
    Time(DateTime<Utc>),
    /// An amount.
    Money(Amount),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The value, borrowed as a [`Scalar`].
    pub fn scalar(&self) -> Scalar<'_> {
        match self {
            Value::Null => Scalar::Null,
            Value::Text(text) => Scalar::Text(text),
            Value::Time(time) => Scalar::Time(*time),
            Value::Money(amount) => Scalar::Money(amount),
            Value::Bool(value) => Scalar::Bool(*value),
        }
    }

    /// Reads a value of `kind` back from [`Scalar::to_json`].
    pub fn from_json(kind: Kind, json: &serde_json::Value) -> Option<Value> {
        Some(match (kind, json) {
            (_, serde_json::Value::Null) => Value::Null,
            (Kind::Text | Kind::Set, serde_json::Value::String(text)) => Value::Text(text.clone()),
            (Kind::Time, serde_json::Value::String(text)) => {
                Value::Time(DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc))
            }
            (Kind::Money, serde_json::Value::String(text)) => Value::Money(text.parse().ok()?),
            (Kind::Bool, serde_json::Value::Bool(value)) => Value::Bool(*value),
            _ => return None,
        })
    }
}

type Getter = fn(&Referral) -> Scalar<'_>;

/// A member that `$filter` and `$orderby` can name.
pub struct MemberDef {
    /// Its path, as written in a filter.
    pub path: &'static str,
    /// What it holds.
    pub kind: Kind,
    get: Getter,
}

impl MemberDef {
    /// Its value in `referral`.
    pub fn get<'a>(&self, referral: &'a Referral) -> Scalar<'a> {
        (self.get)(referral)
    }
}

fn text(value: Option<&str>) -> Scalar<'_> {
    value.map_or(Scalar::Null, Scalar::Text)
}

fn time(value: Option<DateTime<Utc>>) -> Scalar<'static> {
    value.map_or(Scalar::Null, Scalar::Time)
}

/// The members of the referral that filters and orders can name.
pub static MEMBERS: &[MemberDef] = &[
    MemberDef {
        path: "id",
        kind: Kind::Text,
        get: |r| text(r.id.as_deref()),
    },
    MemberDef {
        path: "engagementId",
        kind: Kind::Text,
        get: |r| text(r.engagement_id.as_deref()),
    },
    MemberDef {
        path: "name",
        kind: Kind::Text,
        get: |r| text(r.name.as_deref()),
    },
    MemberDef {
        path: "organizationId",
        kind: Kind::Text,
        get: |r| text(r.organization_id.as_deref()),
    },
    MemberDef {
        path: "organizationName",
        kind: Kind::Text,
        get: |r| text(r.organization_name.as_deref()),
    },
    MemberDef {
        path: "externalReferenceId",
        kind: Kind::Text,
        get: |r| text(r.external_reference_id.as_deref()),
    },
    MemberDef {
        path: "statusReason",
        kind: Kind::Text,
        get: |r| text(r.status_reason.as_deref()),
    },
    MemberDef {
        path: "campaignId",
        kind: Kind::Text,
        get: |r| text(r.campaign_id.as_deref()),
    },
    MemberDef {
        path: "referralProgram",
        kind: Kind::Text,
        get: |r| text(r.referral_program.as_deref()),
    },
    MemberDef {
        path: "status",
        kind: Kind::Set,
        get: |r| text(r.status.as_ref().map(|v| v.as_str())),
    },
    MemberDef {
        path: "substatus",
        kind: Kind::Set,
        get: |r| text(r.substatus.as_ref().map(|v| v.as_str())),
    },
    MemberDef {
        path: "qualification",
        kind: Kind::Set,
        get: |r| text(r.qualification.as_ref().map(|v| v.as_str())),
    },
    MemberDef {
        path: "type",
        kind: Kind::Set,
        get: |r| text(r.type_.as_ref().map(|v| v.as_str())),
    },
    MemberDef {
        path: "direction",
        kind: Kind::Set,
        get: |r| text(r.direction.as_ref().map(|v| v.as_str())),
    },
    MemberDef {
        path: "salesStage",
        kind: Kind::Set,
        get: |r| text(r.sales_stage.as_ref().map(|v| v.as_str())),
    },
    MemberDef {
        path: "createdDateTime",
        kind: Kind::Time,
        get: |r| time(r.created_date_time),
    },
    MemberDef {
        path: "updatedDateTime",
        kind: Kind::Time,
        get: |r| time(r.updated_date_time),
    },
    MemberDef {
        path: "expirationDateTime",
        kind: Kind::Time,
        get: |r| time(r.expiration_date_time),
    },
    MemberDef {
        path: "acceptedDateTime",
        kind: Kind::Time,
        get: |r| time(r.accepted_date_time),
    },
    MemberDef {
        path: "closedDateTime",
        kind: Kind::Time,
        get: |r| time(r.closed_date_time),
    },
    MemberDef {
        path: "favorite",
        kind: Kind::Bool,
        get: |r| r.favorite.map_or(Scalar::Null, Scalar::Bool),
    },
    MemberDef {
        path: "customerProfile/name",
        kind: Kind::Text,
        get: |r| text(r.customer_profile.as_ref().and_then(|c| c.name.as_deref())),
    },
    MemberDef {
        path: "customerProfile/size",
        kind: Kind::Set,
        get: |r| {
            text(
                r.customer_profile
                    .as_ref()
                    .and_then(|c| c.size.as_ref())
                    .map(|v| v.as_str()),
            )
        },
    },
    MemberDef {
        path: "customerProfile/address/country",
        kind: Kind::Text,
        get: |r| text(address(r).and_then(|a| a.country.as_deref())),
    },
    MemberDef {
        path: "customerProfile/address/city",
        kind: Kind::Text,
        get: |r| text(address(r).and_then(|a| a.city.as_deref())),
    },
    MemberDef {
        path: "customerProfile/address/state",
        kind: Kind::Text,
        get: |r| text(address(r).and_then(|a| a.state.as_deref())),
    },
    MemberDef {
        path: "customerProfile/address/postalCode",
        kind: Kind::Text,
        get: |r| text(address(r).and_then(|a| a.postal_code.as_deref())),
    },
    MemberDef {
        path: "details/dealValue",
        kind: Kind::Money,
        get: |r| {
            r.details
                .as_ref()
                .and_then(|d| d.deal_value.as_ref())
                .map_or(Scalar::Null, Scalar::Money)
        },
    },
    MemberDef {
        path: "details/currency",
        kind: Kind::Text,
        get: |r| text(r.details.as_ref().and_then(|d| d.currency.as_deref())),
    },
    MemberDef {
        path: "details/closingDateTime",
        kind: Kind::Time,
        get: |r| time(r.details.as_ref().and_then(|d| d.closing_date_time)),
    },
    MemberDef {
        path: "inviteContext/invitedBy/organizationId",
        kind: Kind::Text,
        get: |r| {
            text(
                r.invite_context
                    .as_ref()
                    .and_then(|i| i.invited_by.as_ref())
                    .and_then(|b| b.organization_id.as_deref()),
            )
        },
    },
];

fn address(referral: &Referral) -> Option<&referrals_client::types::Address> {
    referral
        .customer_profile
        .as_ref()
        .and_then(|c| c.address.as_ref())
}

type Collection = fn(&Referral) -> &[Member];

/// The collections that a lambda can range over, with the members of their items.
static COLLECTIONS: &[(&str, Collection)] = &[
    ("team", |r| r.team.as_deref().unwrap_or_default()),
    ("customerProfile/team", |r| {
        r.customer_profile
            .as_ref()
            .and_then(|c| c.team.as_deref())
            .unwrap_or_default()
    }),
];

type ItemGetter = fn(&Member) -> Scalar<'_>;

static ITEM_MEMBERS: &[(&str, ItemGetter)] = &[
    ("email", |m| text(m.email.as_deref())),
    ("firstName", |m| text(m.first_name.as_deref())),
    ("lastName", |m| text(m.last_name.as_deref())),
    ("phoneNumber", |m| text(m.phone_number.as_deref())),
];

fn member(path: &str) -> Option<&'static MemberDef> {
    MEMBERS.iter().find(|member| member.path == path)
}

fn member_list() -> String {
    MEMBERS
        .iter()
        .map(|member| member.path)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A filter checked against the members, ready to run on referrals.
pub enum Compiled {
    /// `member op value`.
    Compare {
        /// The member.
        member: &'static MemberDef,
        /// The operator, with the member on its left.
        op: CompareOp,
        /// The value.
        value: Value,
    },
    /// Both.
    And(Box<Compiled>, Box<Compiled>),
    /// Either.
    Or(Box<Compiled>, Box<Compiled>),
    /// Not.
    Not(Box<Compiled>),
    /// A lambda over a collection of people.
    Lambda {
        /// The collection.
        collection: Collection,
        /// `any` or `all`.
        kind: LambdaKind,
        /// The predicate on an item.
        predicate: Box<ItemCompiled>,
    },
}

/// A predicate on one item of a collection.
pub enum ItemCompiled {
    /// `t/member op value`.
    Compare(ItemGetter, CompareOp, Value),
    /// Both.
    And(Box<ItemCompiled>, Box<ItemCompiled>),
    /// Either.
    Or(Box<ItemCompiled>, Box<ItemCompiled>),
    /// Not.
    Not(Box<ItemCompiled>),
}

/// Checks a parsed filter against the members and their kinds.
pub fn compile(expr: &Expr) -> Result<Compiled, ApiError> {
    Ok(match expr {
        Expr::And(a, b) => Compiled::And(Box::new(compile(a)?), Box::new(compile(b)?)),
        Expr::Or(a, b) => Compiled::Or(Box::new(compile(a)?), Box::new(compile(b)?)),
        Expr::Not(a) => Compiled::Not(Box::new(compile(a)?)),
        Expr::Compare { left, op, right } => {
            let (path, op, literal) = sides(left, *op, right)?;
            let found = member(&path.path()).ok_or_else(|| unknown_member(path))?;
            op_check(found.kind, op, literal, path)?;
            let value = literal_value(found.kind, literal, path)?;
            Compiled::Compare {
                member: found,
                op,
                value,
            }
        }
        Expr::Lambda {
            collection,
            kind,
            variable,
            predicate,
        } => {
            let Some((_, getter)) = COLLECTIONS
                .iter()
                .find(|(path, _)| *path == collection.path())
            else {
                let names: Vec<&str> = COLLECTIONS.iter().map(|(path, _)| *path).collect();
                return Err(ApiError::bad_request(format!(
                    "at position {}: `{}` is not a collection that a lambda can range over ({})",
                    collection.position + 1,
                    collection.path(),
                    names.join(", ")
                ))
                .target("$filter"));
            };
            Compiled::Lambda {
                collection: *getter,
                kind: *kind,
                predicate: Box::new(compile_item(predicate, variable)?),
            }
        }
    })
}

fn compile_item(expr: &Expr, variable: &str) -> Result<ItemCompiled, ApiError> {
    Ok(match expr {
        Expr::And(a, b) => ItemCompiled::And(
            Box::new(compile_item(a, variable)?),
            Box::new(compile_item(b, variable)?),
        ),
        Expr::Or(a, b) => ItemCompiled::Or(
            Box::new(compile_item(a, variable)?),
            Box::new(compile_item(b, variable)?),
        ),
        Expr::Not(a) => ItemCompiled::Not(Box::new(compile_item(a, variable)?)),
        Expr::Compare { left, op, right } => {
            let (path, op, literal) = sides(left, *op, right)?;
            let getter = match path.segments.as_slice() {
                [var, name] if var == variable => ITEM_MEMBERS
                    .iter()
                    .find(|(item, _)| item == name)
                    .map(|(_, get)| *get),
                _ => None,
            };
            let getter = getter.ok_or_else(|| {
                let names: Vec<String> = ITEM_MEMBERS
                    .iter()
                    .map(|(name, _)| format!("{variable}/{name}"))
                    .collect();
                ApiError::bad_request(format!(
                    "at position {}: `{}` is not a member of the lambda's items ({})",
                    path.position + 1,
                    path.path(),
                    names.join(", ")
                ))
                .target("$filter")
            })?;
            op_check(Kind::Text, op, literal, path)?;
            let value = literal_value(Kind::Text, literal, path)?;
            ItemCompiled::Compare(getter, op, value)
        }
        Expr::Lambda { collection, .. } => {
            return Err(ApiError::bad_request(format!(
                "at position {}: lambdas cannot be nested",
                collection.position + 1
            ))
            .target("$filter"));
        }
    })
}

/// The member, the operator (turned so that the member is on its left) and the literal.
fn sides<'a>(
    left: &'a Operand,
    op: CompareOp,
    right: &'a Operand,
) -> Result<(&'a referrals_odata::Member, CompareOp, &'a Literal), ApiError> {
    match (left, right) {
        (Operand::Member(member), Operand::Literal(literal)) => Ok((member, op, literal)),
        (Operand::Literal(literal), Operand::Member(member)) => {
            let turned = match op {
                CompareOp::Gt => CompareOp::Lt,
                CompareOp::Ge => CompareOp::Le,
                CompareOp::Lt => CompareOp::Gt,
                CompareOp::Le => CompareOp::Ge,
                other => other,
            };
            Ok((member, turned, literal))
        }
        (Operand::Member(member), Operand::Member(_)) => Err(ApiError::bad_request(format!(
            "at position {}: a member can be compared with a literal only",
            member.position + 1
        ))
        .target("$filter")),
        (Operand::Literal(_), Operand::Literal(_)) => {
            Err(ApiError::bad_request("a comparison needs a member on one side").target("$filter"))
        }
    }
}

fn unknown_member(path: &referrals_odata::Member) -> ApiError {
    ApiError::bad_request(format!(
        "at position {}: `{}` is not a member that can be filtered on; the members are: {}",
        path.position + 1,
        path.path(),
        member_list()
    ))
    .target("$filter")
}

/// Refuses orderings on kinds that have none (booleans and `null` take `eq` and `ne` only).
fn op_check(
    kind: Kind,
    op: CompareOp,
    literal: &Literal,
    path: &referrals_odata::Member,
) -> Result<(), ApiError> {
    let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
    if ordering && (kind == Kind::Bool || *literal == Literal::Null) {
        return Err(ApiError::bad_request(format!(
            "at position {}: `{}` compares with {} using eq or ne only",
            path.position + 1,
            path.path(),
            if *literal == Literal::Null {
                "null"
            } else {
                "a boolean"
            }
        ))
        .target("$filter"));
    }
    Ok(())
}

fn literal_value(
    kind: Kind,
    literal: &Literal,
    path: &referrals_odata::Member,
) -> Result<Value, ApiError> {
    let wrong = |expected: &str| {
        ApiError::bad_request(format!(
            "at position {}: `{}` holds {expected}, and `{literal}` is not one",
            path.position + 1,
            path.path()
        ))
        .target("$filter")
    };
    Ok(match (kind, literal) {
        (_, Literal::Null) => Value::Null,
        (Kind::Text | Kind::Set, Literal::String(text) | Literal::Guid(text)) => {
            Value::Text(text.clone())
        }
        (Kind::Text | Kind::Set, _) => return Err(wrong("a string (in single quotes)")),
        (Kind::Time, Literal::DateTime(text)) => Value::Time(
            DateTime::parse_from_rfc3339(text)
                .map_err(|_| wrong("a date-time"))?
                .with_timezone(&Utc),
        ),
        (Kind::Time, Literal::Date(text)) => {
            let date =
                NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| wrong("a date-time"))?;
            Value::Time(
                date.and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc(),
            )
        }
        (Kind::Time, _) => {
            return Err(wrong(
                "a date-time (written bare, such as 2020-10-30T00:00:00Z)",
            ));
        }
        (Kind::Money, Literal::Number(text)) => {
            Value::Money(text.parse().map_err(|_| wrong("a number"))?)
        }
        (Kind::Money, _) => return Err(wrong("a number")),
        (Kind::Bool, Literal::Boolean(value)) => Value::Bool(*value),
        (Kind::Bool, _) => return Err(wrong("true or false")),
    })
}

fn holds(op: CompareOp, found: &Scalar<'_>, value: &Value) -> bool {
    let wanted = value.scalar();
    match (found, &wanted) {
        (Scalar::Null, Scalar::Null) => op == CompareOp::Eq,
        (Scalar::Null, _) | (_, Scalar::Null) => op == CompareOp::Ne,
        _ => {
            let ordering = found.compare(&wanted);
            match op {
                CompareOp::Eq => ordering == Ordering::Equal,
                CompareOp::Ne => ordering != Ordering::Equal,
                CompareOp::Gt => ordering == Ordering::Greater,
                CompareOp::Ge => ordering != Ordering::Less,
                CompareOp::Lt => ordering == Ordering::Less,
                CompareOp::Le => ordering != Ordering::Greater,
            }
        }
    }
}

impl Compiled {
    /// Whether `referral` passes the filter.
    pub fn matches(&self, referral: &Referral) -> bool {
        match self {
            Compiled::Compare { member, op, value } => holds(*op, &member.get(referral), value),
            Compiled::And(a, b) => a.matches(referral) && b.matches(referral),
            Compiled::Or(a, b) => a.matches(referral) || b.matches(referral),
            Compiled::Not(a) => !a.matches(referral),
            Compiled::Lambda {
                collection,
                kind,
                predicate,
            } => {
                let items = collection(referral);
                match kind {
                    LambdaKind::Any => items.iter().any(|item| predicate.matches(item)),
                    LambdaKind::All => items.iter().all(|item| predicate.matches(item)),
                }
            }
        }
    }
}

impl ItemCompiled {
    fn matches(&self, item: &Member) -> bool {
        match self {
            ItemCompiled::Compare(get, op, value) => holds(*op, &get(item), value),
            ItemCompiled::And(a, b) => a.matches(item) && b.matches(item),
            ItemCompiled::Or(a, b) => a.matches(item) || b.matches(item),
            ItemCompiled::Not(a) => !a.matches(item),
        }
    }
}

/// An `$orderby` checked against the members; `id` ends every order, so it is total.
pub struct Order {
    /// The keys, each with `true` for descending.
    pub keys: Vec<(&'static MemberDef, bool)>,
}

impl Order {
    /// The order of `items` (the service's default when empty: creation time, then id).
    pub fn new(items: &[OrderItem]) -> Result<Self, ApiError> {
        const MAX_KEYS: usize = 16;
        if items.len() > MAX_KEYS {
            return Err(
                ApiError::bad_request(format!("$orderby takes at most {MAX_KEYS} keys"))
                    .target("$orderby"),
            );
        }
        let mut keys = Vec::new();
        for item in items {
            let found = member(&item.member.path()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "at position {}: `{}` is not a member that can be ordered by; the members are: {}",
                    item.member.position + 1,
                    item.member.path(),
                    member_list()
                ))
                .target("$orderby")
            })?;
            keys.push((found, item.descending));
        }
        if keys.is_empty() {
            keys.push((member("createdDateTime").expect("listed"), false));
        }
        // The tie-breaker runs the way of the last key, so that `createdDateTime desc` is
        // exactly the creation index walked backwards.
        let descending = keys.last().is_some_and(|(_, descending)| *descending);
        keys.push((member("id").expect("listed"), descending));
        Ok(Self { keys })
    }

    /// `Some(descending)` when this is the order of the creation index: `createdDateTime`
    /// alone (then `id`).
    pub fn by_created(&self) -> Option<bool> {
        match self.keys.as_slice() {
            [(first, descending), (last, _)]
                if first.path == "createdDateTime" && last.path == "id" =>
            {
                Some(*descending)
            }
            _ => None,
        }
    }

    /// The values of the keys for `referral`.
    pub fn key<'a>(&self, referral: &'a Referral) -> Vec<Scalar<'a>> {
        self.keys
            .iter()
            .map(|(member, _)| member.get(referral))
            .collect()
    }

    /// Orders two keys.
    pub fn compare(&self, a: &[Scalar<'_>], b: &[Scalar<'_>]) -> Ordering {
        for ((left, right), (_, descending)) in a.iter().zip(b).zip(&self.keys) {
            let ordering = left.compare(right);
            if ordering != Ordering::Equal {
                return if *descending {
                    ordering.reverse()
                } else {
                    ordering
                };
            }
        }
        Ordering::Equal
    }
}
