//! Open value sets.
//!
//! The document writes a value set that the service may extend as
//! `anyOf: [{type: string, enum: [...]}, {type: string}]`. Typify renders that shape as a struct
//! of two flattened options, which is neither pleasant nor exhaustive to match on, so the
//! generator replaces each such schema with an enum written here: one variant per known value,
//! and `Unrecognized` for any other string, which keeps its text and writes it back unchanged.

use heck::ToPascalCase;
use openapiv3::{OpenAPI, ReferenceOr, Schema, SchemaKind, StringType, Type};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The name of the catch-all variant. A known value that would get the same name is refused.
const CATCH_ALL: &str = "Unrecognized";

/// A component schema of the open value-set shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEnum {
    /// The schema's name under `components/schemas`, which is also the Rust type's name.
    pub name: String,
    /// The schema's description.
    pub description: Option<String>,
    /// The values known today, in the document's order.
    pub values: Vec<String>,
    /// The schema's `x-subsets`, as written: named lists of its values (checked by [`check`]).
    pub subsets: Option<serde_json::Value>,
}

/// The extension that names subsets of an open value set: a map from a subset's name to a
/// list of the set's values. Each becomes a constant of the enum (`referral-events` →
/// `WebhookEventName::REFERRAL_EVENTS`), so that code names the subset, never its values.
pub const SUBSETS: &str = "x-subsets";

/// Finds every open value set among the component schemas.
pub fn find(openapi: &OpenAPI) -> Vec<OpenEnum> {
    let Some(components) = &openapi.components else {
        return Vec::new();
    };
    components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            ReferenceOr::Item(schema) => open_enum(name, schema),
            ReferenceOr::Reference { .. } => None,
        })
        .collect()
}

fn open_enum(name: &str, schema: &Schema) -> Option<OpenEnum> {
    let SchemaKind::AnyOf { any_of } = &schema.schema_kind else {
        return None;
    };
    let [ReferenceOr::Item(known), ReferenceOr::Item(other)] = any_of.as_slice() else {
        return None;
    };
    let SchemaKind::Type(Type::String(StringType { enumeration, .. })) = &known.schema_kind else {
        return None;
    };
    let SchemaKind::Type(Type::String(any_string)) = &other.schema_kind else {
        return None;
    };
    if enumeration.is_empty() || *any_string != StringType::default() {
        return None;
    }
    Some(OpenEnum {
        name: name.to_owned(),
        description: schema.schema_data.description.clone(),
        values: enumeration.iter().flatten().cloned().collect(),
        subsets: schema.schema_data.extensions.get(SUBSETS).cloned(),
    })
}

/// The subsets of `open` (its `x-subsets`), each a name and values of the set, by name; an
/// error says what is wrong with the extension.
pub fn subsets(open: &OpenEnum) -> Result<Vec<(String, Vec<String>)>, String> {
    let Some(subsets) = &open.subsets else {
        return Ok(Vec::new());
    };
    let Some(subsets) = subsets.as_object() else {
        return Err(format!(
            "`{SUBSETS}` must map a subset's name to a list of values"
        ));
    };
    let mut found = Vec::new();
    for (name, values) in subsets {
        let values: Option<Vec<String>> = values
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(|value| value.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or(None);
        let values = values.filter(|values| !values.is_empty()).ok_or_else(|| {
            format!("`{SUBSETS}`: `{name}` must be a non-empty list of the set's values")
        })?;
        if let Some(unknown) = values.iter().find(|value| !open.values.contains(value)) {
            return Err(format!(
                "`{SUBSETS}`: `{name}` names `{unknown}`, which is not one of the set's values ({})",
                open.values.join(", ")
            ));
        }
        let words = name.split('-');
        if !words
            .clone()
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()))
        {
            return Err(format!(
                "`{SUBSETS}`: the name `{name}` must be lower-case words joined by `-`"
            ));
        }
        if name == "known" {
            return Err(format!(
                "`{SUBSETS}`: `known` is every value of the set already (`{}::KNOWN`)",
                open.name
            ));
        }
        if let Some(twice) = values
            .iter()
            .enumerate()
            .find_map(|(index, value)| values[..index].contains(value).then_some(value))
        {
            return Err(format!("`{SUBSETS}`: `{name}` names `{twice}` twice"));
        }
        found.push((name.clone(), values));
    }
    Ok(found)
}

/// The constants of the subsets of `open`: one `&'static [Self]` each.
fn subset_tokens(open: &OpenEnum) -> TokenStream {
    let subsets = subsets(open).unwrap_or_default();
    let constants = subsets.iter().map(|(name, values)| {
        let constant = format_ident!("{}", name.to_uppercase().replace('-', "_"));
        let variants = values
            .iter()
            .map(|value| format_ident!("{}", variant_name(value)));
        let doc = format!(
            "The subset `{name}` of the document's `{SUBSETS}`: {}.",
            values
                .iter()
                .map(|value| format!("`{value}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        quote! {
            #[doc = #doc]
            pub const #constant: &'static [Self] = &[#(Self::#variants),*];
        }
    });
    let name = format_ident!("{}", open.name);
    if subsets.is_empty() {
        return TokenStream::new();
    }
    quote! {
        impl #name {
            #(#constants)*
        }
    }
}

/// The Rust name of a known value, made as typify names enum variants: PascalCase, with an `X`
/// in front when the value does not start with a letter (`1to9employees` → `X1to9employees`).
pub fn variant_name(value: &str) -> String {
    let pascal = value
        .replace('\'', "")
        .replace(|c: char| !(c.is_alphanumeric() || c == '_'), "-")
        .to_pascal_case();
    match pascal.chars().next() {
        Some(first) if first.is_alphabetic() => pascal,
        _ => format!("X{pascal}"),
    }
}

/// Checks that the variant names of `open` are distinct and leave the catch-all free.
pub fn check(open: &OpenEnum) -> Result<(), String> {
    subsets(open)?;
    let mut seen = std::collections::BTreeMap::new();
    for value in &open.values {
        let name = variant_name(value);
        if name == CATCH_ALL {
            return Err(format!(
                "the value `{value}` would take the name of the catch-all variant `{CATCH_ALL}`"
            ));
        }
        if let Some(earlier) = seen.insert(name.clone(), value) {
            return Err(format!(
                "the values `{earlier}` and `{value}` would both be named `{name}` in Rust"
            ));
        }
    }
    Ok(())
}

/// The type that keeps the text of an unknown value. Emitted once, beside the enums.
pub fn unrecognized_value_tokens() -> TokenStream {
    quote! {
        /// The text of a value that this client does not know yet.
        ///
        /// Only decoding and parsing make one, and they map every known value to its own variant,
        /// so a known value never hides in here.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct UnrecognizedValue(::std::string::String);

        impl UnrecognizedValue {
            /// The value as it was received.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for UnrecognizedValue {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for UnrecognizedValue {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    }
}

/// The Rust code of one open value set.
pub fn tokens(open: &OpenEnum, schemars: bool) -> TokenStream {
    let name = format_ident!("{}", open.name);
    let catch_all = format_ident!("{CATCH_ALL}");
    let mut doc = open
        .description
        .clone()
        .unwrap_or_else(|| format!("The `{}` value set.", open.name));
    doc.push_str(&format!(
        "\n\nThe service adds values over time: a value that this client does not know decodes \
         into [`{name}::{CATCH_ALL}`], which keeps its text, and is written back unchanged."
    ));

    let values = &open.values;
    let variants: Vec<_> = values
        .iter()
        .map(|value| format_ident!("{}", variant_name(value)))
        .collect();
    let variant_docs: Vec<_> = values.iter().map(|value| format!("`{value}`")).collect();

    let mut code = quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum #name {
            #(
                #[doc = #variant_docs]
                #variants,
            )*
            /// A value that this client does not know; its text is kept as received.
            #catch_all(UnrecognizedValue),
        }

        impl #name {
            /// The values known to this client, in the document's order.
            pub const KNOWN: &'static [Self] = &[#(Self::#variants),*];

            /// The value as it is written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    #(Self::#variants => #values,)*
                    Self::#catch_all(value) => value.as_str(),
                }
            }

            /// Whether this is one of the values in [`Self::KNOWN`].
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::#catch_all(_))
            }
        }

    };
    if schemars {
        code.extend(schemars_impl(&name, &open.name, values));
    }
    code.extend(conversions(&name, &catch_all, values, &variants));
    code.extend(subset_tokens(open));
    code.extend(serde_impls(
        &name,
        &format!("a {} value (a string)", open.name),
    ));
    code
}

/// `schemars::JsonSchema` of an open value set, behind the model's feature `schemars`.
fn schemars_impl(name: &Ident, name_text: &str, values: &[String]) -> TokenStream {
    quote! {
        /// The document's open value set: one of the known values, or any other string.
        #[cfg(feature = "schemars")]
        impl ::schemars::JsonSchema for #name {
            fn schema_name() -> ::std::string::String {
                #name_text.to_owned()
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::schema::Schema {
                let known = ::schemars::schema::SchemaObject {
                    instance_type: Some(::schemars::schema::InstanceType::String.into()),
                    enum_values: Some(vec![#(::serde_json::Value::from(#values)),*]),
                    ..::std::default::Default::default()
                };
                let any = ::schemars::schema::SchemaObject {
                    instance_type: Some(::schemars::schema::InstanceType::String.into()),
                    ..::std::default::Default::default()
                };
                ::schemars::schema::SchemaObject {
                    subschemas: Some(Box::new(::schemars::schema::SubschemaValidation {
                        any_of: Some(vec![known.into(), any.into()]),
                        ..::std::default::Default::default()
                    })),
                    ..::std::default::Default::default()
                }
                .into()
            }
        }

    }
}

/// `From<&str>`, `From<String>`, `FromStr` and `Display` of an open value set.
fn conversions(
    name: &Ident,
    catch_all: &Ident,
    values: &[String],
    variants: &[Ident],
) -> TokenStream {
    quote! {
        impl ::std::convert::From<&str> for #name {
            fn from(value: &str) -> Self {
                match value {
                    #(#values => Self::#variants,)*
                    other => Self::#catch_all(UnrecognizedValue(other.to_owned())),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for #name {
            fn from(value: ::std::string::String) -> Self {
                match value.as_str() {
                    #(#values => Self::#variants,)*
                    _ => Self::#catch_all(UnrecognizedValue(value)),
                }
            }
        }

        impl ::std::str::FromStr for #name {
            type Err = ::std::convert::Infallible;

            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::std::fmt::Display for #name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

    }
}

/// `Serialize` and `Deserialize` of an open value set, as its text.
fn serde_impls(name: &Ident, expecting: &str) -> TokenStream {
    quote! {
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                struct Visitor;

                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = #name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(#expecting)
                    }

                    fn visit_str<E: ::serde::de::Error>(self, value: &str) -> ::std::result::Result<#name, E> {
                        Ok(#name::from(value))
                    }

                    fn visit_string<E: ::serde::de::Error>(self, value: ::std::string::String) -> ::std::result::Result<#name, E> {
                        Ok(#name::from(value))
                    }
                }

                deserializer.deserialize_str(Visitor)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_follow_typify() {
        assert_eq!(variant_name("New"), "New");
        assert_eq!(variant_name("accessDenied"), "AccessDenied");
        assert_eq!(variant_name("1to9employees"), "X1to9employees");
        assert_eq!(
            variant_name("Morethan20000employees"),
            "Morethan20000employees"
        );
        assert_eq!(
            variant_name("return=representation"),
            "ReturnRepresentation"
        );
    }

    #[test]
    fn clashing_names_are_refused() {
        let open = OpenEnum {
            name: "Locale".into(),
            description: None,
            values: vec!["en-us".into(), "en_us".into()],
            subsets: None,
        };
        assert!(check(&open).unwrap_err().contains("both be named `EnUs`"));
        let open = OpenEnum {
            name: "Kind".into(),
            description: None,
            values: vec!["unrecognized".into()],
            subsets: None,
        };
        assert!(check(&open).unwrap_err().contains("catch-all"));
    }

    #[test]
    fn subsets_name_values_of_the_set_and_become_constants() {
        let open = |subsets: serde_json::Value| OpenEnum {
            name: "EventName".into(),
            description: None,
            values: vec!["a-created".into(), "a-updated".into(), "b-ready".into()],
            subsets: Some(subsets),
        };
        let good = open(serde_json::json!({"a-events": ["a-created", "a-updated"]}));
        assert_eq!(
            subsets(&good).unwrap(),
            vec![(
                "a-events".to_owned(),
                vec!["a-created".to_owned(), "a-updated".to_owned()]
            )]
        );
        let code = subset_tokens(&good).to_string();
        assert!(code.contains("pub const A_EVENTS"), "{code}");
        assert!(
            code.contains("Self :: ACreated , Self :: AUpdated"),
            "{code}"
        );
        let unknown = open(serde_json::json!({"a-events": ["a-deleted"]}));
        assert!(
            check(&unknown)
                .unwrap_err()
                .contains("`a-deleted`, which is not one")
        );
        let empty = open(serde_json::json!({"a-events": []}));
        assert!(check(&empty).unwrap_err().contains("non-empty list"));
        for name in ["A events", "-", "a-", "-a", "a--b", "a_b"] {
            let named = open(serde_json::json!({name: ["a-created"]}));
            assert!(
                check(&named).unwrap_err().contains("lower-case words"),
                "{name}"
            );
        }
        let known = open(serde_json::json!({"known": ["a-created"]}));
        assert!(check(&known).unwrap_err().contains("EventName::KNOWN"));
        let twice = open(serde_json::json!({"a-events": ["a-created", "a-created"]}));
        assert!(check(&twice).unwrap_err().contains("twice"));
        let list = open(serde_json::json!(["a-created"]));
        assert!(check(&list).unwrap_err().contains("must map"));
    }
}
