//! Running progenitor so that its failures become errors that name the culprit.
//!
//! Progenitor reports some documents it cannot handle with an error, and others with a panic
//! (`todo!`, `assert!`, `unwrap`) whose message names neither an operation nor a schema. Both
//! are caught here; then each component schema (with the schemas it refers to) and each
//! operation is generated alone, and the smallest part that fails on its own is named.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::{Arc, Mutex};

use openapiv3::{Components, OpenAPI, Paths, ReferenceOr};
use proc_macro2::TokenStream;
use progenitor_impl::{GenerationSettings, Generator};

use crate::Culprit;

/// Generates the client's tokens, or says why progenitor could not.
pub fn run(settings: &GenerationSettings, openapi: &OpenAPI) -> Result<TokenStream, String> {
    match quietly(|| Generator::new(settings).generate_tokens(openapi)) {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(panic),
    }
}

/// Generates the typed `httpmock` helpers, or says why progenitor could not.
pub fn quietly_httpmock(
    settings: &GenerationSettings,
    openapi: &OpenAPI,
    client_crate: &str,
) -> Result<TokenStream, String> {
    match quietly(|| Generator::new(settings).httpmock(openapi, client_crate)) {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(panic),
    }
}

/// Generates progenitor's clap commands, or says why progenitor could not.
pub fn quietly_cli(
    settings: &GenerationSettings,
    openapi: &OpenAPI,
    client_path: &str,
) -> Result<TokenStream, String> {
    match quietly(|| Generator::new(settings).cli(openapi, client_path)) {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => Err(panic),
    }
}

/// Finds the smallest part of `openapi` that fails alone, and its failure message.
pub fn culprit(settings: &GenerationSettings, openapi: &OpenAPI) -> Option<(Culprit, String)> {
    let components = openapi.components.clone().unwrap_or_default();
    let closures: BTreeMap<&String, BTreeSet<String>> = components
        .schemas
        .keys()
        .map(|name| (name, closure(name, &components)))
        .collect();

    let mut failing = BTreeMap::new();
    let mut by_size: Vec<_> = closures.iter().collect();
    by_size.sort_by_key(|(name, closure)| (closure.len(), *name));
    for (name, closure) in by_size {
        // A schema whose dependencies already fail tells nothing new.
        if closure
            .iter()
            .any(|dependency| failing.contains_key(dependency))
        {
            continue;
        }
        let schemas = components
            .schemas
            .iter()
            .filter(|(other, _)| closure.contains(*other))
            .map(|(other, schema)| (other.clone(), schema.clone()))
            .collect();
        let alone = OpenAPI {
            paths: Paths::default(),
            components: Some(Components {
                schemas,
                ..Components::default()
            }),
            ..openapi.clone()
        };
        if let Err(message) = run(settings, &alone) {
            failing.insert((*name).clone(), message);
        }
    }
    if let Some((name, message)) = failing.into_iter().next() {
        return Some((Culprit::Schema(name), message));
    }

    for (path, item) in &openapi.paths.paths {
        let ReferenceOr::Item(item) = item else {
            continue;
        };
        for (method, operation) in item.iter() {
            let mut only = item.clone();
            for (other, slot) in [
                ("get", &mut only.get),
                ("put", &mut only.put),
                ("post", &mut only.post),
                ("delete", &mut only.delete),
                ("options", &mut only.options),
                ("head", &mut only.head),
                ("patch", &mut only.patch),
                ("trace", &mut only.trace),
            ] {
                if other != method {
                    *slot = None;
                }
            }
            let mut alone = openapi.clone();
            alone.paths.paths = [(path.clone(), ReferenceOr::Item(only))]
                .into_iter()
                .collect();
            if let Err(message) = run(settings, &alone) {
                let culprit = Culprit::Operation {
                    operation_id: operation
                        .operation_id
                        .clone()
                        .unwrap_or_else(|| "(no operationId)".into()),
                    method: method.to_uppercase(),
                    path: path.clone(),
                };
                return Some((culprit, message));
            }
        }
    }
    None
}

/// The component schemas that `name` needs: itself and every schema it refers to, transitively.
fn closure(name: &str, components: &Components) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get(&next) {
            let value = serde_json::to_value(schema).expect("a schema serializes to JSON");
            collect_refs(&value, &mut todo);
        }
    }
    seen
}

fn collect_refs(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(object) => {
            if let Some(name) = object
                .get("$ref")
                .and_then(|target| target.as_str())
                .and_then(|target| target.strip_prefix("#/components/schemas/"))
            {
                into.push(name.to_owned());
            }
            object.values().for_each(|child| collect_refs(child, into));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|child| collect_refs(child, into)),
        _ => {}
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// One caller at a time swaps the process-wide panic hook.
static HOOK: Mutex<()> = Mutex::new(());

/// Runs `f`, turning a panic into its message. While it runs, panics on this thread are not
/// printed (they become the error); panics on other threads go to the previous hook as usual.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let _guard = HOOK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = Arc::new(panic::take_hook());
    let forward = Arc::clone(&previous);
    panic::set_hook(Box::new(move |info| {
        if QUIET.get() {
            LAST_PANIC.set(Some(describe(info)));
        } else {
            forward(info);
        }
    }));

    QUIET.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.set(false);

    // Dropping our hook drops its clone of `previous`, which can then be put back as it was.
    drop(panic::take_hook());
    match Arc::try_unwrap(previous) {
        Ok(previous) => panic::set_hook(previous),
        Err(shared) => panic::set_hook(Box::new(move |info| shared(info))),
    }

    result.map_err(|payload| {
        LAST_PANIC.take().unwrap_or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|message| message.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into())
        })
    })
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let message = info.payload_as_str().unwrap_or("a panic without a message");
    match info.location() {
        Some(location) => {
            // Registry paths are long and machine-specific; the crate and file are what helps.
            let file = location.file();
            let short = file
                .rfind("/src/")
                .and_then(|src| file[..src].rfind('/').map(|start| &file[start + 1..]))
                .unwrap_or(file);
            format!("panicked: {message} (at {short}:{})", location.line())
        }
        None => format!("panicked: {message}"),
    }
}
