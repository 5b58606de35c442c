//! What changed between two versions of a generated file, item by item: the types, their
//! members and variants, the functions, and the entries of the tables (each `static` or
//! `const` array, an entry named by its first string), as `added`, `removed` and `changed`.
//! The copies are parsed with syn, so a summary names a new enum or a new row of
//! `FILTERABLE`, not only the line where a diff starts.

mod entry;

use std::collections::BTreeMap;

use quote::ToTokens;

/// The items of a generated file: each name with its text, and the fields of table entries.
#[derive(Default)]
struct Items {
    text: BTreeMap<String, String>,
    entries: BTreeMap<String, Vec<(String, String)>>,
}

impl Items {
    fn insert(&mut self, name: String, text: String) {
        self.text.insert(name, text);
    }
}

/// The names of the items of `source` and their text; `None` when it does not parse.
fn items(source: &str) -> Option<Items> {
    let file = syn::parse_file(source).ok()?;
    let mut found = Items::default();
    collect(&file.items, "", &mut found);
    Some(found)
}

fn collect(items: &[syn::Item], path: &str, found: &mut Items) {
    for item in items {
        let text = item.to_token_stream().to_string();
        match item {
            syn::Item::Mod(module) => {
                let inner = format!("{path}{}::", module.ident);
                if let Some((_, content)) = &module.content {
                    collect(content, &inner, found);
                }
            }
            syn::Item::Struct(item) => {
                let name = format!("struct {path}{}", item.ident);
                for field in item.fields.iter().filter_map(|field| field.ident.as_ref()) {
                    let member = item.fields.iter().find(|f| f.ident.as_ref() == Some(field));
                    let member = member.map(|f| f.to_token_stream().to_string());
                    found.insert(format!("{name}.{field}"), member.unwrap_or_default());
                }
                found.insert(name, text);
            }
            syn::Item::Enum(item) => {
                let name = format!("enum {path}{}", item.ident);
                for variant in &item.variants {
                    let key = format!("{name}::{}", variant.ident);
                    found.insert(key, variant.to_token_stream().to_string());
                }
                found.insert(name, text);
            }
            syn::Item::Static(item) => table(
                &format!("static {path}{}", item.ident),
                &item.expr,
                text,
                found,
            ),
            syn::Item::Const(item) => table(
                &format!("const {path}{}", item.ident),
                &item.expr,
                text,
                found,
            ),
            syn::Item::Fn(item) => {
                found.insert(format!("fn {path}{}", item.sig.ident), text);
            }
            syn::Item::Impl(item) => {
                let target = resolve(path, &tidy(&item.self_ty.to_token_stream().to_string()));
                let name = match &item.trait_ {
                    Some((trait_path, _)) => {
                        let trait_path = tidy(&trait_path.to_token_stream().to_string());
                        format!("impl {trait_path} for {target}")
                    }
                    None => format!("impl {target}"),
                };
                let entry = found.text.entry(name).or_default();
                entry.push_str(&text);
            }
            syn::Item::Type(item) => {
                found.insert(format!("type {path}{}", item.ident), text);
            }
            _ => {}
        }
    }
}

/// The path of the type `target` named in the module `path` (`types::builder::`): a path of
/// the crate stays as written, `super::` goes up a module.
fn resolve(path: &str, target: &str) -> String {
    if target.starts_with("crate::") || target.starts_with("::") {
        return target.to_owned();
    }
    let mut modules: Vec<&str> = path.split("::").filter(|m| !m.is_empty()).collect();
    let mut rest = target;
    while let Some(up) = rest.strip_prefix("super::") {
        modules.pop();
        rest = up;
    }
    modules.push(rest);
    modules.join("::")
}

/// A path as tokens print it (`:: std :: fmt :: Display`), as Rust is written
/// (`::std::fmt::Display`).
fn tidy(tokens: &str) -> String {
    tokens
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace("& ", "&")
}

/// A table (`static` or `const` of an array): the table, and each entry by its first string.
/// An entry without a string is named by its first field (a status rule by its status).
fn table(name: &str, expr: &syn::Expr, text: String, found: &mut Items) {
    let array = match expr {
        syn::Expr::Reference(reference) => &*reference.expr,
        other => other,
    };
    if let syn::Expr::Array(array) = array {
        for (index, item) in array.elems.iter().enumerate() {
            let entry_text = item.to_token_stream().to_string();
            let fields = entry::fields(item);
            let first = fields.as_ref().and_then(|f| f.first()).map(|f| f.1.clone());
            let key = first_string(&entry_text)
                .or(first)
                .unwrap_or_else(|| index.to_string());
            let key = format!("{name}[{key}]");
            if let Some(fields) = fields {
                found.entries.insert(key.clone(), fields);
            }
            found.insert(key, entry_text);
        }
    }
    found.insert(name.to_owned(), text);
}

/// The first string literal of a token text, as `"status"`.
fn first_string(text: &str) -> Option<String> {
    let start = text.find('"')?;
    let end = text[start + 1..].find('"')?;
    Some(text[start..start + end + 2].to_owned())
}

/// The lines of a summary: `added ...`, `removed ...`, `changed ...`; an item whose parts
/// are listed is not listed as changed itself. `None` when a version does not parse.
pub fn lines(old: &str, new: &str) -> Option<Vec<String>> {
    let (old, new) = (items(old)?, items(new)?);
    let mut out = Vec::new();
    for (name, text) in &new.text {
        let said = |verb: &str| {
            let key = name
                .rsplit_once('[')
                .map_or("", |(_, key)| key.trim_end_matches(']'));
            match new.entries.get(name) {
                Some(fields) => {
                    let before = old.entries.get(name).map(Vec::as_slice);
                    match entry::describe(before, fields, key) {
                        what if what.is_empty() => format!("{verb} {name}"),
                        what => format!("{verb} {name}: {what}"),
                    }
                }
                None => format!("{verb} {name}"),
            }
        };
        match old.text.get(name) {
            None => out.push(said("added")),
            Some(before) if before != text => out.push(said("changed")),
            Some(_) => {}
        }
    }
    out.extend(
        old.text
            .keys()
            .filter(|name| !new.text.contains_key(*name))
            .map(|name| format!("removed {name}")),
    );
    // A change of a member or an entry changes its whole item too; say only the parts.
    let parts: Vec<String> = out.clone();
    out.retain(|line| {
        let Some(name) = line.strip_prefix("changed ") else {
            return true;
        };
        let name = name.split_once(": ").map_or(name, |(name, _)| name);
        !parts.iter().any(|other| {
            let other = other.split_once(' ').map_or("", |(_, name)| name);
            let other = other.split_once(": ").map_or(other, |(name, _)| name);
            other != name
                && (other.starts_with(&format!("{name}."))
                    || other.starts_with(&format!("{name}::"))
                    || other.starts_with(&format!("{name}[")))
        })
    });
    out.sort_by(|a, b| {
        a.split_once(' ')
            .map(|p| p.1)
            .cmp(&b.split_once(' ').map(|p| p.1))
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_enum_a_new_member_and_a_new_table_entry_are_named() {
        let old = r#"
            pub mod types { pub struct Referral { pub id: String } }
            pub static FILTERABLE: &[F] = &[F { path: "status" }];
        "#;
        let new = r#"
            pub mod types {
                pub struct Referral { pub id: String, pub priority: Option<Priority> }
                pub enum Priority { High, Low }
            }
            pub static FILTERABLE: &[F] = &[
                F { path: "status" },
                F { path: "salesStage", kind: Kind::Set },
            ];
        "#;
        let lines = lines(old, new).unwrap();
        assert_eq!(
            lines,
            [
                "added enum types::Priority",
                "added enum types::Priority::High",
                "added enum types::Priority::Low",
                "added static FILTERABLE[\"salesStage\"]: kind Set",
                "added struct types::Referral.priority",
            ]
        );
    }
}
