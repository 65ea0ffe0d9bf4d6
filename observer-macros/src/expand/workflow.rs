//! `#[workflow]`: runs every call of the annotated fn as a traced workflow, the current workflow of its body.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::attr::TraceArgs;
use crate::valid::{self, Trace};

/// Parses and checks the arguments and the item, then generates the wrapped fn.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = TraceArgs::parse("workflow", args).and_then(|a| valid::trace("workflow", a));
    let func = valid::function("workflow", item);
    let (args, func) = valid::both(args, func)?;
    Ok(generate(args, func))
}

fn generate(trace: Trace, func: ItemFn) -> TokenStream {
    let Trace { name, fields, krate } = trace;
    let ItemFn { attrs, vis, sig, block } = func;
    let (outer, inner) = super::split_attrs(attrs);
    let name = super::trace_name(name, &sig);

    // `.attr("key", value)` per field, evaluated before the body; the value through `Serialize`, else `Display`
    // (autoref specialisation), spanned at the user's expression where a type with neither is reported.
    let attrs = fields.iter().map(|field| {
        let key = &field.name;
        let expr = &field.value;
        let value = quote_spanned! {expr.span()=>
            (&&#krate::__private::FieldRef(&(#expr))).__observer_field_value()
        };
        quote! {
            .attr(#key, {
                #[allow(unused_imports)]
                use #krate::__private::{FieldDisplay as _, FieldSerialize as _};
                #value
            })
        }
    });

    let body = super::deferred_body(&sig, &block, &krate);
    let run = if sig.asyncness.is_some() {
        quote! { #krate::__private::workflow_async(&__observer_workflow, #body).await }
    } else {
        quote! { #krate::__private::workflow_sync(&__observer_workflow, #body) }
    };
    let error = if super::returns_result(&sig.output) {
        let err = format_ident!("__observer_err");
        let message = super::error_message(&krate, &err, &sig.output);
        quote! {
            match &__observer_ret {
                ::core::result::Result::Ok(_) => ::core::option::Option::None,
                ::core::result::Result::Err(#err) => ::core::option::Option::Some(#message),
            }
        }
    } else {
        quote! { ::core::option::Option::None }
    };

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            let __observer_workflow = #krate::__private::workflow(#name) #(#attrs)*;
            let __observer_ret = #run;
            #krate::__private::finish_workflow(&__observer_workflow, #error);
            __observer_ret
        }
    }
}
