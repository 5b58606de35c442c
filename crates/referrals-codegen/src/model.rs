//! What the generator adds to typify's types, from the document's keywords:
//!
//! - `MEMBERS`, `REQUIRED` and `READ_ONLY` on every object type, as written on the wire;
//! - `new(...)` on every object type with required members, taking exactly those (so that a
//!   value that the document requires cannot be forgotten: it does not compile);
//! - `keep_read_only(&mut self, from)` on types with read-only members (what a server keeps
//!   when a client sends the whole resource back);
//! - builders that start with an empty map of unknown members. Typify marks the catch-all map
//!   of `additionalProperties` as required, so every builder would otherwise fail at run time
//!   with "no value supplied for extra" unless the caller set it by hand;
//! - builder setters of optional strings that take `"text"`, a `String` or an `Option`
//!   (`crate::OptionalText`): typify's take `TryInto<Option<String>>`, which `&str` is not;
//! - the derive of `schemars::JsonSchema`, behind the model's feature `schemars`: typify writes
//!   every derive unconditionally.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::visit_mut::{self, VisitMut};

use crate::ast::{Field, Structs, types_items_mut};
use crate::reader::Facts;

/// The catch-all field that typify makes of `additionalProperties`.
const EXTRA: &str = "extra";

/// Adds the items above to the `types` module of `file`.
pub fn extend(file: &mut syn::File, facts: &Facts, openapi: &openapiv3::OpenAPI) {
    let structs = Structs::read(file);
    let mut code = TokenStream::new();
    for object in &facts.objects {
        let Some(fields) = structs.fields(&object.name) else {
            continue;
        };
        let ident = format_ident!("{}", object.name);
        let members = declared_members(openapi, &object.name);
        let required = &object.required;
        let read_only = &object.read_only;
        code.extend(quote! {
            impl #ident {
                /// The members that the document declares for this type, as written on the wire.
                pub const MEMBERS: &'static [&'static str] = &[#(#members),*];
                /// The members that the document requires, as written on the wire.
                pub const REQUIRED: &'static [&'static str] = &[#(#required),*];
                /// The members that the service sets and a client leaves out of a request body
                /// (`readOnly`), as written on the wire.
                pub const READ_ONLY: &'static [&'static str] = &[#(#read_only),*];
            }
        });
        if !required.is_empty() {
            code.extend(constructor(&ident, required, fields));
        }
        if !object.microsoft.is_empty() {
            code.extend(microsoft(&ident, &object.microsoft, fields));
        }
        if !read_only.is_empty() {
            code.extend(keep_read_only(&ident, read_only, fields));
        }
    }
    let extra: syn::File = syn::parse2(code).expect("the model's additions are valid Rust");
    if let Some(items) = types_items_mut(file) {
        items.extend(extra.items);
        for item in items.iter_mut() {
            if let syn::Item::Mod(module) = item
                && module.ident == "builder"
            {
                EmptyExtra.visit_item_mod_mut(module);
                TextSetters.visit_item_mod_mut(module);
            }
        }
        let mut gate = FeatureGatedDerive;
        for item in items.iter_mut() {
            gate.visit_item_mut(item);
        }
    }
}

/// `new(...)` of a type with required members: it takes exactly those.
fn constructor(ident: &syn::Ident, required: &[String], fields: &[Field]) -> TokenStream {
    // In the document's order of `required`, which is the order a reader knows.
    let parameters = required
        .iter()
        .filter_map(|member| fields.iter().find(|field| &field.wire == member))
        .map(|field| {
            let (name, ty) = (&field.ident, &field.ty);
            quote!(#name: #ty)
        });
    let values = fields.iter().map(|field| {
        let name = &field.ident;
        if required.contains(&field.wire) {
            quote!(#name)
        } else {
            quote!(#name: ::std::default::Default::default())
        }
    });
    let names = required
        .iter()
        .map(|member| format!("`{member}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let doc = format!(
        "A value with the members that the document requires ({names}); the others are \
         empty, to be set field by field."
    );
    quote! {
        impl #ident {
            #[doc = #doc]
            pub fn new(#(#parameters),*) -> Self {
                Self { #(#values),* }
            }
        }
    }
}

/// `keep_read_only(&mut self, from)` of a type with read-only members.
fn keep_read_only(ident: &syn::Ident, read_only: &[String], fields: &[Field]) -> TokenStream {
    let kept = fields
        .iter()
        .filter(|field| read_only.contains(&field.wire))
        .map(|field| &field.ident);
    quote! {
        impl #ident {
            /// Sets the members in [`Self::READ_ONLY`] to their values in `from`: what a
            /// server keeps of the stored resource when a client sends the whole of it.
            pub fn keep_read_only(&mut self, from: &Self) {
                #( self.#kept = ::std::clone::Clone::clone(&from.#kept); )*
            }
        }
    }
}

/// `MICROSOFT`, `microsoft()` and `is_microsoft()` of a type whose schema has `x-microsoft`.
fn microsoft(ident: &syn::Ident, pairs: &[(String, String)], fields: &[Field]) -> TokenStream {
    let found: Vec<(&Field, &String)> = pairs
        .iter()
        .filter_map(|(member, text)| {
            let field = fields.iter().find(|field| &field.wire == member)?;
            Some((field, text))
        })
        .collect();
    let (members, texts): (Vec<&String>, Vec<&String>) =
        pairs.iter().map(|(member, text)| (member, text)).unzip();
    let sets = found.iter().map(|(field, text)| {
        let name = &field.ident;
        if field.optional() {
            quote!(value.#name = ::std::option::Option::Some(::std::convert::From::from(#text));)
        } else {
            quote!(value.#name = ::std::convert::From::from(#text);)
        }
    });
    let checks = found.iter().map(|(field, text)| {
        let name = &field.ident;
        if field.optional() {
            quote!(self.#name.as_ref().is_some_and(|value| value.to_string() == #text))
        } else {
            quote!(self.#name.to_string() == #text)
        }
    });
    quote! {
        impl #ident {
            /// The members, as written on the wire, and their text, of the value that names
            /// Microsoft (the document's `x-microsoft`).
            pub const MICROSOFT: &'static [(&'static str, &'static str)] =
                &[#((#members, #texts)),*];

            /// The value that names Microsoft ([`Self::MICROSOFT`]).
            pub fn microsoft() -> Self {
                let mut value = Self::default();
                #(#sets)*
                value
            }

            /// Whether this value names Microsoft: it has every member of [`Self::MICROSOFT`].
            pub fn is_microsoft(&self) -> bool {
                #(#checks)&&*
            }
        }
    }
}

/// The properties of the object schema `name`, in the document's order.
fn declared_members(openapi: &openapiv3::OpenAPI, name: &str) -> Vec<String> {
    openapi
        .components
        .as_ref()
        .and_then(|components| components.schemas.get(name))
        .and_then(|schema| schema.as_item())
        .and_then(|schema| match &schema.schema_kind {
            openapiv3::SchemaKind::Type(openapiv3::Type::Object(object)) => {
                Some(object.properties.keys().cloned().collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// Makes the builders' catch-all map start empty instead of "not supplied".
struct EmptyExtra;

impl VisitMut for EmptyExtra {
    fn visit_field_value_mut(&mut self, field: &mut syn::FieldValue) {
        let is_extra = matches!(&field.member, syn::Member::Named(name) if name == EXTRA);
        let is_missing = matches!(&field.expr, syn::Expr::Call(call)
            if matches!(&*call.func, syn::Expr::Path(path) if path.path.is_ident("Err")));
        if is_extra && is_missing {
            field.expr = syn::parse_quote!(Ok(::std::default::Default::default()));
        }
        visit_mut::visit_field_value_mut(self, field);
    }
}

/// Rewrites the builder setters of optional strings to take `impl Into<crate::OptionalText>`.
struct TextSetters;

impl VisitMut for TextSetters {
    fn visit_impl_item_fn_mut(&mut self, function: &mut syn::ImplItemFn) {
        let takes_optional_text = function
            .sig
            .generics
            .where_clause
            .as_ref()
            .is_some_and(|clause| {
                clause.predicates.iter().any(|predicate| {
                    let text = quote!(#predicate).to_string().replace(' ', "");
                    text == "T:::std::convert::TryInto<::std::option::Option<::std::string::String>>"
                })
            });
        if !takes_optional_text {
            return;
        }
        let name = function.sig.ident.clone();
        let attrs = function.attrs.clone();
        *function = syn::parse_quote! {
            #(#attrs)*
            pub fn #name(mut self, value: impl ::std::convert::Into<crate::OptionalText>) -> Self {
                self.#name = Ok(value.into().into_option());
                self
            }
        };
    }
}

/// Moves `schemars::JsonSchema` out of each `#[derive(...)]` into
/// `#[cfg_attr(feature = "schemars", derive(::schemars::JsonSchema))]`.
struct FeatureGatedDerive;

impl FeatureGatedDerive {
    fn gate(attrs: &mut Vec<syn::Attribute>) {
        let mut gated = false;
        for attr in attrs.iter_mut() {
            if !attr.path().is_ident("derive") {
                continue;
            }
            let Ok(paths) = attr.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            ) else {
                continue;
            };
            let wanted = crate::settings::SCHEMARS_DERIVE.replace(' ', "");
            let (schemars, rest): (Vec<_>, Vec<_>) = paths.into_iter().partition(|path| {
                quote!(#path)
                    .to_string()
                    .replace(' ', "")
                    .trim_start_matches("::")
                    == wanted
            });
            if !schemars.is_empty() {
                gated = true;
                *attr = syn::parse_quote!(#[derive(#(#rest),*)]);
            }
        }
        if gated {
            let feature = crate::settings::SCHEMARS_FEATURE;
            attrs.push(syn::parse_quote!(
                #[cfg_attr(feature = #feature, derive(::schemars::JsonSchema))]
            ));
        }
    }
}

impl VisitMut for FeatureGatedDerive {
    fn visit_item_struct_mut(&mut self, item: &mut syn::ItemStruct) {
        Self::gate(&mut item.attrs);
        visit_mut::visit_item_struct_mut(self, item);
    }

    fn visit_item_enum_mut(&mut self, item: &mut syn::ItemEnum) {
        Self::gate(&mut item.attrs);
        visit_mut::visit_item_enum_mut(self, item);
    }
}
