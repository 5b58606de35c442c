//! A table entry of the generated code in a few words: its fields but the functions that read
//! a member (closures), each value written without the paths of its names
//! (`crate::facts::Operators::EQ | crate::facts::Operators::NE` is `EQ | NE`), so that a summary
//! says what a new filter, op or rule is: `kind Integer, operators EQ | NE | GE | LE`.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;

/// The fields of an entry written as a struct, with their values in short; `None` for an
/// entry of another form.
pub fn fields(entry: &syn::Expr) -> Option<Vec<(String, String)>> {
    let syn::Expr::Struct(entry) = entry else {
        return None;
    };
    Some(
        entry
            .fields
            .iter()
            .filter(|field| !matches!(field.expr, syn::Expr::Closure(_)))
            .map(|field| {
                let name = field.member.to_token_stream().to_string();
                (name, short(field.expr.to_token_stream()))
            })
            .collect(),
    )
}

/// A value's tokens without the paths of names, the references and the calls of `new`.
fn short(tokens: TokenStream) -> String {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = String::new();
    let mut index = 0;
    while let Some(tree) = trees.get(index) {
        index += 1;
        match tree {
            TokenTree::Ident(ident) => {
                let is_prefix =
                    matches!(trees.get(index), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                let is_new_call = ident == "new"
                    && matches!(trees.get(index), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
                if !is_prefix && !is_new_call {
                    out.push_str(&ident.to_string());
                }
            }
            TokenTree::Punct(punct) => match punct.as_char() {
                ':' | '&' => {}
                ',' => out.push_str(", "),
                '|' => out.push_str(" | "),
                other => out.push(other),
            },
            TokenTree::Literal(literal) => out.push_str(&literal.to_string()),
            TokenTree::Group(group) => {
                let inner = short(group.stream());
                let inner = inner.trim_end_matches(", ");
                match group.delimiter() {
                    Delimiter::Bracket => out.push_str(&format!("[{inner}]")),
                    Delimiter::Parenthesis if out.is_empty() || out.ends_with(' ') => {
                        out.push_str(inner)
                    }
                    Delimiter::Parenthesis => out.push_str(&format!("({inner})")),
                    _ => out.push_str(inner),
                }
            }
        }
    }
    out
}

/// What an added entry holds, or what changed in a changed one (`ops [Replace, Add] →
/// [Replace, Add, Remove]`); the field that names the entry (its key) is left out.
pub fn describe(old: Option<&[(String, String)]>, new: &[(String, String)], key: &str) -> String {
    let parts: Vec<String> = new
        .iter()
        .filter(|(_, value)| value != key)
        .filter_map(|(name, value)| match old {
            None if value == "[]" => None,
            None => Some(format!("{name} {value}")),
            Some(old) => match old.iter().find(|(before, _)| before == name) {
                Some((_, before)) if before == value => None,
                Some((_, before)) => Some(format!("{name} {before} → {value}")),
                None => Some(format!("{name} {value}")),
            },
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_said_in_a_few_words() {
        let old: syn::Expr = syn::parse_str(
            "Patchable { pointer: \"/notes\", ops: &[super::types::JsonPatchOp::Replace] }",
        )
        .unwrap();
        let new: syn::Expr = syn::parse_str(
            "Patchable { pointer: \"/notes\", ops: &[super::types::JsonPatchOp::Replace, \
             super::types::JsonPatchOp::Remove], get: |r| r.notes.as_ref() }",
        )
        .unwrap();
        let (old, new) = (fields(&old).unwrap(), fields(&new).unwrap());
        assert_eq!(
            describe(Some(&old), &new, "\"/notes\""),
            "ops [Replace] → [Replace, Remove]"
        );
        let filter: syn::Expr = syn::parse_str(
            "Filterable { path: \"score\", kind: Kind::Integer, operators: \
             crate::facts::Operators::new(crate::facts::Operators::EQ | crate::facts::Operators::GE) }",
        )
        .unwrap();
        assert_eq!(
            describe(None, &fields(&filter).unwrap(), "\"score\""),
            "kind Integer; operators EQ | GE"
        );
    }
}
