//! `#[step]`: runs every call of the annotated fn as a step of the current workflow, or in a plain `tracing`
//! span outside any workflow.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemFn;

use crate::attr::TraceArgs;
use crate::valid::{self, Trace};

/// Parses and checks the arguments and the item, then generates the wrapped fn.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = TraceArgs::parse("step", args).and_then(|a| valid::trace("step", a));
    let func = valid::function("step", item);
    let (args, func) = valid::both(args, func)?;
    Ok(generate(args, func))
}

fn generate(trace: Trace, func: ItemFn) -> TokenStream {
    let Trace { name, fields: _, krate } = trace;
    let ItemFn { attrs, vis, sig, block } = func;
    let (outer, inner) = super::split_attrs(attrs);
    let name = super::trace_name(name, &sig);

    let body = super::deferred_body(&sig, &block, &krate);
    // Built only outside a workflow; a disabled span (no subscriber wants it) costs a level check.
    // The same span name and fields as a workflow's step spans.
    let otel_name = syn::LitStr::new(&format!("step:{}", name.value()), name.span());
    let span = quote! {
        || #krate::__private::tracing::info_span!("step", otel.name = #otel_name, step.name = #name)
    };
    let is_async = sig.asyncness.is_some();
    let call = if super::returns_result(&sig.output) {
        let err = format_ident!("__observer_err");
        let message = super::error_message(&krate, &err, &sig.output);
        let message = quote! { |#err| #message };
        if is_async {
            quote! { #krate::__private::step_async_result(#name, #span, #body, #message).await }
        } else {
            quote! { #krate::__private::step_sync_result(#name, #span, #body, #message) }
        }
    } else if is_async {
        quote! { #krate::__private::step_async(#name, #span, #body).await }
    } else {
        quote! { #krate::__private::step_sync(#name, #span, #body) }
    };

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #call
        }
    }
}
