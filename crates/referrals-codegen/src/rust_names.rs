//! How the document's names and paths become Rust tokens, for the tables and the patch
//! functions alike: a member's Rust name, a patch operation's variant, and the read of a member
//! through its chain of fields.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::ast::Field;

/// The Rust name of a member path: snake case, with `_` after a keyword (`type_`).
pub(crate) fn rust_name(text: &str) -> String {
    let name = text
        .replace(|c: char| !c.is_alphanumeric(), "-")
        .to_snake_case();
    match syn::parse_str::<Ident>(&name) {
        Ok(_) => name,
        Err(_) => format!("{name}_"),
    }
}

/// The variant of `JsonPatchOp` of the operation `op` (`add`).
pub(crate) fn patch_op(op: &str) -> TokenStream {
    let variant = format_ident!("{}", crate::open_enum::variant_name(op));
    quote!(super::types::JsonPatchOp::#variant)
}

/// `Option<&T>` of the member at the end of `fields`, starting from `start` (a reference).
pub(crate) fn read_chain(start: TokenStream, fields: &[Field]) -> TokenStream {
    let Some((first, rest)) = fields.split_first() else {
        return quote!(::std::option::Option::Some(#start));
    };
    let name = &first.ident;
    let mut chain = if first.optional() {
        quote!(#start.#name.as_ref())
    } else {
        quote!(::std::option::Option::Some(&#start.#name))
    };
    for field in rest {
        let name = &field.ident;
        chain = if field.optional() {
            quote!(#chain.and_then(|value| value.#name.as_ref()))
        } else {
            quote!(#chain.map(|value| &value.#name))
        };
    }
    chain
}
