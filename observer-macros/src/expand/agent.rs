//! `#[agent_component]`: runs every call of the annotated fn as a component of the current agent trace, with its
//! arguments as inputs and its return value (or error) as outputs; a plain span outside any agent trace.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, Path, Token};

use crate::valid::{self, closest, list, Errors};
use crate::vocabulary::{self, COMPONENT_KINDS};

/// The keys `#[agent_component]` accepts.
pub(crate) const AGENT_KEYS: &[&str] = &["name", "kind", "capture", "skip", "crate"];

/// The `capture = ".."` spellings and the `CaptureLevel` variant each names.
const CAPTURE_LEVELS: &[(&str, &str)] =
    &[("none", "None"), ("metadata", "Metadata"), ("request", "Request"), ("request_response", "RequestResponse")];

/// `#[agent_component(..)]` after every check.
struct Agent {
    name: Option<LitStr>,
    /// The variant of `ComponentKind` named by `kind = ".."`.
    kind: Option<Ident>,
    /// The variant of `CaptureLevel` named by `capture = ".."`.
    capture: Option<Ident>,
    skip: Vec<Ident>,
    krate: Path,
}

/// Parses and checks the arguments and the item, then generates the wrapped fn.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = syn::parse::Parser::parse2(parse, args);
    let func = valid::function("agent_component", item);
    let (args, func) = valid::both(args, func)?;
    check_skips(&args, &func)?;
    Ok(generate(args, func))
}

fn parse(input: ParseStream<'_>) -> syn::Result<Agent> {
    let mut errors = Errors::default();
    let (mut name, mut kind, mut capture, mut skip, mut krate) = (None, None, None, Vec::new(), None);
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        let key = input.call(Ident::parse_any)?;
        let k = key.unraw().to_string();
        if seen.contains(&k) {
            errors.push(syn::Error::new_spanned(
                &key,
                format!("duplicate key `{k}` in `#[agent_component]`; each key may be given once"),
            ));
        }
        seen.push(k.clone());
        match k.as_str() {
            "skip" => {
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new_spanned(
                        &key,
                        "`skip` in `#[agent_component]` takes a list of arguments: write `skip(arg, ..)`",
                    ));
                }
                let content;
                syn::parenthesized!(content in input);
                let list = content.parse_terminated(Ident::parse_any, Token![,])?;
                skip.extend(list);
            }
            "capture" => {
                if !input.peek(Token![=]) {
                    return Err(syn::Error::new_spanned(
                        &key,
                        "missing value for `capture` in `#[agent_component]`; write `capture = \"request\"`",
                    ));
                }
                input.parse::<Token![=]>()?;
                let value: syn::Expr = input.parse()?;
                let names: Vec<&str> = CAPTURE_LEVELS.iter().map(|(s, _)| *s).collect();
                match &value {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) => {
                        let v = lit.value();
                        match CAPTURE_LEVELS.iter().find(|(s, _)| *s == v) {
                            Some((_, variant)) => capture = Some(Ident::new(variant, lit.span())),
                            None => {
                                let hint = closest(&names, &v)
                                    .map(|s| format!("; did you mean `{s}`?"))
                                    .unwrap_or_else(|| ";".into());
                                errors.push(syn::Error::new_spanned(
                                    lit,
                                    format!(
                                        "unknown capture level `{v}` in `#[agent_component]`{hint} expected one of: {}",
                                        list(&names)
                                    ),
                                ));
                            }
                        }
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "expected a string literal for `capture` in `#[agent_component]`, e.g. `capture = \"request\"`",
                    )),
                }
            }
            "name" | "kind" => {
                if !input.peek(Token![=]) {
                    return Err(syn::Error::new_spanned(
                        &key,
                        format!("missing value for `{k}` in `#[agent_component]`; write `{k} = \"..\"`"),
                    ));
                }
                input.parse::<Token![=]>()?;
                let value: syn::Expr = input.parse()?;
                match &value {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) => {
                        if lit.value().trim().is_empty() {
                            errors.push(syn::Error::new_spanned(
                                lit,
                                format!("`{k}` in `#[agent_component]` must not be empty"),
                            ));
                        } else if k == "kind" && vocabulary::lookup(COMPONENT_KINDS, &lit.value()).is_none() {
                            let v = lit.value();
                            let kinds = vocabulary::macro_names(COMPONENT_KINDS);
                            let hint = closest(&kinds, &v)
                                .map(|s| format!("; did you mean `{s}`?"))
                                .unwrap_or_else(|| ";".into());
                            errors.push(syn::Error::new_spanned(
                                lit,
                                format!(
                                    "unknown component kind `{v}` in `#[agent_component]`{hint} expected one of: {}",
                                    list(&kinds)
                                ),
                            ));
                        }
                        if k == "name" {
                            name = Some(lit.clone());
                        } else if let Some(entry) = vocabulary::lookup(COMPONENT_KINDS, &lit.value()) {
                            kind = Some(Ident::new(entry.variant, lit.span()));
                        }
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        format!(
                            "expected a string literal for `{k}` in `#[agent_component]`, e.g. `{k} = \"{}\"`",
                            if k == "name" { "QueryClassifier" } else { "llm" }
                        ),
                    )),
                }
            }
            "crate" => {
                input.parse::<Token![=]>()?;
                krate = Some(input.call(Path::parse_mod_style)?);
            }
            _ => {
                // Parse and drop the value so that the remaining keys are still checked.
                if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    let _: syn::Expr = input.parse()?;
                } else if input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in input);
                    let _: TokenStream = content.parse()?;
                }
                let hint =
                    closest(AGENT_KEYS, &k).map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| ";".into());
                errors.push(syn::Error::new_spanned(
                    &key,
                    format!("unknown key `{k}` in `#[agent_component]`{hint} expected one of: {}", list(AGENT_KEYS)),
                ));
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    errors.finish()?;
    Ok(Agent { name, kind, capture, skip, krate: krate.unwrap_or_else(|| syn::parse_quote!(::observer)) })
}

/// The name of an argument that is recorded as an input, or `None` for `self` and patterns without one name.
fn arg_ident(arg: &FnArg) -> Option<&Ident> {
    match arg {
        FnArg::Receiver(_) => None,
        FnArg::Typed(t) => match &*t.pat {
            Pat::Ident(p) if p.subpat.is_none() => Some(&p.ident),
            _ => None,
        },
    }
}

/// Every `skip(..)` entry must name an argument.
fn check_skips(args: &Agent, func: &ItemFn) -> syn::Result<()> {
    let names: Vec<String> = func.sig.inputs.iter().filter_map(arg_ident).map(|i| i.unraw().to_string()).collect();
    let mut errors = Errors::default();
    for s in &args.skip {
        let n = s.unraw().to_string();
        if !names.contains(&n) {
            errors.push(syn::Error::new_spanned(
                s,
                format!(
                    "`skip({n})` in `#[agent_component]` names no argument of this fn; its arguments are: {}",
                    if names.is_empty() {
                        "(none)".to_owned()
                    } else {
                        list(&names.iter().map(String::as_str).collect::<Vec<_>>())
                    }
                ),
            ));
        }
    }
    errors.finish()
}

fn generate(args: Agent, func: ItemFn) -> TokenStream {
    let Agent { name, kind, capture, skip, krate } = args;
    let ItemFn { attrs, vis, sig, block } = func;
    let (outer, inner) = super::split_attrs(attrs);
    let name = super::trace_name(name, &sig);
    let kind = match kind {
        Some(variant) => quote! { ::core::option::Option::Some(#krate::__private::ComponentKind::#variant) },
        None => quote! { ::core::option::Option::None },
    };
    let capture = match capture {
        Some(variant) => quote! { ::core::option::Option::Some(#krate::__private::CaptureLevel::#variant) },
        None => quote! { ::core::option::Option::None },
    };

    let skipped: Vec<String> = skip.iter().map(|s| s.unraw().to_string()).collect();
    let inputs =
        sig.inputs.iter().filter_map(arg_ident).filter(|i| !skipped.contains(&i.unraw().to_string())).map(|ident| {
            let key = ident.unraw().to_string();
            // Spanned at the argument: a type without `Serialize` is reported there.
            let value = quote_spanned! {ident.span()=> #krate::__private::agent_input(&#ident) };
            quote! { __observer_inputs.insert(::std::string::String::from(#key), #value); }
        });
    let inputs = quote! {
        #krate::__private::agent_inputs(|| {
            let mut __observer_inputs = #krate::__private::serde_json::Map::new();
            #(#inputs)*
            #krate::__private::serde_json::Value::Object(__observer_inputs)
        })
    };

    let body = super::deferred_body(&sig, &block, &krate);
    let ret = format_ident!("__observer_ret");
    let output_of = |v: TokenStream| {
        quote! {{
            #[allow(unused_imports)]
            use #krate::__private::{OutputOpaque as _, OutputSerialize as _};
            (&&#krate::__private::OutputRef(#v)).__observer_output()
        }}
    };
    let outcome = if super::returns_result(&sig.output) {
        let err = format_ident!("__observer_err");
        let message = super::error_message(&krate, &err, &sig.output);
        let ok = output_of(quote!(__observer_ok));
        quote! {
            |#ret: &_| match #ret {
                ::core::result::Result::Ok(__observer_ok) => #krate::__private::ComponentOutcome {
                    outputs: #ok,
                    error: ::core::option::Option::None,
                },
                ::core::result::Result::Err(#err) => #krate::__private::ComponentOutcome {
                    outputs: #krate::__private::serde_json::Value::Null,
                    error: ::core::option::Option::Some(#message),
                },
            }
        }
    } else {
        let out = output_of(quote!(#ret));
        quote! {
            |#ret: &_| #krate::__private::ComponentOutcome { outputs: #out, error: ::core::option::Option::None }
        }
    };
    let call = if sig.asyncness.is_some() {
        quote! { #krate::__private::agent_component_async(#name, #kind, #capture, __observer_inputs, #body, #outcome).await }
    } else {
        quote! { #krate::__private::agent_component_sync(#name, #kind, #capture, __observer_inputs, #body, #outcome) }
    };
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            let __observer_inputs = #inputs;
            #call
        }
    }
}
