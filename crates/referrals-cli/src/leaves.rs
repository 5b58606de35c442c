//! `--columns` of `list` and `export`: leaves of the referral, named as the document names its
//! members (`customerProfile/name`, `details/dealValue`), for CSV and tables of those columns
//! only, in that order.

use referrals_client::facts::COLUMNS;
use referrals_client::flat::Columns;
use referrals_client::query::Select;

/// The leaves asked for, each one of [`COLUMNS`], in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaves(Vec<&'static str>);

impl std::str::FromStr for Leaves {
    type Err = String;

    /// `a,b/c`: each a leaf of the document's referral, or the error lists them all.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut leaves = Vec::new();
        for name in text.split(',').map(str::trim) {
            let Some(leaf) = COLUMNS.iter().copied().find(|leaf| *leaf == name) else {
                return Err(format!(
                    "`{name}` is not a column of the referral; its columns (the document's \
                     leaves) are: {}",
                    COLUMNS.join(", ")
                ));
            };
            if leaves.contains(&leaf) {
                return Err(format!("`{name}` is named twice"));
            }
            leaves.push(leaf);
        }
        Ok(Self(leaves))
    }
}

impl Leaves {
    /// The columns of the output.
    pub fn columns(&self) -> Columns {
        // Every leaf is one of COLUMNS, which `Columns::leaves` takes.
        Columns::leaves(&self.0).unwrap_or_else(|_| Columns::new(None))
    }

    /// `$select` of the members that hold the leaves, so that the service sends no other.
    pub fn select(&self) -> Option<Select> {
        let mut members: Vec<&str> = Vec::new();
        for leaf in &self.0 {
            let member = leaf.split('/').next().unwrap_or(leaf);
            // An annotation (`@odata.context`) comes with every answer; it is not selected.
            if !member.starts_with('@') && !members.contains(&member) {
                members.push(member);
            }
        }
        if members.is_empty() {
            return None;
        }
        Select::members(members).ok()
    }

    /// The text to record in an export's checkpoint: the same columns resume the same file.
    pub fn text(&self) -> String {
        self.0.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_the_documents_and_select_their_members() {
        let leaves: Leaves = "id, customerProfile/name,details/dealValue,details/currency"
            .parse()
            .unwrap();
        assert_eq!(
            leaves.columns().names(),
            [
                "id",
                "customerProfile/name",
                "details/dealValue",
                "details/currency"
            ]
        );
        assert_eq!(
            leaves.select().unwrap().to_string(),
            "id,customerProfile,details"
        );
        let error = "id,customerProfile".parse::<Leaves>().unwrap_err();
        assert!(
            error.contains("`customerProfile` is not a column")
                && error.contains("details/dealValue"),
            "{error}"
        );
        assert!("id,id".parse::<Leaves>().unwrap_err().contains("twice"));
        let context: Leaves = "@odata.context,id".parse().unwrap();
        assert_eq!(context.select().unwrap().to_string(), "id");
        assert_eq!("@odata.context".parse::<Leaves>().unwrap().select(), None);
    }
}
