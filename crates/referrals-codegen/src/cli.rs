//! Finishing touches on progenitor's clap commands (`Part::Cli`).
//!
//! Progenitor adds to every operation with a body a `--json-body-template` flag that its
//! generated code does not handle, with the help text `XXX`, and makes `--json-body` (or the
//! members' flags, unless `--json-body` is given) required even beside that flag. Here the flag
//! gets its meaning (the CLI prints the JSON Schema of the body and sends nothing), and what
//! the body needs is not required with it. A member that the document marks `readOnly` gets
//! no flag: the service sets it, and a client leaves it out of a body.

use heck::{ToKebabCase, ToSnakeCase};
use quote::ToTokens;
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
pub fn finish(file: &mut syn::File, facts: &crate::reader::Facts) {
    Finish.visit_file_mut(file);
    for operation in &facts.operations {
        let Some(body) = &operation.body else {
            continue;
        };
        let Some(object) = facts.objects.iter().find(|object| &object.name == body) else {
            continue;
        };
        let snake = operation.id.to_snake_case();
        // A parameter's flag (the path's `id`) stays, even where a read-only member of the
        // body has its name: progenitor gives the flag to the parameter.
        let parameters: Vec<String> = operation
            .parameters
            .iter()
            .map(|(name, _)| name.to_kebab_case())
            .collect();
        let mut drop = DropFlags {
            cli: format!("cli_{snake}"),
            execute: format!("execute_{snake}"),
            flags: object
                .read_only
                .iter()
                .filter(|member| !parameters.contains(&member.to_kebab_case()))
                .map(|member| (member.to_kebab_case(), member.to_snake_case()))
                .collect(),
        };
        if !drop.flags.is_empty() {
            drop.visit_file_mut(file);
        }
    }
}

/// Takes the flags of read-only members out of one operation's command and its execution.
struct DropFlags {
    cli: String,
    execute: String,
    /// Each flag's name (`e-tag`) and the body builder's method that it calls (`e_tag`).
    flags: Vec<(String, String)>,
}

impl DropFlags {
    /// Whether `args` are those of `.arg(Arg::new("<flag>")...)` for a dropped flag.
    fn declares_a_flag(&self, args: &impl ToTokens) -> bool {
        let text = args.to_token_stream().to_string();
        self.flags
            .iter()
            .any(|(flag, _)| text.contains(&format!("Arg :: new (\"{flag}\"")))
    }

    /// Whether `stmt` sets a dropped member on the body (`body.e_tag(value.clone())`).
    fn sets_a_member(&self, stmt: &syn::Stmt) -> bool {
        let text = stmt.to_token_stream().to_string();
        self.flags.iter().any(|(flag, method)| {
            // The literal may be followed by a comma: `("e-tag" ,)`.
            text.contains(&format!("(\"{flag}\"")) && text.contains(&format!("body . {method} ("))
        })
    }
}

impl VisitMut for DropFlags {
    fn visit_impl_item_fn_mut(&mut self, function: &mut syn::ImplItemFn) {
        let name = function.sig.ident.to_string();
        if name == self.execute {
            function
                .block
                .stmts
                .retain(|stmt| !self.sets_a_member(stmt));
        } else if name == self.cli {
            visit_mut::visit_impl_item_fn_mut(self, function);
        }
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        // `command.arg(Arg::new("e-tag")...)` becomes `command`.
        while let Expr::MethodCall(call) = expr {
            if call.method != "arg" || !self.declares_a_flag(&call.args) {
                break;
            }
            *expr = (*call.receiver).clone();
        }
        visit_mut::visit_expr_mut(self, expr);
    }
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
