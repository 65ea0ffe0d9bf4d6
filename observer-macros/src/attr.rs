//! Arguments of the attribute macros, parsed into typed structs.
//!
//! Parsing checks only the shape of the arguments; names are checked against the vocabulary in
//! [`crate::valid`], so that independent mistakes are reported together.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::vocabulary;

/// The keys `#[audit]` accepts after the action and the resource type, for "expected one of …" messages.
pub(crate) const AUDIT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "recipient",
    "purpose",
    "data_categories",
    "patient",
    "retention_days",
    "compliance_frameworks",
    "immutable",
    "crate",
];

/// The keys of the disclosure fields, parsed as [`AuditKey::Field`] and checked in `valid`.
pub(crate) const FIELD_KEYS: &[&str] =
    &["recipient", "purpose", "data_categories", "patient", "retention_days", "compliance_frameworks", "immutable"];

mod kw {
    syn::custom_keyword!(id);
    syn::custom_keyword!(name);
    syn::custom_keyword!(description);
    syn::custom_keyword!(fields);
}

/// `#[audit(action, Resource, key = expr, ..)]`.
pub(crate) struct AuditArgs {
    /// The action as written (`create`, `read`, …); checked in `valid`.
    pub action: Ident,
    /// The resource type as written (`Document`, …); checked in `valid`.
    pub resource: Ident,
    /// The `key = value` pairs in the order written.
    pub keys: Vec<AuditKey>,
}

/// One `key = value` argument of `#[audit]`.
pub(crate) enum AuditKey {
    /// `id = expr`.
    Id(Ident, Expr),
    /// `name = expr`.
    Name(Ident, Expr),
    /// `description = expr`.
    Description(Ident, Expr),
    /// `crate = path`.
    Crate(Ident, Path),
    /// One of the disclosure keys ([`FIELD_KEYS`]) `= expr`; its value is checked in `valid`.
    Field(Ident, Expr),
    /// Any other `ident = expr`, reported in `valid` with a suggestion.
    Unknown(Ident),
}

impl AuditKey {
    /// The key as written, for spans and duplicate checks.
    pub(crate) fn key(&self) -> &Ident {
        match self {
            Self::Id(k, _)
            | Self::Name(k, _)
            | Self::Description(k, _)
            | Self::Crate(k, _)
            | Self::Field(k, _)
            | Self::Unknown(k) => k,
        }
    }
}

impl Parse for AuditArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "`#[audit]` needs an action and a resource type, e.g. `#[audit(create, Document, id = doc.id)]`",
            ));
        }
        if let Some(err) = python_style(input) {
            return Err(err);
        }
        let action = positional(input, None)?;
        if input.is_empty() {
            return Err(missing_resource(&action, None));
        }
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            return Err(missing_resource(&action, None));
        }
        let resource = positional(input, Some(&action))?;
        let mut keys = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            keys.push(input.parse()?);
        }
        Ok(Self { action, resource, keys })
    }
}

/// The guide's Python keyword arguments (`action="CREATE", resource_type=ResourceType.DOCUMENT, resource_id=..`):
/// an error that shows the same call in this macro's form, `#[audit(create, Document, id = ..)]`. `None` when the
/// arguments do not start with `key = value` or name neither `action` nor `resource_type`.
fn python_style(input: ParseStream<'_>) -> Option<syn::Error> {
    if !(input.peek(Ident::peek_any) && input.peek2(Token![=])) {
        return None;
    }
    let pairs = input.fork().call(|i| {
        syn::punctuated::Punctuated::<(Ident, Expr), Token![,]>::parse_terminated_with(i, |i| {
            let key = i.call(Ident::parse_any)?;
            i.parse::<Token![=]>()?;
            Ok((key, i.parse::<Expr>()?))
        })
    });
    let pairs = pairs.ok()?;
    let first = pairs.first()?.0.clone();
    let find = |names: &[&str]| pairs.iter().find(|(k, _)| names.iter().any(|n| k == n)).map(|(k, v)| (k.clone(), v));
    let action = find(&["action"]);
    let resource = find(&["resource_type", "resource"]);
    if action.is_none() && resource.is_none() {
        return None;
    }
    let action_name = action.and_then(|(_, v)| vocabulary_name(vocabulary::ACTIONS, v)).unwrap_or("create");
    let resource_name = resource.and_then(|(_, v)| vocabulary_name(vocabulary::RESOURCES, v)).unwrap_or("Document");
    let mut suggestion = format!("#[audit({action_name}, {resource_name}");
    for (key, value) in &pairs {
        let key = match key.to_string().as_str() {
            "action" | "resource_type" | "resource" => continue,
            "resource_id" | "id" => "id",
            "resource_name" | "name" => "name",
            "description" => "description",
            _ => continue,
        };
        suggestion.push_str(&format!(", {key} = {}", expr_text(value)));
    }
    suggestion.push_str(")]");
    Some(syn::Error::new(
        first.span(),
        format!(
            "`#[audit]` takes the action and the resource type as bare names first, not as `key = value` \
             (Python's keyword arguments); write `{suggestion}`"
        ),
    ))
}

/// The vocabulary's macro name for a Python-style value: `"CREATE"`, `ResourceType.DOCUMENT`,
/// `AuditAction::Read`, `Document`, … (matched on the wire, variant or macro spelling).
fn vocabulary_name(table: &'static [vocabulary::Entry], value: &Expr) -> Option<&'static str> {
    let text = match value {
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => s.value(),
        Expr::Field(f) => match &f.member {
            syn::Member::Named(ident) => ident.to_string(),
            syn::Member::Unnamed(_) => return None,
        },
        Expr::Path(p) => p.path.segments.last()?.ident.to_string(),
        _ => return None,
    };
    let text = text.trim();
    table
        .iter()
        .find(|e| e.wire.eq_ignore_ascii_case(text) || e.variant == text || e.macro_name == text)
        .map(|e| e.macro_name)
}

/// `expr` as source-like text for a suggestion (`doc.id`, not `doc . id`).
fn expr_text(expr: &Expr) -> String {
    let text = quote::ToTokens::to_token_stream(expr).to_string();
    let mut out =
        text.replace(" . ", ".").replace(" :: ", "::").replace(" (", "(").replace("( ", "(").replace(" )", ")");
    out = out.replace(" ,", ",").replace("& ", "&");
    out
}

/// The action (`after` is `None`) or the resource type (`after` is the action): a bare name not followed by `=`.
fn positional(input: ParseStream<'_>, after: Option<&Ident>) -> syn::Result<Ident> {
    if !input.peek(Ident::peek_any) {
        let (what, table) = match after {
            None => ("action", vocabulary::ACTIONS),
            Some(_) => ("resource type", vocabulary::RESOURCES),
        };
        let expected = vocabulary::names(table);
        return Err(syn::Error::new(input.span(), format!("expected the {what} of `#[audit]`, one of: {expected}")));
    }
    let ident = input.call(Ident::parse_any)?;
    if input.peek(Token![=]) {
        return Err(match after {
            None => syn::Error::new(
                ident.span(),
                format!(
                    "missing action in `#[audit]`; write it first, e.g. `#[audit(create, Document, {ident} = ..)]`; \
                     expected one of: {}",
                    vocabulary::names(vocabulary::ACTIONS)
                ),
            ),
            Some(action) => missing_resource(action, Some(&ident)),
        });
    }
    Ok(ident)
}

/// The resource type is missing after `action`; `key` is the key found in its place, if any.
fn missing_resource(action: &Ident, key: Option<&Ident>) -> syn::Error {
    let example = match key {
        Some(key) => format!("#[audit({action}, Document, {key} = ..)]"),
        None => format!("#[audit({action}, Document)]"),
    };
    syn::Error::new(
        key.unwrap_or(action).span(),
        format!(
            "missing resource type in `#[audit]`; write it after the action, e.g. `{example}`; expected one of: {}",
            vocabulary::names(vocabulary::RESOURCES)
        ),
    )
}

impl Parse for AuditKey {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        let is_known = lookahead.peek(kw::id)
            || lookahead.peek(kw::name)
            || lookahead.peek(kw::description)
            || lookahead.peek(Token![crate]);
        if !is_known && !input.peek(Ident::peek_any) {
            return Err(lookahead.error());
        }
        let key = input.call(Ident::parse_any)?;
        if !input.peek(Token![=]) {
            let example = if key == "crate" { "::observer" } else { "<expr>" };
            return Err(syn::Error::new(
                key.span(),
                format!("missing value for `{key}` in `#[audit]`; write `{key} = {example}`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let name = key.to_string();
        Ok(match name.as_str() {
            "id" => Self::Id(key, input.parse()?),
            "name" => Self::Name(key, input.parse()?),
            "description" => Self::Description(key, input.parse()?),
            field if FIELD_KEYS.contains(&field) => Self::Field(key, input.parse()?),
            "crate" => {
                if input.peek(LitStr) {
                    let lit: LitStr = input.parse()?;
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "expected a path for `crate` in `#[audit]`, not a string; write `crate = {}`",
                            lit.value()
                        ),
                    ));
                }
                let path = input.call(Path::parse_mod_style).map_err(|e| {
                    syn::Error::new(e.span(), "expected a path for `crate` in `#[audit]`, e.g. `crate = ::observer`")
                })?;
                Self::Crate(key, path)
            }
            _ => {
                // Parse and drop the value so that the remaining keys are still checked.
                let _: Expr = input.parse()?;
                Self::Unknown(key)
            }
        })
    }
}

/// Whether `expr` mentions the identifier `ret` (not as a field or path segment, e.g. `x.ret` or `m::ret`), or
/// names it inside a format string (`"{ret}"`, `"{ret:?}"`).
pub(crate) fn mentions_ret(expr: &Expr) -> bool {
    fn walk(tokens: proc_macro2::TokenStream) -> bool {
        let mut after_dot_or_path = false;
        for tt in tokens {
            match tt {
                proc_macro2::TokenTree::Ident(i) => {
                    if i == "ret" && !after_dot_or_path {
                        return true;
                    }
                    after_dot_or_path = false;
                }
                proc_macro2::TokenTree::Punct(p) => {
                    after_dot_or_path = p.as_char() == '.' || p.as_char() == ':';
                }
                proc_macro2::TokenTree::Group(g) => {
                    if walk(g.stream()) {
                        return true;
                    }
                    after_dot_or_path = false;
                }
                proc_macro2::TokenTree::Literal(l) => {
                    let s = l.to_string();
                    if s.starts_with('"') && (s.contains("{ret}") || s.contains("{ret:")) {
                        return true;
                    }
                    after_dot_or_path = false;
                }
            }
        }
        false
    }
    walk(quote::ToTokens::to_token_stream(expr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> syn::Result<AuditArgs> {
        syn::parse_str(s)
    }

    fn err(s: &str) -> String {
        args(s).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn python_style_arguments_get_the_rust_form() {
        assert_eq!(
            err(r#"action = "CREATE", resource_type = "DOCUMENT", resource_id = doc.id"#),
            "`#[audit]` takes the action and the resource type as bare names first, not as `key = value` (Python's \
             keyword arguments); write `#[audit(create, Document, id = doc.id)]`"
        );
        let e = err(r#"resource_type = ResourceType.LLM_MODEL, action = AuditAction.EXECUTE, description = "x""#);
        assert!(e.ends_with(r#"write `#[audit(execute, LlmModel, description = "x")]`"#), "{e}");
        let e = err(r#"action = "PUBLISH", resource_type = "DOCUMENT""#);
        assert!(e.ends_with("write `#[audit(create, Document)]`"), "an unknown action gets a valid placeholder: {e}");
        // Other keys first still get the general message.
        assert!(err("id = 1").starts_with("missing action in `#[audit]`"));
    }

    #[test]
    fn parses_all_keys() {
        let a = args("create, Document, id = doc.id, name = doc.title, description = \"x\", crate = ::observer,")
            .expect("parses");
        assert_eq!(a.action, "create");
        assert_eq!(a.resource, "Document");
        let keys: Vec<String> = a.keys.iter().map(|k| k.key().to_string()).collect();
        assert_eq!(keys, ["id", "name", "description", "crate"]);
    }

    #[test]
    fn keyword_action_is_parsed_for_the_vocabulary_check() {
        assert_eq!(args("crate, Document").expect("parses").action, "crate");
    }

    #[test]
    fn shape_errors() {
        assert!(err("").contains("needs an action and a resource type"));
        assert!(err("create").starts_with("missing resource type in `#[audit]`"));
        assert!(err("create, id = 1").starts_with("missing resource type in `#[audit]`"));
        assert!(err("id = 1").starts_with("missing action in `#[audit]`"));
        assert_eq!(err("create, Document, id"), "missing value for `id` in `#[audit]`; write `id = <expr>`");
        assert!(err("create, Document, crate = \"obs\"").contains("write `crate = obs`"));
        assert!(err("create, Document, crate = 1").starts_with("expected a path for `crate`"));
        assert!(err("create, Document, 1").contains("expected one of"));
    }

    #[test]
    fn detects_ret() {
        let m = |s: &str| mentions_ret(&syn::parse_str(s).expect("expr"));
        assert!(m("ret.id"));
        assert!(m("ret"));
        assert!(m("format!(\"{}-{}\", a, ret.id)"));
        assert!(m("format!(\"{ret}\")"));
        assert!(m("f(&ret)"));
        assert!(!m("doc.ret"));
        assert!(!m("m::ret"));
        assert!(!m("doc.id"));
        assert!(!m("\"ret\""));
    }
}

// ---- #[workflow] and #[step] ------------------------------------------------------------------------------

/// The keys `#[workflow]` accepts.
pub(crate) const WORKFLOW_KEYS: &[&str] = &["name", "fields", "crate"];
/// The keys `#[step]` accepts.
pub(crate) const STEP_KEYS: &[&str] = &["name", "crate"];

/// The arguments of `#[workflow(..)]` or `#[step(..)]`, in the order written; which keys are allowed is checked
/// in `valid`.
pub(crate) struct TraceArgs {
    pub keys: Vec<TraceKey>,
}

/// One argument of `#[workflow]` / `#[step]`.
pub(crate) enum TraceKey {
    /// `name = expr`; a string literal is required, checked in `valid`.
    Name(Ident, Expr),
    /// `fields(key = expr, ..)`.
    Fields(Ident, Vec<Field>),
    /// `crate = path`.
    Crate(Ident, Path),
    /// Any other `ident = expr` or `ident(..)`, reported in `valid` with a suggestion.
    Unknown(Ident),
}

impl TraceKey {
    /// The key as written, for spans and duplicate checks.
    pub(crate) fn key(&self) -> &Ident {
        match self {
            Self::Name(k, _) | Self::Fields(k, _) | Self::Crate(k, _) | Self::Unknown(k) => k,
        }
    }
}

/// One `key = expr` in `fields(..)`.
pub(crate) struct Field {
    /// The attribute key: `order_id`, `order.id` (dotted names are joined with `.`) or a string literal's value.
    pub name: String,
    /// The key's tokens, for error spans.
    pub key: proc_macro2::TokenStream,
    /// The value, evaluated before the body runs.
    pub value: Expr,
}

impl TraceArgs {
    /// Parses the arguments of `#[attr(..)]` (`attr` is `workflow` or `step`, for messages).
    pub(crate) fn parse(attr: &'static str, tokens: proc_macro2::TokenStream) -> syn::Result<Self> {
        syn::parse::Parser::parse2(|input: ParseStream<'_>| Self::parse_in(attr, input), tokens)
    }

    fn parse_in(attr: &'static str, input: ParseStream<'_>) -> syn::Result<Self> {
        let mut keys = Vec::new();
        while !input.is_empty() {
            keys.push(TraceKey::parse_in(attr, input)?);
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(Self { keys })
    }
}

impl TraceKey {
    fn parse_in(attr: &'static str, input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                format!("expected `key = value` in `#[{attr}]`; to set the name write `name = {}`", lit.token()),
            ));
        }
        let lookahead = input.lookahead1();
        let is_known = lookahead.peek(kw::name)
            || (attr == "workflow" && lookahead.peek(kw::fields))
            || lookahead.peek(Token![crate]);
        if !is_known && !input.peek(Ident::peek_any) {
            return Err(lookahead.error());
        }
        let key = input.call(Ident::parse_any)?;
        let name = key.to_string();
        if name == "fields" || input.peek(syn::token::Paren) {
            return Self::parse_list(attr, key, input);
        }
        if !input.peek(Token![=]) {
            let example = match name.as_str() {
                "crate" => "::observer",
                "name" => "\"..\"",
                _ => "<expr>",
            };
            return Err(syn::Error::new(
                key.span(),
                format!("missing value for `{key}` in `#[{attr}]`; write `{key} = {example}`"),
            ));
        }
        input.parse::<Token![=]>()?;
        Ok(match name.as_str() {
            "name" => Self::Name(key, input.parse()?),
            "crate" => Self::Crate(key, crate_path(attr, input)?),
            _ => {
                // Parse and drop the value so that the remaining keys are still checked.
                let _: Expr = input.parse()?;
                Self::Unknown(key)
            }
        })
    }

    /// `fields(..)`, or any other `key(..)` (an unknown key, or a known one written as a list).
    fn parse_list(attr: &'static str, key: Ident, input: ParseStream<'_>) -> syn::Result<Self> {
        let name = key.to_string();
        if !input.peek(syn::token::Paren) {
            // `fields = x` or a bare `fields`.
            let mut tokens = quote::ToTokens::into_token_stream(key.clone());
            if input.peek(Token![=]) {
                let eq: Token![=] = input.parse()?;
                let value: Expr = input.parse()?;
                tokens.extend(quote::quote!(#eq #value));
            }
            return Err(syn::Error::new_spanned(
                tokens,
                format!("`fields` in `#[{attr}]` takes a list: write `fields(key = expr, ..)`"),
            ));
        }
        let content;
        syn::parenthesized!(content in input);
        match name.as_str() {
            "fields" => {
                let mut fields = Vec::new();
                while !content.is_empty() {
                    fields.push(Field::parse_in(attr, &content)?);
                    if content.is_empty() {
                        break;
                    }
                    content.parse::<Token![,]>()?;
                }
                Ok(Self::Fields(key, fields))
            }
            "name" | "crate" => {
                let example = if name == "crate" { "::observer" } else { "\"..\"" };
                Err(syn::Error::new(key.span(), format!("expected `{key} = {example}` in `#[{attr}]`, not a list")))
            }
            _ => {
                let _: proc_macro2::TokenStream = content.parse()?;
                Ok(Self::Unknown(key))
            }
        }
    }
}

/// The path of `crate = path`.
fn crate_path(attr: &str, input: ParseStream<'_>) -> syn::Result<Path> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!("expected a path for `crate` in `#[{attr}]`, not a string; write `crate = {}`", lit.value()),
        ));
    }
    input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(e.span(), format!("expected a path for `crate` in `#[{attr}]`, e.g. `crate = ::observer`"))
    })
}

impl Field {
    fn parse_in(attr: &str, input: ParseStream<'_>) -> syn::Result<Self> {
        let (name, key) = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            (lit.value(), quote::ToTokens::into_token_stream(lit))
        } else if input.peek(Ident::peek_any) {
            let first = input.call(Ident::parse_any)?;
            let mut name = first.unraw().to_string();
            let mut key = quote::ToTokens::into_token_stream(first);
            while input.peek(Token![.]) {
                let dot: Token![.] = input.parse()?;
                let part = input.call(Ident::parse_any)?;
                name = format!("{name}.{}", part.unraw());
                key.extend(quote::quote!(#dot #part));
            }
            (name, key)
        } else {
            return Err(syn::Error::new(
                input.span(),
                format!("expected a field name in `fields(..)` of `#[{attr}]`, e.g. `fields(order_id = order.id)`"),
            ));
        };
        if !input.peek(Token![=]) {
            let shown = if key.to_string().starts_with('"') { key.to_string() } else { name.clone() };
            return Err(syn::Error::new_spanned(
                key,
                format!("missing value for field `{name}` in `#[{attr}]`; write `fields({shown} = <expr>)`"),
            ));
        }
        input.parse::<Token![=]>()?;
        Ok(Self { name, key, value: input.parse()? })
    }
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    fn args(attr: &'static str, s: &str) -> syn::Result<TraceArgs> {
        TraceArgs::parse(attr, s.parse().expect("tokens"))
    }

    fn err(attr: &'static str, s: &str) -> String {
        args(attr, s).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn parses_all_keys() {
        let a = args("workflow", "name = \"x\", fields(a = 1, b.c = d, \"e-f\" = g, r#type = 2,), crate = ::obs,")
            .expect("parses");
        let keys: Vec<String> = a.keys.iter().map(|k| k.key().to_string()).collect();
        assert_eq!(keys, ["name", "fields", "crate"]);
        let TraceKey::Fields(_, fields) = &a.keys[1] else { panic!("fields") };
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b.c", "e-f", "type"]);
        assert!(args("step", "").expect("empty").keys.is_empty());
        assert!(args("workflow", "fields()").is_ok());
    }

    #[test]
    fn unknown_keys_are_parsed_for_the_check() {
        let a = args("step", "nmae = \"x\", other(1, 2), fields(a = 1)").expect("parses");
        assert!(matches!(a.keys[0], TraceKey::Unknown(_)));
        assert!(matches!(a.keys[1], TraceKey::Unknown(_)));
        assert!(matches!(a.keys[2], TraceKey::Fields(..)));
    }

    #[test]
    fn shape_errors() {
        assert_eq!(
            err("workflow", "fields(a)"),
            "missing value for field `a` in `#[workflow]`; write `fields(a = <expr>)`"
        );
        assert_eq!(
            err("workflow", "fields(\"a-b\")"),
            "missing value for field `a-b` in `#[workflow]`; write `fields(\"a-b\" = <expr>)`"
        );
        assert!(err("workflow", "fields = x").starts_with("`fields` in `#[workflow]` takes a list"));
        assert!(err("workflow", "fields").starts_with("`fields` in `#[workflow]` takes a list"));
        assert!(err("workflow", "fields(1 = 2)").starts_with("expected a field name in `fields(..)`"));
        assert_eq!(err("step", "name"), "missing value for `name` in `#[step]`; write `name = \"..\"`");
        assert!(err("step", "name(\"x\")").starts_with("expected `name = \"..\"` in `#[step]`, not a list"));
        assert!(err("step", "\"x\"").contains("to set the name write `name = \"x\"`"));
        assert!(err("step", "crate = \"obs\"").contains("write `crate = obs`"));
        assert!(err("step", "crate = 1").starts_with("expected a path for `crate` in `#[step]`"));
        assert_eq!(err("step", "1"), "expected `name` or `crate`");
        assert_eq!(err("workflow", "1"), "expected one of: `name`, `fields`, `crate`");
    }
}
