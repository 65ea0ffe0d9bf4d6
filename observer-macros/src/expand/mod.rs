//! Code generation, one file per macro, and the parts they share: running the body of the annotated fn so that
//! its value can be inspected, and the error fallback.

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod step;
pub(crate) mod vocabulary;
pub(crate) mod workflow;

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit::Visit;
use syn::{AttrStyle, Attribute, Block, Path, ReturnType, Signature, Type};

/// The user's item unchanged, followed by `compile_error!`s: one mistake gives one message and the item still
/// exists for the rest of the crate (and the IDE).
pub(crate) fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut out = item;
    out.extend(error.into_compile_error());
    out
}

/// Splits a fn's attributes into outer ones (`#[..]`, before the fn) and inner ones (`#![..]`, at the top of
/// its body); syn keeps both in `ItemFn::attrs`.
pub(crate) fn split_attrs(attrs: Vec<Attribute>) -> (Vec<Attribute>, Vec<Attribute>) {
    attrs.into_iter().partition(|a| matches!(a.style, AttrStyle::Outer))
}

/// Whether the return type is syntactically a `Result`: its last path segment is `Result` (`Result<T, E>`,
/// `io::Result<T>`, `anyhow::Result<T>`, …). Such a type must be `core::result::Result` or an alias of it.
pub(crate) fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else { return false };
    let mut ty = &**ty;
    loop {
        match ty {
            Type::Paren(p) => ty = &p.elem,
            Type::Group(g) => ty = &g.elem,
            Type::Path(p) => return p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => return false,
        }
    }
}

/// The return type to name in the generated code, or `None` when it cannot be named inside a body (it contains
/// `impl Trait`, or is `!`).
fn nameable_output(output: &ReturnType) -> Option<TokenStream> {
    struct FindImpl(bool);
    impl<'ast> Visit<'ast> for FindImpl {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_never(&mut self, _: &'ast syn::TypeNever) {
            self.0 = true;
        }
    }
    match output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) => {
            let mut find = FindImpl(false);
            find.visit_type(ty);
            (!find.0).then(|| quote!(#ty))
        }
    }
}

/// An expression that runs `block` — the annotated fn's body — and evaluates to its value, with `return` and
/// `?` in the body behaving as in the original fn:
///
/// - sync: `krate::__private::call::<R, _>(move || block)`
/// - async: `krate::__private::typed_future::<R, _>(async move block).await`
///
/// Naming `R` lets `?` and `return` infer their types; it is left out when `R` contains `impl Trait`.
pub(crate) fn run_body(sig: &Signature, block: &Block, krate: &Path) -> TokenStream {
    let hint = nameable_output(&sig.output);
    match (sig.asyncness.is_some(), hint) {
        (false, Some(ty)) => quote! { #krate::__private::call::<#ty, _>(move || #block) },
        (false, None) => quote! { #krate::__private::call(move || #block) },
        (true, Some(ty)) => quote! { #krate::__private::typed_future::<#ty, _>(async move #block).await },
        (true, None) => quote! { async move #block.await },
    }
}

/// The annotated fn's body as a value that has not run yet, with `return` and `?` in it behaving as in the
/// original fn:
///
/// - sync: a closure, `krate::__private::typed_closure::<R, _>(move || block)`
/// - async: a future, `krate::__private::typed_future::<R, _>(async move block)`
///
/// Naming `R` lets `?` and `return` infer their types; it is left out when `R` contains `impl Trait`.
pub(crate) fn deferred_body(sig: &Signature, block: &Block, krate: &Path) -> TokenStream {
    let hint = nameable_output(&sig.output);
    match (sig.asyncness.is_some(), hint) {
        (false, Some(ty)) => quote! { #krate::__private::typed_closure::<#ty, _>(move || #block) },
        (false, None) => quote! { move || #block },
        (true, Some(ty)) => quote! { #krate::__private::typed_future::<#ty, _>(async move #block) },
        (true, None) => quote! { async move #block },
    }
}

/// The message of the error `err` (an `&E` of the fn's `-> Result<T, E>`): its `Display`, else its `Debug`
/// (autoref specialisation through `krate::__private::ErrorRef`). Spanned at `E`, where an error type with
/// neither is reported.
pub(crate) fn error_message(krate: &Path, err: &syn::Ident, output: &ReturnType) -> TokenStream {
    let message = quote::quote_spanned! {error_type_span(output)=>
        (&&#krate::__private::ErrorRef(#err)).__observer_error_message()
    };
    quote! {{
        #[allow(unused_imports)]
        use #krate::__private::{ErrorDebug as _, ErrorDisplay as _};
        #message
    }}
}

/// The span of the error type `E` in a `-> Result<T, E>` return type, else of the whole return type.
fn error_type_span(output: &ReturnType) -> proc_macro2::Span {
    use syn::spanned::Spanned;
    let ReturnType::Type(_, ty) = output else { return output.span() };
    if let Type::Path(p) = &**ty {
        if let Some(syn::PathArguments::AngleBracketed(args)) = p.path.segments.last().map(|s| &s.arguments) {
            if let Some(e) = args.args.iter().filter(|a| matches!(a, syn::GenericArgument::Type(_))).nth(1) {
                return e.span();
            }
        }
    }
    ty.span()
}

/// The name of a `#[workflow]`/`#[step]`: `name = ".."` if given, else the fn's name (without `r#`).
pub(crate) fn trace_name(name: Option<syn::LitStr>, sig: &Signature) -> syn::LitStr {
    use syn::ext::IdentExt;
    name.unwrap_or_else(|| syn::LitStr::new(&sig.ident.unraw().to_string(), sig.ident.span()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_result_by_its_last_segment() {
        let r = |s: &str| returns_result(&syn::parse_str(s).expect("return type"));
        assert!(r("-> Result<u32, E>"));
        assert!(r("-> io::Result<()>"));
        assert!(r("-> ::anyhow::Result<Doc>"));
        assert!(!r(""));
        assert!(!r("-> Option<Result<u32, E>>"));
        assert!(!r("-> MyResult"));
    }

    #[test]
    fn leaves_impl_trait_unnamed() {
        let n = |s: &str| nameable_output(&syn::parse_str(s).expect("return type")).map(|t| t.to_string());
        assert_eq!(n("").as_deref(), Some("()"));
        assert_eq!(n("-> Vec<u8>").as_deref(), Some("Vec < u8 >"));
        assert_eq!(n("-> impl Iterator<Item = u8>"), None);
        assert_eq!(n("-> Result<impl Display, E>"), None);
        assert_eq!(n("-> !"), None);
    }
}
