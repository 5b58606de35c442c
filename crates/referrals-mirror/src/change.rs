//! What the change log records of each write that changed a row: the referral, its new version,
//! whether it is new to the mirror, and the leaves that changed with their values before and
//! after, so that a consumer tells "status New → Active" from "dealValue changed" without a
//! copy of its own.

use chrono::{DateTime, Utc};
use referrals_client::flat::{Columns, json_changes};
use referrals_client::types::Referral;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a change did to the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChangeKind {
    /// The referral was new to the mirror.
    New,
    /// The mirror had an older version of the referral; [`Change::members`] says what changed.
    Changed,
    /// The referral as the mirror held it when a consumer started from a snapshot
    /// ([`crate::Start::Snapshot`]): delivered to that consumer only.
    Snapshot,
}

impl ChangeKind {
    /// The kind as the log stores it: `new`, `changed`, `snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Changed => "changed",
            Self::Snapshot => "snapshot",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::New, Self::Changed, Self::Snapshot]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One leaf of the referral that a change changed (a path of the document's `COLUMNS`, such as
/// `status` or `details/dealValue`), with its JSON value before and after: `null` for a member
/// that was or is absent; money as the digits the service sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberChange {
    /// The leaf's path.
    pub member: String,
    /// Its JSON value before the change.
    pub previous: Box<RawValue>,
    /// Its JSON value after the change.
    pub value: Box<RawValue>,
}

impl PartialEq for MemberChange {
    fn eq(&self, other: &Self) -> bool {
        self.member == other.member
            && self.previous.get() == other.previous.get()
            && self.value.get() == other.value.get()
    }
}

impl MemberChange {
    /// The previous value when it was a string (`Some("New")` for a status that was New).
    pub fn previous_str(&self) -> Option<String> {
        serde_json::from_str(self.previous.get()).ok()
    }

    /// The new value when it is a string.
    pub fn value_str(&self) -> Option<String> {
        serde_json::from_str(self.value.get()).ok()
    }
}

/// One entry of the change log: a write that changed the mirror's row of a referral, or a row
/// of a consumer's snapshot. Its `seq` only grows, in the order of the writes' commits, and is
/// the key to deduplicate a change delivered again after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The change's place in the log.
    pub seq: i64,
    /// What it did.
    pub kind: ChangeKind,
    /// The referral's id.
    pub id: String,
    /// The referral's eTag after the change.
    pub e_tag: Option<String>,
    /// The referral's `updatedDateTime` after the change.
    pub updated_date_time: Option<DateTime<Utc>>,
    /// When the mirror wrote it.
    pub recorded: DateTime<Utc>,
    /// For [`ChangeKind::Changed`], the leaves that changed, in the document's order.
    #[serde(default)]
    pub members: Vec<MemberChange>,
    /// The referral as the mirror holds it when the change was read: this version or a later
    /// one (a later change of the same referral follows in the log). Not part of the change's
    /// JSON; [`Change::payload`] has both.
    #[serde(skip)]
    pub referral: Option<Referral>,
}

impl Change {
    /// The leaf `member` (`status`, `details/dealValue`) when this change changed it.
    ///
    /// ```
    /// # fn show(change: &referrals_mirror::Change) {
    /// if let Some(status) = change.member("status") {
    ///     println!("{:?} → {:?}", status.previous_str(), status.value_str());
    /// }
    /// # }
    /// ```
    pub fn member(&self, member: &str) -> Option<&MemberChange> {
        self.members.iter().find(|changed| changed.member == member)
    }

    /// The JSON that a command or an endpoint is given for this change:
    /// `{"change": {...}, "referral": {...}}` (the referral as [`Change::referral`]).
    pub fn payload(&self) -> Result<String, serde_json::Error> {
        #[derive(Serialize)]
        struct Payload<'a> {
            change: &'a Change,
            referral: &'a Option<Referral>,
        }
        serde_json::to_string(&Payload {
            change: self,
            referral: &self.referral,
        })
    }
}

/// The leaves that differ between the row's JSON and the new version's, as the log stores them
/// (a JSON array of [`MemberChange`]).
pub(crate) fn members(before: &str, after: &str) -> Result<String, serde_json::Error> {
    let changed = json_changes(&Columns::new(None), before, after)?;
    let members: Vec<MemberChange> = changed
        .into_iter()
        .map(|(member, previous, value)| {
            Ok(MemberChange {
                member: member.to_owned(),
                previous: RawValue::from_string(previous)?,
                value: RawValue::from_string(value)?,
            })
        })
        .collect::<Result<_, serde_json::Error>>()?;
    serde_json::to_string(&members)
}

/// The time the log records a change at: RFC 3339 in UTC with milliseconds, so that texts sort
/// as the instants do.
pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_name_the_leaves_with_both_values() {
        let before = r#"{"id":"a","status":"New","details":{"dealValue":12345678901234.56}}"#;
        let after = r#"{"id":"a","status":"Active","details":{"dealValue":12345678901234.57}}"#;
        let text = members(before, after).unwrap();
        let changed: Vec<MemberChange> = serde_json::from_str(&text).unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[0].member, "status");
        assert_eq!(changed[0].previous_str().as_deref(), Some("New"));
        assert_eq!(changed[0].value_str().as_deref(), Some("Active"));
        assert_eq!(changed[1].previous.get(), "12345678901234.56");
        assert_eq!(members(before, before).unwrap(), "[]");
    }

    #[test]
    fn the_payload_holds_the_change_and_the_referral() {
        let change = Change {
            seq: 7,
            kind: ChangeKind::Changed,
            id: "a".into(),
            e_tag: Some("2".into()),
            updated_date_time: None,
            recorded: Utc::now(),
            members: serde_json::from_str(
                r#"[{"member":"status","previous":"New","value":"Active"}]"#,
            )
            .unwrap(),
            referral: Some(serde_json::from_str(r#"{"id":"a","status":"Active"}"#).unwrap()),
        };
        let payload: serde_json::Value = serde_json::from_str(&change.payload().unwrap()).unwrap();
        assert_eq!(payload["change"]["seq"], 7);
        assert_eq!(payload["change"]["kind"], "changed");
        assert_eq!(payload["change"]["members"][0]["previous"], "New");
        assert_eq!(payload["referral"]["status"], "Active");
        assert!(payload["change"].get("referral").is_none());
    }
}
