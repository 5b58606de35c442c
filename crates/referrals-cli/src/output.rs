//! Writing referrals: as a table for a person, or as JSON, NDJSON or CSV for a program, one at a
//! time, so that memory stays flat however many there are.

use std::io::{self, IsTerminal, Write};

use referrals_client::types::Referral;

use crate::table::Table;
use referrals_client::flat::Columns;

/// How referrals are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns of the main members, for reading in a terminal.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A header of the document's leaves (`customerProfile/address/country`...) and a row per
    /// referral; arrays as JSON text.
    Csv,
}

impl Format {
    /// `Table` when standard output is a terminal, `Ndjson` when it goes to a program or a file.
    pub fn for_stdout() -> Self {
        if io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Ndjson
        }
    }
}

/// Writes referrals to `out` in one format.
pub struct Writer<W: Write> {
    out: W,
    format: Format,
    columns: Columns,
    /// The table, and where each of its cells is among `columns`.
    table: Table,
    cells: Vec<Option<usize>>,
    written: u64,
    /// A reused buffer for one referral's JSON.
    json: Vec<u8>,
    /// CSV cells as the service sent them, even those a spreadsheet would run as formulas.
    raw_csv: bool,
}

impl<W: Write> Writer<W> {
    /// A writer of `format`; `columns` are those of CSV and tables.
    pub fn new(out: W, format: Format, columns: Columns) -> Self {
        let cells = crate::table::paths()
            .map(|path| columns.names().iter().position(|name| *name == path))
            .collect();
        let table = if format == Format::Table {
            Table::for_stdout()
        } else {
            Table::new(None)
        };
        Self {
            out,
            format,
            columns,
            table,
            cells,
            written: 0,
            json: Vec::with_capacity(4096),
            raw_csv: false,
        }
    }

    /// Writes CSV cells as the service sent them: a text that starts with `=`, `+`, `-`, `@`
    /// stays so, and a spreadsheet that opens the file runs it as a formula. For a pipeline
    /// that reads the file as data; the default writes such a text with a leading `'`.
    pub fn raw_csv(mut self, raw: bool) -> Self {
        self.raw_csv = raw;
        self
    }

    /// Writes what comes before the first referral (a CSV header, a table header, `[`).
    pub fn start(&mut self) -> io::Result<()> {
        match self.format {
            Format::Json => self.out.write_all(b"["),
            Format::Ndjson => Ok(()),
            Format::Csv => {
                let mut row = csv_row();
                if self.raw_csv {
                    row.write_record(self.columns.names())?;
                } else {
                    row.write_record(self.columns.spreadsheet_header())?;
                }
                self.out.write_all(&row_bytes(row)?)
            }
            Format::Table => self.out.write_all(self.table.header().as_bytes()),
        }
    }

    /// Writes one referral.
    pub fn write(&mut self, referral: &Referral) -> io::Result<()> {
        let mut json = std::mem::take(&mut self.json);
        json.clear();
        serde_json::to_writer(&mut json, referral)?;
        let written = referral_json(&json).and_then(|text| self.write_json(text));
        self.json = json;
        written
    }

    /// Writes one referral given as its JSON text.
    pub fn write_json(&mut self, json: &str) -> io::Result<()> {
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.written == 0 { b"\n" } else { b",\n" })?;
                self.out.write_all(json.as_bytes())?;
            }
            Format::Ndjson => {
                self.out.write_all(json.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
            Format::Csv => {
                let cells = if self.raw_csv {
                    self.columns.cells(json)
                } else {
                    self.columns.spreadsheet_cells(json)
                }
                .map_err(io::Error::other)?;
                let mut row = csv_row();
                row.write_record(&cells)?;
                self.out.write_all(&row_bytes(row)?)?;
            }
            Format::Table => {
                let cells = self.columns.cells(json).map_err(io::Error::other)?;
                let cells: Vec<String> = self
                    .cells
                    .iter()
                    .map(|at| at.map(|at| cells[at].clone()).unwrap_or_default())
                    .collect();
                self.out.write_all(self.table.line(&cells).as_bytes())?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Writes what comes after the last referral and flushes; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if self.format == Format::Json {
            self.out
                .write_all(if self.written == 0 { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// The output, to flush or sync it between referrals.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// A rate of a progress bar as a whole number a second (`1604/s`).
pub fn whole_rate(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = write!(out, "{:.0}/s", state.per_sec());
}

/// The JSON text of a referral as serde_json wrote it (always UTF-8).
fn referral_json(bytes: &[u8]) -> io::Result<&str> {
    std::str::from_utf8(bytes).map_err(io::Error::other)
}

fn csv_row() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(2048))
}

fn row_bytes(row: csv::Writer<Vec<u8>>) -> io::Result<Vec<u8>> {
    row.into_inner()
        .map_err(|error| io::Error::other(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(format: Format, referrals: &[&str]) -> String {
        let mut writer = Writer::new(
            Vec::new(),
            format,
            Columns::new(Some(&["id", "details", "name"])),
        );
        writer.start().unwrap();
        for referral in referrals {
            writer.write_json(referral).unwrap();
        }
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    #[test]
    fn json_is_one_array() {
        assert_eq!(written(Format::Json, &[]), "[]\n");
        let text = written(Format::Json, &[r#"{"id":"a"}"#, r#"{"id":"b"}"#]);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn csv_quotes_and_keeps_digits() {
        let text = written(
            Format::Csv,
            &[r#"{"id":"a","name":"x, \"y\"\nz","details":{"dealValue":0.10000000000000000001}}"#],
        );
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let row = reader.records().next().unwrap().unwrap();
        let get = |name: &str| {
            row.get(headers.iter().position(|h| h == name).unwrap())
                .unwrap()
                .to_owned()
        };
        assert_eq!(get("name"), "x, \"y\"\nz");
        assert_eq!(get("details/dealValue"), "0.10000000000000000001");
    }

    #[test]
    fn tables_cut_long_cells_and_keep_one_line() {
        let text = written(
            Format::Table,
            &[
                r#"{"id":"a","name":"line\nbreak and a name far longer than the forty characters of its column"}"#,
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].contains("line break"), "{text}");
        assert!(lines[1].ends_with('…'), "{text}");
    }
}
