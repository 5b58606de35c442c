//! A CSV file of some of the mirror's referrals, for people and spreadsheets: written whole
//! or not at all.

use std::path::{Path, PathBuf};

use referrals_client::flat::Columns;
use referrals_client::types::Referral;

use crate::{Error, Mirror};

impl Mirror {
    /// Writes the referrals that `keep` keeps to the CSV file `path`: a header of `columns`
    /// (leaves of the document's referral, such as `customerProfile/name`) and a row per
    /// referral, with money as the digits the service sent, and a text that a spreadsheet would
    /// run as a formula written as text (`flat::spreadsheet_text`). The rows go to `PATH.partial`,
    /// which is renamed to `path` when complete: `path` is never half written. Returns how
    /// many rows were written.
    ///
    /// ```no_run
    /// # fn run(mirror: referrals_mirror::Mirror) -> Result<(), Box<dyn std::error::Error>> {
    /// use referrals_client::flat::Columns;
    /// use referrals_client::types::ReferralStatus;
    ///
    /// let columns = Columns::leaves(&["id", "customerProfile/name", "details/dealValue"])?;
    /// mirror.write_csv("active.csv", &columns, |referral| {
    ///     referral.status == Some(ReferralStatus::Active)
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_csv(
        &self,
        path: impl AsRef<Path>,
        columns: &Columns,
        keep: impl Fn(&Referral) -> bool,
    ) -> Result<u64, Error> {
        let path = path.as_ref();
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let io = |what: &str, source: std::io::Error| Error::Io {
            path: path.to_owned(),
            what: what.to_owned(),
            error: source,
        };
        let file = crate::private::create(&partial)
            .map_err(|error| io("create the partial file", error))?;
        let mut writer = csv::Writer::from_writer(file);
        writer
            .write_record(columns.spreadsheet_header())
            .map_err(|error| io("write", error.into()))?;
        let mut rows = 0u64;
        for referral in self.referrals()?.iter().filter(|referral| keep(referral)) {
            let json = serde_json::to_string(referral).map_err(|source| Error::Row {
                path: self.path.clone(),
                id: referral.id.clone().unwrap_or_default(),
                error: source,
            })?;
            let cells = columns
                .spreadsheet_cells(&json)
                .map_err(|error| io("flatten a referral", error.into()))?;
            writer
                .write_record(&cells)
                .map_err(|error| io("write", error.into()))?;
            rows += 1;
        }
        let file = writer
            .into_inner()
            .map_err(|error| io("write", error.into_error()))?;
        file.sync_all().map_err(|error| io("write", error))?;
        std::fs::rename(&partial, path).map_err(|error| io("rename the partial file", error))?;
        Ok(rows)
    }
}
