//! The document's operations and security as Rust: `Operation` (every operation, with its id,
//! method, path, parameters and answers), `parameters` (a constant per parameter name),
//! `security` (the scopes and roles that tokens need) and `headers` (the names of the
//! answers' headers); the same for the resource's document and the webhooks' document.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::progenitor_view::Dropped;
use crate::reader::{Facts, Operation};

/// `Operation` and `parameters`.
pub(crate) fn operations(facts: &Facts, dropped: &[Dropped]) -> TokenStream {
    let all = &facts.operations;
    let variants: Vec<Ident> = all
        .iter()
        .map(|operation| format_ident!("{}", crate::open_enum::variant_name(&operation.id)))
        .collect();
    let docs = all.iter().map(|operation| {
        let deprecated = if operation.deprecated {
            " (deprecated)"
        } else {
            ""
        };
        format!(
            "`{}`: {} {}{deprecated}",
            operation.id, operation.method, operation.path
        )
    });
    let methods = operation_methods(all, &variants, dropped);
    let responses = operation_responses(all, &variants);
    let modules = all.iter().map(parameter_module);
    quote! {
        /// The operations of the document.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            #( #[doc = #docs] #variants, )*
        }

        #methods

        #responses

        impl ::std::fmt::Display for Operation {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.id())
            }
        }

        /// The names of every operation's parameters, one constant each.
        pub mod parameters {
            #(#modules)*
        }
    }
}

/// The constant of each parameter name of `operation`, in a module named for it.
fn parameter_module(operation: &Operation) -> TokenStream {
    let module = format_ident!("{}", operation.id.to_snake_case());
    let doc = format!(
        "The parameter names of `{}` ({} {}).",
        operation.id, operation.method, operation.path
    );
    let constants = operation.parameters.iter().map(|(name, location)| {
        let constant = format_ident!("{}", Operation::constant_name(name));
        let doc = format!("`{name}`, in the {location}.");
        quote!(#[doc = #doc] pub const #constant: &str = #name;)
    });
    let values = operation.parameter_values.iter().map(|(name, values)| {
        let constant = format_ident!("{}_VALUES", Operation::constant_name(name));
        let doc = format!("The values that `{name}` takes (its `enum`).");
        quote!(#[doc = #doc] pub const #constant: &[&str] = &[#(#values),*];)
    });
    let extensions = operation
        .parameter_extensions
        .iter()
        .map(|(name, key, texts, list)| {
            let constant = format_ident!(
                "{}_{}",
                Operation::constant_name(name),
                Operation::constant_name(key)
            );
            let doc = format!("`x-{key}` of `{name}`.");
            if *list {
                quote!(#[doc = #doc] pub const #constant: &[&str] = &[#(#texts),*];)
            } else {
                let text = &texts[0];
                quote!(#[doc = #doc] pub const #constant: &str = #text;)
            }
        });
    quote!(#[doc = #doc] pub mod #module { #(#constants)* #(#values)* #(#extensions)* })
}

/// The header that makes the service answer with a body where the generated client needs
/// one: for an operation whose bodiless success the generated client cannot express, when the
/// operation takes a `Prefer` header (RFC 7240).
fn representation(operation: &Operation, dropped: &[Dropped]) -> TokenStream {
    let drops = dropped.iter().any(|gone| gone.operation_id == operation.id);
    let prefer = operation
        .parameters
        .iter()
        .find(|(name, location)| location == "header" && name.eq_ignore_ascii_case("prefer"));
    match (drops, prefer) {
        (true, Some((name, _))) => quote!(Some((#name, "return=representation"))),
        _ => quote!(None),
    }
}

/// `Operation::responses`: the answers of each operation, their statuses and headers.
fn operation_responses(all: &[Operation], variants: &[Ident]) -> TokenStream {
    let responses = all.iter().map(|operation| {
        let answers = operation
            .responses
            .iter()
            .map(|(status, headers)| quote!((#status, &[#(#headers),*])));
        quote!(&[#(#answers),*])
    });
    quote! {
        impl Operation {
            /// Its answers as the document lists them: the status as written (`200`, `4XX`,
            /// `default`) and the headers that the answer declares.
            pub const fn responses(self) -> &'static [(&'static str, &'static [&'static str])] {
                match self { #( Operation::#variants => #responses, )* }
            }
        }
    }
}

/// The methods of `Operation`, one `match` each over `variants`.
fn operation_methods(all: &[Operation], variants: &[Ident], dropped: &[Dropped]) -> TokenStream {
    let ids = all.iter().map(|operation| &operation.id);
    let names: Vec<String> = all
        .iter()
        .map(|operation| operation.id.to_snake_case())
        .collect();
    let methods = all.iter().map(|operation| &operation.method);
    let paths = all.iter().map(|operation| &operation.path);
    let deprecated = all.iter().map(|operation| operation.deprecated);
    let bodies = all.iter().map(|operation| match &operation.body {
        Some(schema) => quote!(::std::option::Option::Some(#schema)),
        None => quote!(::std::option::Option::None),
    });
    let parameters = all.iter().map(|operation| {
        let pairs = operation
            .parameters
            .iter()
            .map(|(name, location)| quote!((#name, #location)));
        quote!(&[#(#pairs),*])
    });
    let representation = all
        .iter()
        .map(|operation| representation(operation, dropped));
    quote! {
        impl Operation {
            /// Every operation, in the document's order.
            pub const ALL: &'static [Operation] = &[#(Operation::#variants),*];

            /// The `operationId`.
            pub const fn id(self) -> &'static str {
                match self { #( Operation::#variants => #ids, )* }
            }

            /// The name of the generated client's method (the `operationId` in snake case).
            pub const fn name(self) -> &'static str {
                match self { #( Operation::#variants => #names, )* }
            }

            /// The HTTP method, upper case.
            pub const fn method(self) -> &'static str {
                match self { #( Operation::#variants => #methods, )* }
            }

            /// The path, as the document writes it (`{id}` for a path parameter).
            pub const fn path(self) -> &'static str {
                match self { #( Operation::#variants => #paths, )* }
            }

            /// Whether the document marks it deprecated.
            pub const fn deprecated(self) -> bool {
                match self { #( Operation::#variants => #deprecated, )* }
            }

            /// The component schema of its request body, when it takes one.
            pub const fn body_schema(self) -> ::std::option::Option<&'static str> {
                match self { #( Operation::#variants => #bodies, )* }
            }

            /// Its parameters: name and where it goes (`query`, `header`, `path`).
            pub const fn parameters(self) -> &'static [(&'static str, &'static str)] {
                match self { #( Operation::#variants => #parameters, )* }
            }

            /// The header (name, value) that makes the service answer with a body where the
            /// generated client needs one: set for an operation whose bodiless success answer
            /// the generated client does not express.
            pub const fn representation(self) -> ::std::option::Option<(&'static str, &'static str)> {
                match self { #( Operation::#variants => #representation, )* }
            }

            /// The operation whose generated method is `name`.
            pub fn from_name(name: &str) -> ::std::option::Option<Self> {
                match name {
                    #( #names => Some(Operation::#variants), )*
                    _ => None,
                }
            }
        }
    }
}

/// `Operation`, `parameters`, `headers`, `security` and `servers` of a document without a
/// resource (the webhooks document).
pub fn document_tables(facts: &Facts, dropped: &[Dropped]) -> TokenStream {
    let mut code = operations(facts, dropped);
    code.extend(security(facts));
    code
}

/// `security`: what the document says of the tokens that the API takes; `headers`: the names
/// of the headers of its answers.
pub(crate) fn security(facts: &Facts) -> TokenStream {
    let (scopes, roles, servers) = (&facts.scopes, &facts.roles, &facts.servers);
    let header_keys = facts.header_keys.iter().map(|(scheme, header)| {
        let constant = format_ident!("{}", Operation::constant_name(scheme));
        let doc = format!("`{header}`: the header of the security scheme `{scheme}` (`apiKey`).");
        quote!(#[doc = #doc] pub const #constant: &str = #header;)
    });
    let headers = facts.response_headers.iter().map(|name| {
        let constant = format_ident!("{}", Operation::constant_name(name));
        let doc = format!("`{name}`");
        quote!(#[doc = #doc] pub const #constant: &str = #name;)
    });
    quote! {
        /// The names of the headers that the document's answers carry.
        pub mod headers {
            #(#headers)*
        }

        /// What the document's security schemes say of the tokens that the API takes.
        pub mod security {
            /// The OAuth 2 scopes to ask a token for.
            pub const SCOPES: &[&str] = &[#(#scopes),*];
            /// The roles of the partner's organization that may call the API (`x-roles`).
            pub const ROLES: &[&str] = &[#(#roles),*];
            #(#header_keys)*
        }

        /// The service roots of the document's `servers`, the first one being the service's.
        pub mod servers {
            /// Every root, in the document's order.
            pub const ALL: &[&str] = &[#(#servers),*];
        }
    }
}
