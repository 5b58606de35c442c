//! The forms that a job saves and reads back in a later run ([`crate::Continuation`],
//! [`crate::sync::SyncState`]): JSON with a `version`. A form of another version, or text that
//! is not one of ours, is refused with a sentence that says which, rather than misread.

use serde::de::DeserializeOwned;

/// The member that holds the form's version.
pub(crate) const VERSION: &str = "version";

/// Reads `value` as the form `T` of version `expected`; `what` names the form in messages
/// ("a continuation").
pub(crate) fn read<T: DeserializeOwned>(
    value: serde_json::Value,
    expected: u32,
    what: &str,
) -> Result<T, String> {
    match value.get(VERSION).and_then(serde_json::Value::as_u64) {
        Some(version) if version == u64::from(expected) => {}
        Some(version) => {
            return Err(format!(
                "it was written as version {version}, and this client reads version {expected}"
            ));
        }
        None => {
            return Err(format!(
                "it is not {what} of referrals_client (it has no `{VERSION}`)"
            ));
        }
    }
    serde_json::from_value(value).map_err(|error| format!("it is damaged: {error}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::read;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        #[allow(dead_code)]
        version: u32,
        n: u32,
    }

    #[test]
    fn only_its_own_version_and_shape_are_read() {
        let form: Form = read(json!({"version": 3, "n": 7}), 3, "a form").unwrap();
        assert_eq!(form.n, 7);
        let newer = read::<Form>(json!({"version": 4, "n": 7}), 3, "a form").unwrap_err();
        assert!(
            newer.contains("version 4") && newer.contains("reads version 3"),
            "{newer}"
        );
        let foreign = read::<Form>(json!({"n": 7}), 3, "a form").unwrap_err();
        assert!(
            foreign.contains("not a form of referrals_client"),
            "{foreign}"
        );
        let damaged = read::<Form>(json!({"version": 3, "m": 7}), 3, "a form").unwrap_err();
        assert!(damaged.starts_with("it is damaged"), "{damaged}");
    }
}
