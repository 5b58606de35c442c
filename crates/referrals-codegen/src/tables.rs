//! The API's facts ([`crate::reader`]) as Rust: the tables that the client, the sandbox and the
//! tests read, and the typed code made from them.
//!
//! - `tables`: `FILTERABLE`, `LAMBDAS`, `SORTABLE`, `PATCHABLE`, `STATUS_RULES`, each entry
//!   with a function that reads the member from a resource;
//! - `filters`: one typed filter builder per filterable member (`status()`, `team_email_any()`),
//!   whose operators are those of the document, checked at compile time; and `SortKey`;
//! - `patching` ([`crate::patching`]): JSON Patch on the resource as `x-patchable` allows;
//! - `Operation`, `parameters`, `security`: [`crate::operations`].
//!
//! The generated code names the hand-written types of the model crate (`crate::facts`,
//! `crate::query`, `crate::patch`) and the generated types (`super::types`).

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::ast::{Field, Structs};
use crate::open_enum::OpenEnum;
use crate::progenitor_view::Dropped;
use crate::reader::{Facts, Kind};
use crate::rust_names::{patch_op, read_chain, rust_name};

/// The tokens of the modules above, for `file` (whose `types` module they read).
pub fn tokens(
    facts: &Facts,
    file: &syn::File,
    open_enums: &[OpenEnum],
    dropped: &[Dropped],
) -> Result<TokenStream, String> {
    let structs = Structs::read(file);
    let mut code = crate::operations::operations(facts, dropped);
    code.extend(crate::operations::security(facts));
    code.extend(scalar_impls(open_enums));
    let Some(resource) = &facts.resource else {
        return Ok(code);
    };
    let paths = Paths {
        structs: &structs,
        resource,
    };
    let resource_ident = format_ident!("{resource}");
    let (filterable, lambda_entries) = filterable_entries(facts, &paths, open_enums)?;
    let sortable = facts
        .sortable
        .iter()
        .map(|entry| {
            let fields = paths.fields(&entry.segments)?;
            let (path, kind) = (&entry.path, kind_tokens(&entry.kind));
            let get = read_chain(quote!(resource), &fields);
            Ok(quote! {
                Sortable { path: #path, kind: #kind, get: |resource| scalar(#get) }
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let patchable = facts.patchable.iter().map(|entry| {
        let pointer = &entry.pointer;
        let ops = entry.ops.iter().map(|op| patch_op(op));
        quote!(Patchable { pointer: #pointer, ops: &[#(#ops),*] })
    });
    let columns = &facts.columns;
    let status = status_tables(facts);
    code.extend(quote! {
        /// The API's facts as tables: what the document's `x-filterable`, `x-sortable`,
        /// `x-patchable` and `x-status-rules` say, with functions that read each member from a
        /// resource.
        pub mod tables {
            #[allow(unused_imports)]
            use super::types::*;
            #[allow(unused_imports)]
            use crate::facts::{
                Filterable, Kind, Lambda, LambdaMember, Operators, Patchable, Sortable, StatusRule,
                scalar,
            };

            /// The resource that lists are made of, filtered, sorted and patched.
            pub type Resource = #resource_ident;

            /// `x-filterable`, less the members inside arrays (see [`LAMBDAS`]).
            pub static FILTERABLE: &[Filterable] = &[#(#filterable),*];

            /// `x-filterable`, the members inside arrays, compared in a lambda; one entry per
            /// array.
            pub static LAMBDAS: &[Lambda] = &[#(#lambda_entries),*];

            /// `x-sortable`.
            pub static SORTABLE: &[Sortable] = &[#(#sortable),*];

            /// `x-patchable`.
            pub static PATCHABLE: &[Patchable] = &[#(#patchable),*];

            /// The resource's leaves in the document's order: the paths of its members that
            /// hold no object of the document's schemas, one column each in a flat export. A
            /// leaf that holds an array holds it whole.
            pub static COLUMNS: &[&str] = &[#(#columns),*];

            #status
        }
    });
    code.extend(filters(facts, open_enums)?);
    code.extend(crate::patching::tokens(facts, &structs, resource)?);
    code.extend(accessors(facts, &paths)?);
    Ok(code)
}

/// `x-accessors`: a method of the resource per entry, that reads its member.
fn accessors(facts: &Facts, paths: &Paths<'_>) -> Result<TokenStream, String> {
    let Some(resource) = &facts.resource else {
        return Ok(TokenStream::new());
    };
    let resource = format_ident!("{resource}");
    let mut methods = Vec::new();
    for (name, segments) in &facts.accessors {
        let fields = paths.fields(segments)?;
        let Some(last) = fields.last() else { continue };
        let method = format_ident!("{}", rust_name(name));
        let doc = format!(
            "`{}` (the document's `x-accessors`: `{name}`).",
            segments.join("/")
        );
        let get = read_chain(quote!(self), &fields);
        let ty = last.value_type();
        let is_string = crate::ast::last_ident(ty).as_deref() == Some("String");
        methods.push(if is_string {
            quote! {
                #[doc = #doc]
                pub fn #method(&self) -> ::std::option::Option<&str> {
                    #get.map(::std::string::String::as_str)
                }
            }
        } else {
            quote! {
                #[doc = #doc]
                pub fn #method(&self) -> ::std::option::Option<&#ty> {
                    #get
                }
            }
        });
    }
    Ok(quote! {
        impl types::#resource {
            #(#methods)*
        }
    })
}

/// The generated fields along the member paths of the resource.
struct Paths<'a> {
    structs: &'a Structs,
    resource: &'a str,
}

impl Paths<'_> {
    fn fields(&self, segments: &[String]) -> Result<Vec<Field>, String> {
        self.structs.walk(self.resource, segments).ok_or_else(|| {
            format!(
                "the member `{}` of `{}` has no field in the generated type",
                segments.join("/"),
                self.resource
            )
        })
    }
}

/// The entries of `tables::FILTERABLE` and `tables::LAMBDAS`.
fn filterable_entries(
    facts: &Facts,
    paths: &Paths<'_>,
    open_enums: &[OpenEnum],
) -> Result<(Vec<TokenStream>, Vec<TokenStream>), String> {
    let mut filterable = Vec::new();
    let mut lambdas: BTreeMap<Vec<String>, (String, Vec<TokenStream>, Vec<TokenStream>)> =
        BTreeMap::new();
    let mut lambda_order = Vec::new();
    for entry in &facts.filterable {
        let fields = paths.fields(&entry.segments)?;
        let kind = kind_tokens(&entry.kind);
        let operators = operators_tokens(&entry.operators);
        match &entry.lambda {
            None => {
                let path = &entry.path;
                let get = read_chain(quote!(resource), &fields);
                let known = match &entry.kind {
                    Kind::Set(name) => open_enums
                        .iter()
                        .find(|open| &open.name == name)
                        .map(|open| open.values.clone())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                let name = filter_name(facts, entry);
                filterable.push(quote! {
                    Filterable {
                        path: #path,
                        name: #name,
                        kind: #kind,
                        operators: #operators,
                        known: &[#(#known),*],
                        get: |resource| scalar(#get),
                    }
                });
            }
            Some((at, lambda)) => {
                let collection = entry.segments[..*at].to_vec();
                let member = entry.segments[*at..].join("/");
                let item_get = read_chain(quote!(item), &fields[*at..]);
                let slot = lambdas.entry(collection.clone()).or_insert_with(|| {
                    lambda_order.push(collection.clone());
                    (lambda.clone(), Vec::new(), Vec::new())
                });
                slot.1.push(quote! {
                    LambdaMember { path: #member, kind: #kind, operators: #operators }
                });
                slot.2.push(quote!(scalar(#item_get)));
            }
        }
    }
    let mut lambda_entries = Vec::new();
    for collection in &lambda_order {
        let (lambda, members, readers) = &lambdas[collection];
        let fields = paths.fields(collection)?;
        let items = read_chain(quote!(resource), &fields);
        let path = collection.join("/");
        let lambda = match lambda.as_str() {
            "all" => quote!(::referrals_odata::LambdaKind::All),
            _ => quote!(::referrals_odata::LambdaKind::Any),
        };
        lambda_entries.push(quote! {
            Lambda {
                collection: #path,
                lambda: #lambda,
                members: &[#(#members),*],
                rows: |resource| {
                    #items
                        .map(|items| items.iter().map(|item| vec![#(#readers),*]).collect())
                        .unwrap_or_default()
                },
            }
        });
    }

    Ok((filterable, lambda_entries))
}

/// `tables::STATUS_RULES` and the types of its values.
fn status_tables(facts: &Facts) -> TokenStream {
    match &facts.status_sets {
        Some((status_set, substatus_set)) => {
            let (status_set, substatus_set) = (
                format_ident!("{status_set}"),
                format_ident!("{substatus_set}"),
            );
            let rules = facts.status_rules.iter().map(|rule| {
                let from = format_ident!("{}", crate::open_enum::variant_name(&rule.from));
                let to = rule
                    .to
                    .iter()
                    .map(|to| format_ident!("{}", crate::open_enum::variant_name(to)));
                let substatus = rule
                    .substatus
                    .iter()
                    .map(|sub| format_ident!("{}", crate::open_enum::variant_name(sub)));
                quote! {
                    StatusRule {
                        from: Status::#from,
                        to: &[#(Status::#to),*],
                        substatus: &[#(Substatus::#substatus),*],
                    }
                }
            });
            quote! {
                /// The value set of the resource's `status`.
                pub type Status = #status_set;
                /// The value set of the resource's `substatus`.
                pub type Substatus = #substatus_set;
                /// `x-status-rules`: the status changes that an update may make.
                pub static STATUS_RULES: &[StatusRule] = &[#(#rules),*];
            }
        }
        None => quote!(),
    }
}

fn kind_tokens(kind: &Kind) -> TokenStream {
    let variant = format_ident!("{}", kind.name());
    quote!(Kind::#variant)
}

/// The Rust type of a member's values, as a filter compares them (the types of the model's
/// `FilterValue`).
fn value_type(kind: &Kind) -> TokenStream {
    match kind {
        Kind::Text => quote!(::std::string::String),
        Kind::Set(name) => {
            let name = format_ident!("{name}");
            quote!(super::types::#name)
        }
        Kind::Uuid => quote!(::uuid::Uuid),
        Kind::Time => quote!(::chrono::DateTime<::chrono::Utc>),
        Kind::Date => quote!(::chrono::NaiveDate),
        Kind::Integer(_) => quote!(i64),
        Kind::Number(_) => quote!(f64),
        Kind::Money => quote!(crate::Amount),
        Kind::Bool => quote!(bool),
    }
}

/// The operators as a bit set: `Operators::EQ | Operators::NE`.
fn operator_bits(operators: &[String]) -> TokenStream {
    let bits = operators.iter().map(|operator| {
        let name = format_ident!("{}", operator.to_uppercase());
        quote!(crate::facts::Operators::#name)
    });
    quote!(#(#bits)|*)
}

/// The name of the constant of a set of operators in `filters`: `EQ_NE_GT`, in the order of
/// [`canonical`] whatever the document's, so that one set has one name.
fn operator_set(operators: &[String]) -> Ident {
    let names: Vec<String> = canonical(operators)
        .iter()
        .map(|op| op.to_uppercase())
        .collect();
    format_ident!("{}", names.join("_"))
}

/// The operators in OData's order (`eq`, `ne`, `gt`, `ge`, `lt`, `le`), any other after them
/// by name, each once.
fn canonical(operators: &[String]) -> Vec<String> {
    const ORDER: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];
    let rank = |op: &String| {
        ORDER
            .iter()
            .position(|known| *known == op)
            .unwrap_or(ORDER.len())
    };
    let mut sorted = operators.to_vec();
    sorted.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    sorted.dedup();
    sorted
}

fn operators_tokens(operators: &[String]) -> TokenStream {
    let bits = operator_bits(operators);
    quote!(crate::facts::Operators::new(#bits))
}

/// How the open value sets take part in filters: compared as their text.
fn scalar_impls(open_enums: &[OpenEnum]) -> TokenStream {
    let names: Vec<Ident> = open_enums
        .iter()
        .map(|open| format_ident!("{}", open.name))
        .collect();
    quote! {
        #(
            impl crate::facts::AsScalar for types::#names {
                fn as_scalar(&self) -> crate::facts::Scalar<'_> {
                    crate::facts::Scalar::Text(self.as_str())
                }
            }

            impl crate::query::FilterValue<types::#names> for types::#names {
                fn literal(self) -> ::referrals_odata::Literal {
                    ::referrals_odata::Literal::String(self.as_str().to_owned())
                }
            }

            impl crate::query::FilterValue<types::#names> for &types::#names {
                fn literal(self) -> ::referrals_odata::Literal {
                    ::referrals_odata::Literal::String(self.as_str().to_owned())
                }
            }
        )*
    }
}

/// `SortKey`: the members of `x-sortable`.
fn sort_key(facts: &Facts) -> TokenStream {
    let variants: Vec<Ident> = facts
        .sortable
        .iter()
        .map(|entry| format_ident!("{}", crate::open_enum::variant_name(&entry.path)))
        .collect();
    let paths: Vec<&String> = facts.sortable.iter().map(|entry| &entry.path).collect();
    let variant_docs = paths.iter().map(|path| format!("`{path}`"));
    if variants.is_empty() {
        quote!()
    } else {
        quote! {
            /// A key of `$orderby`: the members of the document's `x-sortable`.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum SortKey {
                #( #[doc = #variant_docs] #variants, )*
            }

            impl SortKey {
                /// Every key, in the document's order.
                pub const ALL: &'static [SortKey] = &[#(SortKey::#variants),*];

                /// The member, as `$orderby` names it.
                pub fn member(self) -> &'static str {
                    match self {
                        #( SortKey::#variants => #paths, )*
                    }
                }
            }
        }
    }
}

/// The name of a filterable member's builder and flag: its `x-accessors` name where it has
/// one, else its last segment, unless another member has that name too (then its path).
fn filter_name(facts: &Facts, entry: &crate::reader::Filterable) -> String {
    if let Some((name, _)) = facts
        .accessors
        .iter()
        .find(|(_, segments)| *segments == entry.segments)
    {
        return name.clone();
    }
    let last = entry.segments.last().map_or("", String::as_str);
    let shared = facts
        .filterable
        .iter()
        .filter(|other| other.lambda.is_none())
        .filter(|other| {
            let named = facts.accessors.iter().any(|(_, s)| *s == other.segments);
            !named && other.segments.last().map(String::as_str) == Some(last)
        })
        .count();
    if shared > 1 {
        entry.path.clone()
    } else {
        last.to_owned()
    }
}

/// `filters`: a typed builder per filterable member, and `SortKey`.
fn filters(facts: &Facts, _open_enums: &[OpenEnum]) -> Result<TokenStream, String> {
    let mut functions = Vec::new();
    // A named constant for each set of operators, so that a builder's type reads
    // `Field<String, EQ_NE>` in rustdoc rather than an anonymous constant.
    let mut sets: Vec<Vec<String>> = Vec::new();
    for entry in &facts.filterable {
        let set = canonical(&entry.operators);
        if !sets.contains(&set) {
            sets.push(set);
        }
    }
    let constants = sets.iter().map(|set| {
        let name = operator_set(set);
        let bits = operator_bits(set);
        let doc = format!(
            "The operators {}: a filterable member's set.",
            set.join(", ")
        );
        quote! {
            #[doc = #doc]
            pub const #name: u8 = #bits;
        }
    });
    functions.extend(constants);
    for entry in &facts.filterable {
        let operators = operator_set(&entry.operators);
        let ty = value_type(&entry.kind);
        let listed = entry.operators.join(", ");
        match &entry.lambda {
            None => {
                let name = format_ident!("{}", rust_name(&filter_name(facts, entry)));
                let path = &entry.path;
                let doc = format!("`{path}`, compared with {listed}.");
                functions.push(quote! {
                    #[doc = #doc]
                    pub fn #name() -> crate::query::Field<#ty, #operators> {
                        crate::query::Field::new(#path)
                    }
                });
            }
            Some((at, lambda)) => {
                let collection = entry.segments[..*at].join("/");
                let member = entry.segments[*at..].join("/");
                let name = format_ident!("{}", rust_name(&format!("{}-{lambda}", entry.path)));
                let doc = format!(
                    "`{collection}/{lambda}(x:x/{member} ...)`: compares `{member}` of the items of \
                     `{collection}`, with {listed}."
                );
                let kind = match lambda.as_str() {
                    "all" => quote!(::referrals_odata::LambdaKind::All),
                    _ => quote!(::referrals_odata::LambdaKind::Any),
                };
                functions.push(quote! {
                    #[doc = #doc]
                    pub fn #name() -> crate::query::LambdaField<#ty, #operators> {
                        crate::query::LambdaField::new(#collection, #kind, #member)
                    }
                });
            }
        }
    }
    let sort_key = sort_key(facts);
    Ok(quote! {
        /// A typed filter builder for each member of `x-filterable`; a comparison that the
        /// document does not allow on a member does not compile.
        pub mod filters {
            #(#functions)*
            #sort_key
        }
    })
}
