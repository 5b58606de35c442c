//! Finishing touches on progenitor's clap commands (`Part::Cli`).
//!
//! Progenitor adds to every operation with a body a `--json-body-template` flag that its
//! generated code does not handle, with the help text `XXX`, and makes `--json-body` (or the
//! members' flags, unless `--json-body` is given) required even beside that flag. Here the flag
//! gets its meaning (the CLI prints the JSON Schema of the body and sends nothing), and what
//! the body needs is not required with it.

use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ExprLit, ExprMethodCall, Lit};

/// The flag's name, as progenitor writes it.
pub const TEMPLATE_FLAG: &str = "json-body-template";
/// The flag of the body's file, as progenitor writes it.
const BODY_FLAG: &str = "json-body";
/// Its help text.
const TEMPLATE_HELP: &str =
    "Print the JSON Schema of the body (from the document) and exit, sending nothing.";

/// Rewrites `file` in place.
pub fn finish(file: &mut syn::File) {
    Finish.visit_file_mut(file);
}

struct Finish;

impl VisitMut for Finish {
    fn visit_expr_method_call_mut(&mut self, call: &mut ExprMethodCall) {
        visit_mut::visit_expr_method_call_mut(self, call);
        if call.method == "help" && only_string(call).as_deref() == Some("XXX") {
            call.args = syn::parse_quote!(#TEMPLATE_HELP);
        }
        let after_json_file = matches!(
            call.receiver.as_ref(),
            Expr::MethodCall(inner)
                if inner.method == "value_name" && only_string(inner).as_deref() == Some("JSON-FILE")
        );
        let required = call.method == "required"
            && matches!(
                call.args.first(),
                Some(Expr::Lit(ExprLit { lit: Lit::Bool(value), .. })) if value.value
            );
        if after_json_file && required {
            call.method = syn::Ident::new("required_unless_present", call.method.span());
            call.args = syn::parse_quote!(#TEMPLATE_FLAG);
        }
        if call.method == "required_unless_present"
            && only_string(call).as_deref() == Some(BODY_FLAG)
        {
            call.method = syn::Ident::new("required_unless_present_any", call.method.span());
            call.args = syn::parse_quote!([#BODY_FLAG, #TEMPLATE_FLAG]);
        }
    }
}

/// The argument of a call that takes one string literal.
fn only_string(call: &ExprMethodCall) -> Option<String> {
    match (call.args.len(), call.args.first()) {
        (
            1,
            Some(Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            })),
        ) => Some(text.value()),
        _ => None,
    }
}
