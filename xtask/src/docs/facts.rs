//! The vendor extensions of the document as Markdown tables, put in a copy of the document
//! that the reference is built from (the document itself is not changed): Redoc shows
//! `info.description` as the reference's first sections, each `##` heading in its menu.

use serde_json::Value;

/// Adds a section "The API's facts as tables" to `document`'s `info.description`: a table for
/// each extension of each schema (and the roles of each security scheme).
pub fn add_tables(document: &mut Value) {
    let mut markdown = String::from(
        "\n\n# The API's facts as tables\n\nThe vendor extensions of this document, which the \
         generated code reads, shown as tables.\n",
    );
    if let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            markdown.push_str(&schema_tables(name, schema));
        }
    }
    if let Some(schemes) = document
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
    {
        for (name, scheme) in schemes {
            if let Some(roles) = strings(scheme.get("x-roles")) {
                markdown.push_str(&format!("\n## Roles of {name} (`x-roles`)\n\n"));
                markdown.push_str(&table(&["Role"], roles.into_iter().map(|role| vec![role])));
            }
        }
    }
    if let Some(info) = document.get_mut("info").and_then(Value::as_object_mut) {
        let description = info
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        info.insert("description".into(), Value::from(description + &markdown));
    }
}

/// The tables of one schema's extensions.
fn schema_tables(name: &str, schema: &Value) -> String {
    let mut out = String::new();
    let mut section = |title: &str, extension: &str, body: String| {
        out.push_str(&format!("\n## {title} of {name} (`{extension}`)\n\n{body}"));
    };
    query_tables(schema, &mut section);
    rule_tables(schema, &mut section);
    out
}

/// What `$filter`, `$orderby` and JSON Patch may name.
fn query_tables(schema: &Value, section: &mut impl FnMut(&str, &str, String)) {
    if let Some(members) = schema.get("x-filterable").and_then(Value::as_object) {
        let rows = members.iter().map(|(path, rule)| {
            vec![
                format!("`{path}`"),
                strings(rule.get("operators"))
                    .unwrap_or_default()
                    .join(", "),
                rule.get("lambda")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            ]
        });
        section(
            "Filterable members",
            "x-filterable",
            table(&["Member", "Operators", "Inside an array (lambda)"], rows),
        );
    }
    if let Some(keys) = strings(schema.get("x-sortable")) {
        let rows = keys
            .into_iter()
            .map(|key| vec![format!("`{key}`"), "asc, desc".to_owned()]);
        section(
            "Sortable members",
            "x-sortable",
            table(&["Member", "Orders"], rows),
        );
    }
    if let Some(paths) = schema.get("x-patchable").and_then(Value::as_object) {
        let rows = paths.iter().map(|(pointer, ops)| {
            vec![
                format!("`{pointer}`"),
                strings(Some(ops)).unwrap_or_default().join(", "),
            ]
        });
        section(
            "Patchable paths",
            "x-patchable",
            table(&["JSON Pointer", "Operations"], rows),
        );
    }
}

/// The status rules, the accessors and the value that names Microsoft.
fn rule_tables(schema: &Value, section: &mut impl FnMut(&str, &str, String)) {
    if let Some(rules) = schema.get("x-status-rules").and_then(Value::as_object) {
        let rows = rules.iter().map(|(status, rule)| {
            vec![
                format!("`{status}`"),
                strings(rule.get("to")).unwrap_or_default().join(", "),
                strings(rule.get("substatus"))
                    .unwrap_or_default()
                    .join(", "),
            ]
        });
        let header = [
            "Status",
            "May move to",
            "Substatuses (the first is given by default)",
        ];
        section("Status rules", "x-status-rules", table(&header, rows));
    }
    if let Some(accessors) = schema.get("x-accessors").and_then(Value::as_object) {
        let rows = accessors.iter().map(|(method, path)| {
            vec![
                format!("`{method}`"),
                format!("`{}`", path.as_str().unwrap_or_default()),
            ]
        });
        section(
            "Accessors",
            "x-accessors",
            table(&["Method", "Member"], rows),
        );
    }
    if let Some(members) = schema.get("x-microsoft").and_then(Value::as_object) {
        let rows = members
            .iter()
            .map(|(member, value)| vec![format!("`{member}`"), value.to_string()]);
        section(
            "The value that names Microsoft",
            "x-microsoft",
            table(&["Member", "Value"], rows),
        );
    }
}

/// A Markdown table; a `|` in a cell is escaped.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|cell| cell.replace('|', "\\|"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(header.iter().map(|cell| (*cell).to_owned()).collect());
    out.push_str(&line(header.iter().map(|_| "---".to_owned()).collect()));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_of_the_document_becomes_a_table() {
        let text = std::fs::read_to_string(crate::root().join("openapi/referrals.yaml")).unwrap();
        let mut document: Value = serde_norway::from_str(&text).unwrap();
        add_tables(&mut document);
        let description = document
            .pointer("/info/description")
            .unwrap()
            .as_str()
            .unwrap();
        for heading in [
            "Filterable members of Referral",
            "Sortable members of Referral",
            "Patchable paths of Referral",
            "Status rules of Referral",
            "Roles of AzureAd",
        ] {
            assert!(description.contains(heading), "{heading}");
        }
        // Each member of the extensions is a row.
        let filterable = document
            .pointer("/components/schemas/Referral/x-filterable")
            .unwrap();
        for path in filterable.as_object().unwrap().keys() {
            assert!(description.contains(&format!("| `{path}` |")), "{path}");
        }
    }
}
