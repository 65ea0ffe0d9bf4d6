//! `#[audit]`: records one audit event per call of the annotated fn.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn};

use crate::attr::{mentions_ret, AuditArgs};
use crate::valid::{self, Audit};

/// Parses and checks the arguments and the item, then generates the wrapped fn.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = syn::parse2::<AuditArgs>(args).and_then(valid::audit);
    let func = valid::function("audit", item);
    let (args, func) = valid::both(args, func)?;
    Ok(generate(args, func))
}

fn generate(audit: Audit, func: ItemFn) -> TokenStream {
    let Audit { action, resource, id, name, description, fields, krate } = audit;
    let crate::valid::Fields {
        recipient,
        purpose,
        data_categories,
        patient,
        retention_days,
        compliance_frameworks,
        immutable,
    } = fields;
    let ItemFn { attrs, vis, sig, block } = func;
    let (outer, inner) = super::split_attrs(attrs);
    let is_result = super::returns_result(&sig.output);

    // Each key becomes a local `__observer_<key>: Option<String>`: computed before the body unless it mentions
    // `ret`, in which case after, from the returned value (or the `Ok` value of a `Result`).
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let (has_recipient, has_patient) = (recipient.is_some(), patient.is_some());
    for (key, expr) in
        [("id", id), ("name", name), ("description", description), ("recipient", recipient), ("patient", patient)]
    {
        let var = format_ident!("__observer_{}", key);
        let Some(expr) = expr else {
            // `recipient` and `patient` are only passed when given (else `AuditFields`' default).
            if matches!(key, "id" | "name" | "description") {
                before.push(quote! { let #var = ::core::option::Option::None; });
            }
            continue;
        };
        let value = display(&krate, &expr);
        if !mentions_ret(&expr) {
            before.push(quote! { let #var = ::core::option::Option::Some(#value); });
        } else if is_result {
            after.push(quote! {
                let #var = match &__observer_ret {
                    ::core::result::Result::Ok(ret) => ::core::option::Option::Some(#value),
                    ::core::result::Result::Err(_) => ::core::option::Option::None,
                };
            });
        } else {
            after.push(quote! {
                let #var = {
                    let ret = &__observer_ret;
                    ::core::option::Option::Some(#value)
                };
            });
        }
    }
    let error = if is_result {
        // Display when the error type has it, else Debug (autoref specialisation in `__private`); spanned at the
        // return type, where an error type with neither is reported.
        let err = format_ident!("__observer_err");
        let message = quote_spanned! {error_type_span(&sig.output)=>
            (&&#krate::__private::ErrorRef(#err)).__observer_error_message()
        };
        quote! {
            let __observer_error = match &__observer_ret {
                ::core::result::Result::Ok(_) => ::core::option::Option::None,
                ::core::result::Result::Err(#err) => {
                    #[allow(unused_imports)]
                    use #krate::__private::{ErrorDebug as _, ErrorDisplay as _};
                    ::core::option::Option::Some(#message)
                }
            };
        }
    } else {
        quote! { let __observer_error = ::core::option::Option::None; }
    };

    // The disclosure fields: only those given are written, the rest come from `Default`.
    let mut set = Vec::new();
    if has_recipient {
        set.push(quote! { recipient: __observer_recipient, });
    }
    if has_patient {
        set.push(quote! { patient: __observer_patient, });
    }
    if let Some(p) = purpose {
        let p = format_ident!("{}", p.variant);
        set.push(quote! { purpose: ::core::option::Option::Some(#krate::audit::PurposeOfUse::#p), });
    }
    if !data_categories.is_empty() {
        set.push(quote! { data_categories: &[#(#data_categories),*], });
    }
    if let Some(days) = retention_days {
        let days = days.base10_parse::<u32>().unwrap_or(1);
        set.push(quote! { retention_days: ::core::option::Option::Some(#days), });
    }
    if !compliance_frameworks.is_empty() {
        set.push(quote! { compliance_frameworks: &[#(#compliance_frameworks),*], });
    }
    if let Some(b) = immutable {
        set.push(quote! { immutable: ::core::option::Option::Some(#b), });
    }
    // `AuditFields` has 7 fields: with all of them given, a `..Default` would be a needless update (a lint in the
    // user's crate).
    let fields = match set.len() {
        0 => quote! { ::core::default::Default::default() },
        7 => quote! { #krate::__private::AuditFields { #(#set)* } },
        _ => quote! { #krate::__private::AuditFields { #(#set)* ..::core::default::Default::default() } },
    };

    let run = super::run_body(&sig, &block, &krate);
    let fn_name = sig.ident.unraw().to_string();
    let action = format_ident!("{}", action.variant);
    let resource = format_ident!("{}", resource.variant);
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #(#before)*
            let __observer_ret = #run;
            #(#after)*
            #error
            #krate::__private::record_audit(#krate::__private::AuditCall {
                action: #krate::AuditAction::#action,
                resource: #krate::ResourceType::#resource,
                id: __observer_id,
                name: __observer_name,
                description: __observer_description,
                error: __observer_error,
                fields: #fields,
                function: ::core::concat!(::core::module_path!(), "::", #fn_name),
            });
            __observer_ret
        }
    }
}

/// `krate::__private::display(&(expr))`, spanned at the user's expression so that a missing `Display` is
/// reported there.
fn display(krate: &syn::Path, expr: &Expr) -> TokenStream {
    quote_spanned! {expr.span()=> #krate::__private::display(&(#expr)) }
}

/// The span of the error type `E` in a `-> Result<T, E>` return type, else of the whole return type.
fn error_type_span(output: &syn::ReturnType) -> proc_macro2::Span {
    let syn::ReturnType::Type(_, ty) = output else { return output.span() };
    if let syn::Type::Path(p) = &**ty {
        if let Some(syn::PathArguments::AngleBracketed(args)) = p.path.segments.last().map(|s| &s.arguments) {
            if let Some(e) = args.args.iter().filter(|a| matches!(a, syn::GenericArgument::Type(_))).nth(1) {
                return e.span();
            }
        }
    }
    ty.span()
}
