//! The `patching` module of the generated tables: JSON Patch (RFC 6902) on the resource, as
//! `x-patchable` allows.
//!
//! - `PatchPath`: the patchable paths that name a member, where a `move` or `copy` may take
//!   its value from;
//! - `apply`: one operation, of any op, on the resource. What each op does is the
//!   hand-written `crate::patch::Step`; this module gives each path its field access (set,
//!   read, take);
//! - `operation`, `value_of`, `from_of`: a `JsonPatchOperation` made and read whatever members
//!   the document's schema gives it, so that the hand-written layer never names its fields;
//! - the typed methods of `crate::patch::Patch`, one per path and op (`set_status`,
//!   `append_team`, `remove_<member>`, `test_<member>`, `move_<member>_from`...).

use heck::ToUpperCamelCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::ast::{Field, Structs, generic_argument, last_ident};
use crate::reader::{Facts, Patchable};

/// An entry of `x-patchable` with the fields along its path.
struct Entry<'a> {
    entry: &'a Patchable,
    /// The fields from the resource to the member, the member last.
    fields: Vec<Field>,
}

impl Entry<'_> {
    fn last(&self) -> &Field {
        self.fields.last().expect("a pointer names a member")
    }

    fn variant(&self) -> Ident {
        format_ident!("{}", self.entry.segments.join("-").to_upper_camel_case())
    }

    fn takes(&self, op: &str) -> bool {
        self.entry.ops.iter().any(|declared| declared == op)
    }
}

/// The `patching` module.
pub fn tokens(facts: &Facts, structs: &Structs, resource: &str) -> Result<TokenStream, String> {
    let mut entries = Vec::new();
    for entry in &facts.patchable {
        let fields = structs.walk(resource, &entry.segments).ok_or_else(|| {
            format!(
                "the patchable path `{}` has no field in the generated type",
                entry.pointer
            )
        })?;
        let entry = Entry { entry, fields };
        refuse_removing_a_required_member(&entry)?;
        entries.push(entry);
    }
    let members: Vec<&Entry> = entries.iter().filter(|e| !e.entry.append).collect();
    let resource = format_ident!("{resource}");
    let arms = entries.iter().map(apply_arm);
    let methods = entries
        .iter()
        .map(builder_methods)
        .collect::<Result<Vec<_>, String>>()?;
    let paths = patch_path(&members);
    let access = access(&members, &resource);
    let operation = operation_shape(structs)?;
    Ok(quote! {
        /// JSON Patch on the resource, as `x-patchable` allows.
        pub mod patching {
            #[allow(unused_imports)]
            use super::types::*;
            use crate::patch::{PatchError, Step};

            #paths
            #access
            #operation

            /// Applies one JSON Patch operation to `target`, as RFC 6902 defines its op: its
            /// path must be one of `x-patchable` and its op one accepted there; a value must
            /// be of the member's type, and a `from` one of [`PatchPath`]. On an error,
            /// `target` may be changed in part: apply a patch to a copy.
            pub fn apply(
                target: &mut #resource,
                operation: &JsonPatchOperation,
            ) -> ::std::result::Result<(), PatchError> {
                match operation.path.as_str() {
                    #(#arms)*
                    _ => Err(PatchError::unknown_path(operation)),
                }
            }

            impl crate::patch::Patch {
                #(#methods)*
            }
        }
    })
}

/// `remove` (and a `move` from the path) would leave a required member absent.
fn refuse_removing_a_required_member(entry: &Entry) -> Result<(), String> {
    if entry.takes("remove") && !entry.last().optional() {
        return Err(format!(
            "`x-patchable` entry `{}` takes `remove`, and the member is required (a referral \
             always has it): take `remove` out of the entry, or the member out of its \
             schema's `required`",
            entry.entry.pointer
        ));
    }
    Ok(())
}

/// `PatchPath`: the member paths, with their pointers.
fn patch_path(members: &[&Entry]) -> TokenStream {
    let variants: Vec<Ident> = members.iter().map(|entry| entry.variant()).collect();
    let pointers = members.iter().map(|entry| &entry.entry.pointer);
    let docs = members
        .iter()
        .map(|entry| format!("`{}`", entry.entry.pointer));
    quote! {
        /// A patchable path that names a member (not an append at `/-`): where a `move` or a
        /// `copy` takes its value from.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum PatchPath {
            #( #[doc = #docs] #variants, )*
        }

        impl PatchPath {
            /// Every one, in the document's order.
            pub const ALL: &'static [PatchPath] = &[#(PatchPath::#variants),*];

            /// The JSON Pointer.
            pub const fn pointer(self) -> &'static str {
                match self { #( PatchPath::#variants => #pointers, )* }
            }

            /// The path of a JSON Pointer, if it is one.
            pub fn from_pointer(pointer: &str) -> ::std::option::Option<Self> {
                Self::ALL.iter().copied().find(|path| path.pointer() == pointer)
            }
        }

        impl ::std::fmt::Display for PatchPath {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.pointer())
            }
        }
    }
}

/// `read` and `take`: the value at a member path as JSON, and the same taken away.
fn access(members: &[&Entry], resource: &Ident) -> TokenStream {
    let variants: Vec<Ident> = members.iter().map(|entry| entry.variant()).collect();
    let reads = members
        .iter()
        .map(|entry| crate::rust_names::read_chain(quote!(target), &entry.fields));
    let takes = members.iter().map(|entry| {
        if entry.last().optional() {
            let chain = take_chain(&entry.fields);
            quote!(::std::result::Result::Ok(#chain.map(|value| crate::patch::encode(path, &value)).transpose()?))
        } else {
            quote!(::std::result::Result::Err(PatchError::required(path)))
        }
    });
    quote! {
        /// The value at `path` as JSON, or `None` when the member is absent.
        fn read(
            target: &#resource,
            path: PatchPath,
        ) -> ::std::result::Result<::std::option::Option<crate::PatchValue>, PatchError> {
            match path {
                #( PatchPath::#variants => #reads
                    .map(|value| crate::patch::encode(path.pointer(), value))
                    .transpose(), )*
            }
        }

        /// Takes the value at `path` away, as JSON: `None` when the member was absent.
        fn take(
            target: &mut #resource,
            path: PatchPath,
        ) -> ::std::result::Result<::std::option::Option<crate::PatchValue>, PatchError> {
            let pointer = path.pointer();
            match path {
                #( PatchPath::#variants => { let path = pointer; #takes } )*
            }
        }
    }
}

/// `Option<T>` of the member at the end of `fields`, taken out of `target` (its parents are
/// not made when absent).
fn take_chain(fields: &[Field]) -> TokenStream {
    let (last, parents) = fields.split_last().expect("a pointer names a member");
    let name = &last.ident;
    let Some((first, rest)) = parents.split_first() else {
        return quote!(target.#name.take());
    };
    let first_name = &first.ident;
    let mut chain = if first.optional() {
        quote!(target.#first_name.as_mut())
    } else {
        quote!(::std::option::Option::Some(&mut target.#first_name))
    };
    for field in rest {
        let field_name = &field.ident;
        chain = if field.optional() {
            quote!(#chain.and_then(|value| value.#field_name.as_mut()))
        } else {
            quote!(#chain.map(|value| &mut value.#field_name))
        };
    }
    quote!(#chain.and_then(|value| value.#name.take()))
}

/// The arm of `apply` for `entry`.
fn apply_arm(entry: &Entry) -> TokenStream {
    let pointer = &entry.entry.pointer;
    let ops = entry
        .entry
        .ops
        .iter()
        .map(|op| crate::rust_names::patch_op(op));
    let (last, parents) = entry.fields.split_last().expect("a pointer names a member");
    let set = set_member(last, parents, entry.entry.append);
    if entry.entry.append {
        return quote! {
            #pointer => {
                crate::patch::allow(operation, &[#(#ops),*])?;
                match Step::of(operation)? {
                    Step::Set(value) => {
                        let value = crate::patch::decode(operation, value)?;
                        #set
                    }
                    _ => return Err(PatchError::not_at_append(operation)),
                }
                Ok(())
            }
        };
    }
    let variant = entry.variant();
    let read = crate::rust_names::read_chain(quote!(target), &entry.fields);
    quote! {
        #pointer => {
            crate::patch::allow(operation, &[#(#ops),*])?;
            let value = match Step::of(operation)? {
                Step::Set(value) => value.clone(),
                Step::Remove => {
                    return take(target, PatchPath::#variant)?
                        .map(|_| ())
                        .ok_or_else(|| PatchError::absent(operation, #pointer));
                }
                Step::Test(value) => {
                    let expected = crate::patch::decode(operation, value)?;
                    return crate::patch::test(operation, #read, ::std::option::Option::as_ref(&expected));
                }
                Step::Move(from) => take(target, from)?
                    .ok_or_else(|| PatchError::absent(operation, from.pointer()))?,
                Step::Copy(from) => read(target, from)?
                    .ok_or_else(|| PatchError::absent(operation, from.pointer()))?,
            };
            let value = crate::patch::decode(operation, &value)?;
            #set
            Ok(())
        }
    }
}

/// The statements that set the member `last` under `parents` of `target` to `value` (or
/// append `value` to it), making the parents that do not exist yet.
fn set_member(last: &Field, parents: &[Field], append: bool) -> TokenStream {
    let descend = parents.iter().map(|field| {
        let name = &field.ident;
        if field.optional() {
            quote!(let target = target.#name.get_or_insert_with(::std::default::Default::default);)
        } else {
            quote!(let target = &mut target.#name;)
        }
    });
    let name = &last.ident;
    let change = match (append, last.optional()) {
        (true, true) => {
            quote!(target.#name.get_or_insert_with(::std::default::Default::default).push(value);)
        }
        (true, false) => quote!(target.#name.push(value);),
        (false, true) => quote!(target.#name = ::std::option::Option::Some(value);),
        (false, false) => quote!(target.#name = value;),
    };
    quote!(#( #descend )* #change)
}

/// The typed methods of `Patch` for `entry`: `append_...` for `/-`; `set_...` (with `replace`
/// when the path takes it, else `add`); `remove_...`, `test_...`, `move_..._from` and
/// `copy_..._from` for the ops it takes.
fn builder_methods(entry: &Entry) -> Result<TokenStream, String> {
    let pointer = &entry.entry.pointer;
    let member = crate::rust_names::rust_name(&entry.entry.segments.join("-"));
    let path = entry.entry.segments.join("/");
    let last = entry.last();
    if entry.entry.append {
        let item = generic_argument(last.value_type(), "Vec")
            .ok_or_else(|| format!("`{pointer}` appends to a member that is not a list"))?;
        let doc = format!("Appends an item to `{path}` (`add` at `{pointer}`).");
        let method = format_ident!("append_{member}");
        let op = crate::rust_names::patch_op("add");
        return Ok(quote! {
            #[doc = #doc]
            pub fn #method(self, value: #item) -> Self {
                self.push_value(#op, #pointer, &value)
            }
        });
    }
    let mut methods = TokenStream::new();
    let set_op = ["replace", "add"].into_iter().find(|op| entry.takes(op));
    if let Some(op) = set_op {
        let doc = format!("Sets `{path}` (`{op}` at `{pointer}`).");
        methods.extend(value_method(
            &format_ident!("set_{member}"),
            op,
            pointer,
            last,
            &doc,
        ));
    }
    if entry.takes("test") {
        let doc =
            format!("Fails the whole patch unless `{path}` holds `value` (`test` at `{pointer}`).");
        methods.extend(value_method(
            &format_ident!("test_{member}"),
            "test",
            pointer,
            last,
            &doc,
        ));
    }
    if entry.takes("remove") {
        let doc = format!("Removes `{path}` (`remove` at `{pointer}`).");
        let method = format_ident!("remove_{member}");
        let op = crate::rust_names::patch_op("remove");
        methods.extend(quote! {
            #[doc = #doc]
            pub fn #method(self) -> Self {
                self.push_bare(#op, #pointer, ::std::option::Option::None)
            }
        });
    }
    for (op, verb) in [("move", "Moves"), ("copy", "Copies")] {
        if entry.takes(op) {
            let doc = format!(
                "{verb} the value at `from` to `{path}` (`{op}` at `{pointer}`); it must be \
                 of the member's type."
            );
            let method = format_ident!("{op}_{member}_from");
            let op = crate::rust_names::patch_op(op);
            methods.extend(quote! {
                #[doc = #doc]
                pub fn #method(self, from: PatchPath) -> Self {
                    self.push_bare(#op, #pointer, ::std::option::Option::Some(from))
                }
            });
        }
    }
    Ok(methods)
}

/// A method that takes a value of the member's type (any text, for a string member).
fn value_method(method: &Ident, op: &str, pointer: &str, last: &Field, doc: &str) -> TokenStream {
    let op = crate::rust_names::patch_op(op);
    let ty = last.value_type();
    if last_ident(ty).as_deref() == Some("String") {
        quote! {
            #[doc = #doc]
            pub fn #method(self, value: impl ::std::convert::Into<::std::string::String>) -> Self {
                let value: ::std::string::String = value.into();
                self.push_value(#op, #pointer, &value)
            }
        }
    } else {
        quote! {
            #[doc = #doc]
            pub fn #method(self, value: #ty) -> Self {
                self.push_value(#op, #pointer, &value)
            }
        }
    }
}

/// `operation`, `value_of` and `from_of`, written for the fields that the document's
/// `JsonPatchOperation` has: `value` and `from` may be required, optional or absent.
fn operation_shape(structs: &Structs) -> Result<TokenStream, String> {
    let fields = structs
        .fields("JsonPatchOperation")
        .ok_or("the document has no `JsonPatchOperation` schema of type object")?;
    let mut values = Vec::new();
    for field in fields {
        let name = &field.ident;
        values.push(match (field.wire.as_str(), field.optional()) {
            ("op", false) => quote!(op),
            ("path", false) => quote!(path),
            ("value" | "from", true) => quote!(#name),
            ("value" | "from", false) => quote!(#name: #name?),
            (_, _) if field.ident == "extra" || field.optional() => {
                quote!(#name: ::std::default::Default::default())
            }
            (wire, _) => {
                return Err(format!(
                    "`JsonPatchOperation` requires `{wire}`, which RFC 6902 does not define: \
                     take it out of its `required` (#/components/schemas/JsonPatchOperation/required)"
                ));
            }
        });
    }
    let has = |wire: &str| fields.iter().find(|field| field.wire == wire);
    let value_of = match has("value") {
        Some(field) if field.optional() => quote!(operation.value.as_ref()),
        Some(_) => quote!(::std::option::Option::Some(&operation.value)),
        None => quote!(::std::option::Option::None),
    };
    let from_of = match has("from") {
        Some(field) if field.optional() => quote!(operation.from.as_deref()),
        Some(_) => quote!(::std::option::Option::Some(operation.from.as_str())),
        None => quote!(::std::option::Option::None),
    };
    // A member that the schema lacks can only be absent.
    let unused = ["value", "from"]
        .into_iter()
        .filter(|wire| has(wire).is_none())
        .map(|wire| {
            let name = format_ident!("{wire}");
            quote!(if #name.is_some() { return ::std::option::Option::None; })
        });
    Ok(quote! {
        /// A `JsonPatchOperation`; `None` when the document's schema cannot hold the members
        /// given (or requires one that is not).
        pub fn operation(
            op: JsonPatchOp,
            path: ::std::string::String,
            value: ::std::option::Option<crate::PatchValue>,
            from: ::std::option::Option<::std::string::String>,
        ) -> ::std::option::Option<JsonPatchOperation> {
            #(#unused)*
            ::std::option::Option::Some(JsonPatchOperation { #(#values),* })
        }

        /// The `value` of an operation, if it has one.
        pub fn value_of(operation: &JsonPatchOperation) -> ::std::option::Option<&crate::PatchValue> {
            #value_of
        }

        /// The `from` of an operation, if it has one.
        pub fn from_of(operation: &JsonPatchOperation) -> ::std::option::Option<&str> {
            #from_of
        }
    })
}
