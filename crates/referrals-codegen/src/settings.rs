//! The generation settings: how progenitor and typify are told to write the client.

use openapiv3::{OpenAPI, ReferenceOr, SchemaKind, Type};
use progenitor_impl::{
    GenerationSettings, HooksMode, InterfaceStyle, TagStyle, TypeImpl, TypePatch,
};
use quote::quote;

use crate::open_enum::OpenEnum;

/// The crate of the generated model (types, open value sets, tables), which the client's
/// generated code names for its types.
pub const MODEL_CRATE: &str = "referrals_model";
/// The crate of the generated client, which the httpmock helpers name for its types.
pub const CLIENT_CRATE: &str = "referrals_client";

/// The derive of `schemars::JsonSchema`, which the model puts behind its feature `schemars`.
pub const SCHEMARS_DERIVE: &str = "schemars::JsonSchema";
/// The model's feature that turns the derive on.
pub const SCHEMARS_FEATURE: &str = "schemars";

/// Where the CLI's generated commands find the client: its generated module, which holds the
/// `Client`, its extension traits and the types.
pub const CLI_CLIENT_PATH: &str = "referrals_client::generated";

/// The money schema. The client keeps it as exact decimal text (`crate::Amount`).
pub const AMOUNT: &str = "Amount";
/// The value of a JSON Patch operation. The client keeps it as raw JSON text
/// (`crate::PatchValue`), so that money in a patch keeps its digits too.
pub const PATCH_VALUE: &str = "JsonPatchValue";

/// The settings for `openapi`, whose open value sets are `open_enums`.
pub fn settings(openapi: &OpenAPI, open_enums: &[OpenEnum]) -> GenerationSettings {
    common(openapi, open_enums, "crate::types", true)
}

/// The settings of the webhooks document, whose types live in the client's `webhooks` module
/// (no `schemars` derive: the client has no such feature).
pub fn webhooks_settings(openapi: &OpenAPI, open_enums: &[OpenEnum]) -> GenerationSettings {
    common(openapi, open_enums, "crate::webhooks::types", false)
}

fn common(
    openapi: &OpenAPI,
    open_enums: &[OpenEnum],
    types: &str,
    schemars: bool,
) -> GenerationSettings {
    let mut settings = GenerationSettings::new();
    settings
        // One builder per operation: the list operation alone has nine optional parameters.
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Separate)
        .with_derive("PartialEq");
    if schemars {
        // For users who describe the types with JSON Schema, and for the contract test that
        // compares what the types say with the document. The model crate puts it behind its
        // feature `schemars` (see `crate::model`), so that it costs nothing by default.
        settings.with_derive(SCHEMARS_DERIVE);
    }
    settings
        // The client's runtime (auth, request ids, retries, tracing) lives in the hand-written
        // `crate::Runtime`, and `crate::Client` must implement `ClientHooks` for it: with
        // `Expected`, forgetting that impl is a compile error rather than a silent default.
        .with_inner_type(quote!(crate::Runtime))
        .with_hooks(HooksMode::Expected);

    // Types written by hand in referrals-client, or by this crate (the open value sets), stand
    // in for what typify would make of these schemas.
    let text_impls = || [TypeImpl::Display, TypeImpl::FromStr].into_iter();
    settings.with_replacement(AMOUNT, "crate::Amount", text_impls());
    settings.with_replacement(PATCH_VALUE, "crate::PatchValue", std::iter::empty());
    for open in open_enums {
        settings.with_replacement(&open.name, format!("{types}::{}", open.name), text_impls());
    }

    // Typify derives `Default` only for structs without a catch-all map of unknown members;
    // every open object of the document has one and nothing required, so `Default` is added
    // here, which lets users write `Referral { status: .., ..Default::default() }`.
    let mut default = TypePatch::default();
    default.with_derive("Default");
    for name in open_objects_without_required(openapi) {
        settings.with_patch(name, &default);
    }
    settings
}

fn open_objects_without_required(openapi: &OpenAPI) -> Vec<String> {
    let Some(components) = &openapi.components else {
        return Vec::new();
    };
    components
        .schemas
        .iter()
        .filter_map(|(name, schema)| {
            let ReferenceOr::Item(schema) = schema else {
                return None;
            };
            let SchemaKind::Type(Type::Object(object)) = &schema.schema_kind else {
                return None;
            };
            (object.additional_properties.is_some() && object.required.is_empty())
                .then(|| name.clone())
        })
        .collect()
}
