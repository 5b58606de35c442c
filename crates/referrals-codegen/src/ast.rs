//! What the generated `types` module says about each struct: its fields by wire name, with
//! their Rust names and types. The tables name members as the document does; the code that
//! reads them must name the fields as typify did, so it is found here rather than guessed.

use std::collections::BTreeMap;

use syn::{Fields, GenericArgument, Ident, Item, PathArguments, Type};

/// One field of a generated struct.
#[derive(Clone)]
pub struct Field {
    /// The member's name on the wire.
    pub wire: String,
    /// The field's Rust name.
    pub ident: Ident,
    /// The field's Rust type, as typify wrote it.
    pub ty: Type,
}

impl Field {
    /// Whether the field is an `Option`.
    pub fn optional(&self) -> bool {
        generic_argument(&self.ty, "Option").is_some()
    }

    /// The type inside the `Option`, or the type itself.
    pub fn value_type(&self) -> &Type {
        generic_argument(&self.ty, "Option").unwrap_or(&self.ty)
    }
}

/// The fields of every struct of the `types` module, by struct name.
#[derive(Default)]
pub struct Structs(BTreeMap<String, Vec<Field>>);

impl Structs {
    /// Reads the structs of the `types` module of `file`.
    pub fn read(file: &syn::File) -> Self {
        let mut structs = BTreeMap::new();
        for item in types_items(file) {
            let Item::Struct(item) = item else { continue };
            let Fields::Named(fields) = &item.fields else {
                continue;
            };
            let fields = fields
                .named
                .iter()
                .filter_map(|field| {
                    let ident = field.ident.clone()?;
                    let wire = serde_rename(&field.attrs).unwrap_or_else(|| ident.to_string());
                    Some(Field {
                        wire,
                        ident,
                        ty: field.ty.clone(),
                    })
                })
                .collect();
            structs.insert(item.ident.to_string(), fields);
        }
        Self(structs)
    }

    /// The fields of the struct `name`.
    pub fn fields(&self, name: &str) -> Option<&[Field]> {
        self.0.get(name).map(Vec::as_slice)
    }

    /// The field of the struct `name` whose wire name is `wire`.
    pub fn field(&self, name: &str, wire: &str) -> Option<&Field> {
        self.fields(name)?.iter().find(|field| field.wire == wire)
    }

    /// The fields along `segments` from the struct `from`: each field, and the struct it is in.
    /// A field holding an array leads into the type of its items.
    pub fn walk(&self, from: &str, segments: &[String]) -> Option<Vec<Field>> {
        let mut current = from.to_owned();
        let mut found = Vec::new();
        for segment in segments {
            let field = self.field(&current, segment)?.clone();
            let inner = field.value_type();
            let inner = generic_argument(inner, "Vec").unwrap_or(inner);
            current = last_ident(inner).unwrap_or_default();
            found.push(field);
        }
        Some(found)
    }
}

/// The items of the `types` module of `file`.
pub fn types_items(file: &syn::File) -> &[Item] {
    file.items
        .iter()
        .find_map(|item| match item {
            Item::Mod(module) if module.ident == "types" => {
                module.content.as_ref().map(|(_, items)| items.as_slice())
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// The items of the `types` module of `file`, to change or extend.
pub fn types_items_mut(file: &mut syn::File) -> Option<&mut Vec<Item>> {
    file.items.iter_mut().find_map(|item| match item {
        Item::Mod(module) if module.ident == "types" => {
            module.content.as_mut().map(|(_, items)| items)
        }
        _ => None,
    })
}

/// `T` of a type written `...::Wrapper<T>` (such as `::std::option::Option<T>`).
pub fn generic_argument<'a>(ty: &'a Type, wrapper: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != wrapper {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.first()? {
        GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}

/// The last name of a type's path (`Member` for `super::Member`).
pub fn last_ident(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    Some(path.path.segments.last()?.ident.to_string())
}

/// The `rename = "..."` of a field's `#[serde(...)]` attributes.
fn serde_rename(attrs: &[syn::Attribute]) -> Option<String> {
    let mut found = None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                found = Some(meta.value()?.parse::<syn::LitStr>()?.value());
            } else if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            }
            Ok(())
        });
    }
    found
}
