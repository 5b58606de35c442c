//! Doc comments for the public items that progenitor and typify leave undocumented.
//!
//! The generated client is public API, and the client crate denies missing docs. Typify gives
//! no doc to the catch-all map of unknown members, to struct builders and their setters;
//! progenitor none to the setters of operation builders. This pass adds one wherever a doc is
//! missing, taken from the document where it says something (a member's or a parameter's
//! description) and written from the item's role otherwise.

use std::collections::BTreeMap;

use heck::{ToPascalCase, ToSnakeCase};
use openapiv3::{OpenAPI, ReferenceOr};
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Fields, ImplItem, Item, Visibility};

/// Adds a doc comment to every public item of `file` that has none, and indents the
/// multi-line entries of progenitor's argument lists.
pub fn fill(file: &mut syn::File, openapi: &OpenAPI) {
    let mut docs = Docs {
        modules: Vec::new(),
        members: member_docs(file),
        parameters: parameter_docs(openapi),
    };
    docs.visit_file_mut(file);
    ArgumentLists.visit_file_mut(file);
}

/// Progenitor lists an operation's parameters under "Arguments:" as `- name: description`,
/// with the description's later lines unindented, so Markdown (and clippy's
/// `doc_lazy_continuation`) reads them as text outside the list. They are indented here.
struct ArgumentLists;

impl VisitMut for ArgumentLists {
    fn visit_attribute_mut(&mut self, attr: &mut Attribute) {
        let syn::Meta::NameValue(meta) = &mut attr.meta else {
            return;
        };
        if !meta.path.is_ident("doc") {
            return;
        }
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) = &mut meta.value
        else {
            return;
        };
        let value = text.value();
        if let Some(fixed) = indent_arguments(&value) {
            *text = syn::LitStr::new(&fixed, text.span());
        }
    }
}

fn indent_arguments(doc: &str) -> Option<String> {
    let start = doc.find("\nArguments:\n")? + "\nArguments:\n".len();
    let (head, tail) = doc.split_at(start);
    let mut out = head.to_owned();
    let mut in_list = true;
    for line in tail.split_inclusive('\n') {
        if line.starts_with("```") {
            in_list = false;
        }
        if in_list && !line.starts_with("- ") && !line.trim().is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
    }
    Some(out)
}

struct Docs {
    /// The path of modules around the item being visited.
    modules: Vec<String>,
    /// For each generated type, the first line of each field's doc.
    members: BTreeMap<String, BTreeMap<String, String>>,
    /// For each operation builder, the first sentence of each parameter's description.
    parameters: BTreeMap<String, BTreeMap<String, String>>,
}

impl Docs {
    fn in_module(&self, path: &[&str]) -> bool {
        self.modules
            .iter()
            .map(String::as_str)
            .eq(path.iter().copied())
    }
}

impl VisitMut for Docs {
    fn visit_item_mod_mut(&mut self, module: &mut syn::ItemMod) {
        if is_public(&module.vis) && !has_doc(&module.attrs) {
            let doc = match module.ident.to_string().as_str() {
                "builder" => {
                    "Builders that make a value member by member and check it on conversion."
                }
                "error" => "Errors of conversions between generated types.",
                _ => "Generated items.",
            };
            add_doc(&mut module.attrs, doc);
        }
        self.modules.push(module.ident.to_string());
        visit_mut::visit_item_mod_mut(self, module);
        self.modules.pop();
    }

    fn visit_item_struct_mut(&mut self, item: &mut syn::ItemStruct) {
        let name = item.ident.to_string();
        if is_public(&item.vis) && !has_doc(&item.attrs) {
            let doc = if self.in_module(&["types", "builder"]) {
                format!(
                    "Builder of [`{name}`](super::{name}): set members one by one, then convert \
                     it with `TryFrom`, which reports a member that could not be set."
                )
            } else if self.in_module(&["types", "error"]) && name == "ConversionError" {
                "A value that could not be converted to the generated type it was given for.".into()
            } else {
                format!("The `{name}` type.")
            };
            add_doc(&mut item.attrs, &doc);
        }
        if let Fields::Named(fields) = &mut item.fields {
            for field in fields.named.iter_mut() {
                if !is_public(&field.vis) || has_doc(&field.attrs) {
                    continue;
                }
                let member = field
                    .ident
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let doc = if member == "extra" && is_flattened(&field.attrs) {
                    "Members that the document does not name (yet): kept as received and written \
                     back unchanged."
                        .to_owned()
                } else {
                    format!("The `{member}` member.")
                };
                add_doc(&mut field.attrs, &doc);
            }
        }
        visit_mut::visit_item_struct_mut(self, item);
    }

    fn visit_item_enum_mut(&mut self, item: &mut syn::ItemEnum) {
        if is_public(&item.vis) && !has_doc(&item.attrs) {
            add_doc(&mut item.attrs, &format!("The `{}` type.", item.ident));
        }
        for variant in item.variants.iter_mut() {
            if !has_doc(&variant.attrs) {
                let value =
                    serde_rename(&variant.attrs).unwrap_or_else(|| variant.ident.to_string());
                add_doc(&mut variant.attrs, &format!("`{value}`"));
            }
        }
        visit_mut::visit_item_enum_mut(self, item);
    }

    fn visit_item_impl_mut(&mut self, item: &mut syn::ItemImpl) {
        if item.trait_.is_some() {
            return visit_mut::visit_item_impl_mut(self, item);
        }
        let self_name = match &*item.self_ty {
            syn::Type::Path(path) => path
                .path
                .segments
                .last()
                .map(|segment| segment.ident.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        let in_type_builders = self.in_module(&["types", "builder"]);
        let in_operation_builders = self.in_module(&["builder"]);
        for member in item.items.iter_mut() {
            let ImplItem::Fn(function) = member else {
                continue;
            };
            if !is_public(&function.vis) || has_doc(&function.attrs) {
                continue;
            }
            let name = function.sig.ident.to_string();
            let doc = if name == "builder" {
                format!("A builder of `{self_name}`, to set its members one by one.")
            } else if in_type_builders {
                match self
                    .members
                    .get(&self_name)
                    .and_then(|fields| fields.get(&name))
                {
                    Some(field_doc) => format!("Sets `{name}`: {field_doc}"),
                    None => format!("Sets `{name}`."),
                }
            } else if in_operation_builders && name == "new" {
                format!(
                    "Starts a `{self_name}` request on `client`; set its parameters, then `send` it."
                )
            } else if in_operation_builders && name == "body_map" {
                "Changes the request body in place, through a builder of its type.".to_owned()
            } else if in_operation_builders {
                match self
                    .parameters
                    .get(&self_name)
                    .and_then(|params| params.get(&name))
                {
                    Some(description) => format!("Sets the `{name}` parameter: {description}"),
                    None => format!("Sets `{name}`."),
                }
            } else {
                format!("`{name}`.")
            };
            add_doc(&mut function.attrs, &doc);
        }
        visit_mut::visit_item_impl_mut(self, item);
    }
}

/// The first line of the doc of every field of every struct in `mod types`.
fn member_docs(file: &syn::File) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut members = BTreeMap::new();
    let types = file.items.iter().find_map(|item| match item {
        Item::Mod(module) if module.ident == "types" => module.content.as_ref(),
        _ => None,
    });
    for item in types.map(|(_, items)| items.as_slice()).unwrap_or_default() {
        let Item::Struct(structure) = item else {
            continue;
        };
        let Fields::Named(fields) = &structure.fields else {
            continue;
        };
        let docs = fields
            .named
            .iter()
            .filter_map(|field| {
                Some((
                    field.ident.as_ref()?.to_string(),
                    first_doc_line(&field.attrs)?,
                ))
            })
            .collect();
        members.insert(structure.ident.to_string(), docs);
    }
    members
}

/// The first sentence of each parameter's description, by operation builder and setter name
/// (named as progenitor names them: PascalCase operation id, snake_case parameter).
fn parameter_docs(openapi: &OpenAPI) -> BTreeMap<String, BTreeMap<String, String>> {
    let components = openapi.components.as_ref();
    let resolve = |parameter: &ReferenceOr<openapiv3::Parameter>| match parameter {
        ReferenceOr::Item(parameter) => Some(parameter.clone()),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/parameters/")?;
            components?.parameters.get(name)?.as_item().cloned()
        }
    };
    let mut docs = BTreeMap::new();
    for (_, item) in openapi.paths.iter() {
        let Some(item) = item.as_item() else { continue };
        for (_, operation) in item.iter() {
            let Some(id) = &operation.operation_id else {
                continue;
            };
            let params = item
                .parameters
                .iter()
                .chain(&operation.parameters)
                .filter_map(resolve)
                .filter_map(|parameter| {
                    let data = parameter.parameter_data();
                    let description = data.description.as_deref()?;
                    Some((setter_name(&data.name), first_sentence(description)))
                })
                .collect();
            docs.insert(id.to_pascal_case(), params);
        }
    }
    docs
}

fn setter_name(parameter: &str) -> String {
    parameter
        .replace(|c: char| !(c.is_alphanumeric() || c == '_'), "-")
        .to_snake_case()
}

fn first_sentence(text: &str) -> String {
    let paragraph = text.split("\n\n").next().unwrap_or(text);
    let flat = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find(". ") {
        Some(end) => flat[..=end].to_owned(),
        None => flat,
    }
}

fn is_public(visibility: &Visibility) -> bool {
    matches!(visibility, Visibility::Public(_))
}

fn has_doc(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| attr.path().is_ident("doc"))
}

fn first_doc_line(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| {
        let syn::Meta::NameValue(meta) = &attr.meta else {
            return None;
        };
        if !meta.path.is_ident("doc") {
            return None;
        }
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) = &meta.value
        else {
            return None;
        };
        let text = text.value();
        let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
        Some(line.to_owned())
    })
}

fn is_flattened(attrs: &[Attribute]) -> bool {
    serde_arguments(attrs)
        .iter()
        .any(|(key, _)| key == "flatten")
}

fn serde_rename(attrs: &[Attribute]) -> Option<String> {
    serde_arguments(attrs)
        .into_iter()
        .find_map(|(key, value)| (key == "rename").then_some(value).flatten())
}

/// The `key` or `key = "value"` arguments of the `#[serde(...)]` attributes.
fn serde_arguments(attrs: &[Attribute]) -> Vec<(String, Option<String>)> {
    let mut arguments = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let value = if meta.input.peek(syn::Token![=]) {
                Some(meta.value()?.parse::<syn::LitStr>()?.value())
            } else {
                None
            };
            arguments.push((key, value));
            Ok(())
        });
    }
    arguments
}

fn add_doc(attrs: &mut Vec<Attribute>, doc: &str) {
    attrs.insert(0, syn::parse_quote!(#[doc = #doc]));
}
