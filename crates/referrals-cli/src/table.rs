//! The table for a person: the members that tell referrals apart at a glance, one line each, in
//! columns measured in display width (a Japanese name takes two columns a character) and fitted
//! to the terminal: the long texts are cut with `…`, and on a narrow terminal the columns that
//! matter least are left out.

use std::io::IsTerminal;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// One column: its title, the document's leaf it shows, and its width when there is room.
struct Column {
    title: &'static str,
    path: &'static str,
    width: usize,
}

/// The columns, in order. CUSTOMER and NAME take what room is left; the others keep their width.
const COLUMNS: &[Column] = &[
    column("ID", "id", 36),
    column("STATUS", "status", 8),
    column("SUBSTATUS", "substatus", 11),
    column("TYPE", "type", 11),
    column("DIRECTION", "direction", 9),
    column("UPDATED", "updatedDateTime", 16),
    column("COUNTRY", "customerProfile/address/country", 7),
    column(CUSTOMER, "customerProfile/name", 24),
    column(NAME, "name", 40),
];

const fn column(title: &'static str, path: &'static str, width: usize) -> Column {
    Column { title, path, width }
}

const CUSTOMER: &str = "CUSTOMER";
const NAME: &str = "NAME";
/// The narrowest that CUSTOMER and NAME become before a column is left out.
const FLEX_MIN: usize = 12;
/// The columns left out on a narrow terminal, first to last.
const DROPPED_FIRST: [&str; 5] = ["DIRECTION", "TYPE", "SUBSTATUS", "UPDATED", "COUNTRY"];
/// The space between two columns.
const GAP: usize = 2;

/// The paths of every column, in order: the cells that a line takes.
pub fn paths() -> impl Iterator<Item = &'static str> {
    COLUMNS.iter().map(|column| column.path)
}

/// The columns shown and their widths.
#[derive(Debug, Clone)]
pub struct Table {
    shown: Vec<(usize, usize)>,
}

impl Table {
    /// The table for `width` columns of display (`None`: as wide as it likes).
    pub fn new(width: Option<usize>) -> Self {
        let mut shown: Vec<usize> = (0..COLUMNS.len()).collect();
        let Some(width) = width else {
            let shown = shown.iter().map(|&at| (at, COLUMNS[at].width)).collect();
            return Self { shown };
        };
        let flex = |at: &usize| matches!(COLUMNS[*at].title, CUSTOMER | NAME);
        let fixed = |shown: &[usize]| -> usize {
            let widths: usize = shown
                .iter()
                .filter(|at| !flex(at))
                .map(|&at| COLUMNS[at].width)
                .sum();
            widths + GAP * shown.len().saturating_sub(1)
        };
        for title in DROPPED_FIRST {
            if fixed(&shown) + 2 * FLEX_MIN <= width {
                break;
            }
            shown.retain(|&at| COLUMNS[at].title != title);
        }
        // What is left goes to CUSTOMER and NAME, in the ratio of their widths.
        let room = width.saturating_sub(fixed(&shown));
        let customer = (room * 24 / 64).clamp(FLEX_MIN, 24);
        let name = room.saturating_sub(customer).clamp(FLEX_MIN, 40);
        let shown = shown
            .into_iter()
            .map(|at| match COLUMNS[at].title {
                CUSTOMER => (at, customer),
                NAME => (at, name),
                _ => (at, COLUMNS[at].width),
            })
            .collect();
        Self { shown }
    }

    /// The table for standard output: as wide as the terminal, or `COLUMNS` when it is not
    /// one, or as wide as it likes.
    pub fn for_stdout() -> Self {
        let terminal = std::io::stdout()
            .is_terminal()
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_, columns)| usize::from(columns));
        let variable = std::env::var("COLUMNS")
            .ok()
            .and_then(|text| text.trim().parse().ok());
        Self::new(terminal.or(variable))
    }

    /// The header line.
    pub fn header(&self) -> String {
        let titles: Vec<String> = COLUMNS
            .iter()
            .map(|column| column.title.to_owned())
            .collect();
        self.line(&titles)
    }

    /// The line of `cells`, one per column of [`paths`], with its line break.
    pub fn line(&self, cells: &[String]) -> String {
        let mut line = String::new();
        for (index, &(at, width)) in self.shown.iter().enumerate() {
            let cell = cells.get(at).map_or("", String::as_str);
            let shown = fit(&clean(cell), width);
            line.push_str(&shown);
            if index + 1 < self.shown.len() {
                let used = shown.width();
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(used) + GAP));
            }
        }
        line.push('\n');
        line
    }
}

/// One line per referral: control characters (a newline in a name) become spaces; date-times
/// show to the minute, in UTC.
fn clean(cell: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(cell) {
        Ok(time) => time
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => cell
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    }
}

/// `text` cut to `width` columns of display, with `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let wide = c.width().unwrap_or(0);
        if used + wide + 1 > width {
            break;
        }
        cut.push(c);
        used += wide;
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(table: &Table, name: &str, customer: &str) -> String {
        let mut cells: Vec<String> = paths().map(|_| "x".to_owned()).collect();
        let at = |path: &str| paths().position(|known| known == path).unwrap();
        cells[at("name")] = name.to_owned();
        cells[at("customerProfile/name")] = customer.to_owned();
        table.line(&cells)
    }

    #[test]
    fn the_table_shows_leaves_of_the_document() {
        for path in paths() {
            assert!(
                referrals_client::facts::COLUMNS.contains(&path),
                "{path} is not a leaf of the document's Referral"
            );
        }
    }

    #[test]
    fn lines_fit_the_terminal_in_display_width() {
        let long = "a name far longer than any column of the table would ever hold";
        for width in [80, 100, 120, 160, 200] {
            let table = Table::new(Some(width));
            for (name, customer) in [
                (long, "東京商事東京商事東京商事東京商事"),
                ("short", "Contoso"),
            ] {
                let text = line(&table, name, customer);
                let shown = text.trim_end_matches('\n').width();
                assert!(shown <= width, "{shown} > {width}: {text}");
            }
            assert!(table.header().trim_end().width() <= width);
        }
    }

    #[test]
    fn wide_characters_keep_the_columns_in_line() {
        let table = Table::new(Some(160));
        let latin = line(&table, "Deal", "Tokyo Trading");
        let japanese = line(&table, "Deal", "東京商事");
        let column = |text: &str| {
            let end = text.find("Deal").unwrap();
            text[..end].width()
        };
        assert_eq!(column(&latin), column(&japanese));
    }

    #[test]
    fn a_cut_cell_ends_with_an_ellipsis_and_a_wide_character_is_never_split() {
        assert_eq!(fit("東京商事", 5), "東京…");
        assert_eq!(fit("Contoso", 7), "Contoso");
        assert_eq!(fit("Contoso Ltd", 7), "Contos…");
    }
}
