//! Checks of the parsed arguments against the vocabulary and against each other, and of the annotated item.
//!
//! Independent mistakes are gathered into one combined [`syn::Error`], so that a user sees all of them at once.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::{Expr, Ident, Item, ItemFn, Path};

use crate::attr::{AuditArgs, AuditKey, AUDIT_KEYS};
use crate::vocabulary::{self, Entry};

/// Collects independent errors.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// `Ok(())` when nothing was pushed, else every error combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Both results, or every error of the two combined (so that the arguments' and the item's mistakes are
/// reported together).
pub(crate) fn both<A, B>(a: syn::Result<A>, b: syn::Result<B>) -> syn::Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(mut e), Err(other)) => {
            e.combine(other);
            Err(e)
        }
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}

/// Records `key` as seen; a second use of the same key is an error on that token.
fn first_use(seen: &mut Vec<String>, key: &syn::Ident, attr: &str) -> syn::Result<()> {
    let k = key.to_string();
    if seen.contains(&k) {
        return Err(syn::Error::new_spanned(
            key,
            format!("duplicate key `{k}` in `#[{attr}]`; each key may be given once"),
        ));
    }
    seen.push(k);
    Ok(())
}

/// `#[audit]` arguments after every check.
pub(crate) struct Audit {
    pub action: &'static Entry,
    pub resource: &'static Entry,
    pub id: Option<Expr>,
    pub name: Option<Expr>,
    pub description: Option<Expr>,
    /// The disclosure keys.
    pub fields: Fields,
    /// `crate = path`, default `::observer`.
    pub krate: Path,
}

/// The disclosure keys of `#[audit]`, checked.
#[derive(Default)]
pub(crate) struct Fields {
    /// `recipient = expr` (any `Display`; may use `ret`).
    pub recipient: Option<Expr>,
    /// `purpose = Name`, a name of the purpose-of-use vocabulary.
    pub purpose: Option<&'static Entry>,
    /// `data_categories = ["..", ..]`.
    pub data_categories: Vec<syn::LitStr>,
    /// `patient = expr` (any `Display`; may use `ret`), hashed at run time.
    pub patient: Option<Expr>,
    /// `retention_days = N`.
    pub retention_days: Option<syn::LitInt>,
    /// `compliance_frameworks = ["..", ..]`.
    pub compliance_frameworks: Vec<syn::LitStr>,
    /// `immutable = true|false`.
    pub immutable: Option<syn::LitBool>,
}

impl Fields {
    /// Checks the value of disclosure key `key` and stores it.
    fn set(&mut self, key: &Ident, value: Expr) -> syn::Result<()> {
        let name = key.to_string();
        match name.as_str() {
            "recipient" => self.recipient = Some(value),
            "patient" => self.patient = Some(value),
            "purpose" => self.purpose = Some(purpose(&value)?),
            "data_categories" => self.data_categories = strings(&name, &value, "[\"diagnoses\", \"lab_results\"]")?,
            "compliance_frameworks" => self.compliance_frameworks = strings(&name, &value, "[\"HIPAA\"]")?,
            "retention_days" => match &value {
                Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(n), .. })
                    if n.base10_parse::<u32>().is_ok_and(|d| d > 0) && matches!(n.suffix(), "" | "u32") =>
                {
                    self.retention_days = Some(n.clone());
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &value,
                        "expected a whole number of days from 1 to 4294967295 for `retention_days` in `#[audit]`, \
                         e.g. `retention_days = 2190`",
                    ))
                }
            },
            "immutable" => match &value {
                Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => self.immutable = Some(b.clone()),
                _ => {
                    return Err(syn::Error::new_spanned(
                        &value,
                        "expected `true` or `false` for `immutable` in `#[audit]`",
                    ))
                }
            },
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }
}

/// `purpose = Name`: a name of the purpose-of-use vocabulary, with a suggestion for a misspelling.
fn purpose(value: &Expr) -> syn::Result<&'static Entry> {
    let table = vocabulary::PURPOSES;
    let ident = match value {
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => p.path.segments[0].ident.clone(),
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                format!(
                "expected a purpose of use for `purpose` in `#[audit]`, e.g. `purpose = Payment`; expected one of: {}",
                vocabulary::names(table)
            ),
            ))
        }
    };
    let name = ident.to_string();
    vocabulary::lookup(table, &name).ok_or_else(|| {
        let hint =
            vocabulary::suggest(table, &name).map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| ";".into());
        syn::Error::new_spanned(
            &ident,
            format!(
                "unknown purpose of use `{name}` in `#[audit]`{hint} expected one of: {}",
                vocabulary::names(table)
            ),
        )
    })
}

/// `[".." , ..]`: an array of non-empty string literals.
fn strings(key: &str, value: &Expr, example: &str) -> syn::Result<Vec<syn::LitStr>> {
    let error = || {
        syn::Error::new_spanned(
            value,
            format!("expected a list of non-empty string literals for `{key}` in `#[audit]`, e.g. `{key} = {example}`"),
        )
    };
    let Expr::Array(array) = value else { return Err(error()) };
    array
        .elems
        .iter()
        .map(|e| match e {
            Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) if !s.value().trim().is_empty() => Ok(s.clone()),
            _ => Err(error()),
        })
        .collect()
}

/// Checks the action and resource type against the vocabulary and the keys for typos and duplicates.
pub(crate) fn audit(args: AuditArgs) -> syn::Result<Audit> {
    let mut errors = Errors::default();
    let action = vocabulary::lookup(vocabulary::ACTIONS, &args.action.to_string());
    let resource = vocabulary::lookup(vocabulary::RESOURCES, &args.resource.to_string());
    let swapped = action.is_none()
        && resource.is_none()
        && vocabulary::lookup(vocabulary::RESOURCES, &args.action.to_string()).is_some()
        && vocabulary::lookup(vocabulary::ACTIONS, &args.resource.to_string()).is_some();
    if swapped {
        let (a, r) = (&args.action, &args.resource);
        errors.push(syn::Error::new_spanned(
            quote::quote!(#a, #r),
            format!("the action comes first in `#[audit]`: write `#[audit({r}, {a}, ..)]`"),
        ));
    } else {
        if action.is_none() {
            errors.push(unknown_name(&args.action, "action", vocabulary::ACTIONS));
        }
        if resource.is_none() {
            errors.push(unknown_name(&args.resource, "resource type", vocabulary::RESOURCES));
        }
    }

    let (mut id, mut name, mut description, mut krate) = (None, None, None, None);
    let mut fields = Fields::default();
    let mut seen: Vec<String> = Vec::new();
    for key in args.keys {
        if let Err(e) = first_use(&mut seen, key.key(), "audit") {
            errors.push(e);
            continue;
        }
        match key {
            AuditKey::Id(_, e) => id = Some(e),
            AuditKey::Name(_, e) => name = Some(e),
            AuditKey::Description(_, e) => description = Some(e),
            AuditKey::Crate(_, p) => krate = Some(p),
            AuditKey::Field(k, e) => {
                if let Err(e) = fields.set(&k, e) {
                    errors.push(e);
                }
            }
            AuditKey::Unknown(k) => errors.push(unknown_key(&k)),
        }
    }
    errors.finish()?;
    match (action, resource) {
        (Some(action), Some(resource)) => Ok(Audit {
            action,
            resource,
            id,
            name,
            description,
            fields,
            krate: krate.unwrap_or_else(|| syn::parse_quote!(::observer)),
        }),
        // Unreachable: a missing entry pushed an error above.
        _ => Err(syn::Error::new_spanned(&args.action, "invalid `#[audit]` arguments")),
    }
}

fn unknown_name(ident: &Ident, what: &str, table: &'static [Entry]) -> syn::Error {
    let name = ident.to_string();
    let hint =
        vocabulary::suggest(table, &name).map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| ";".into());
    syn::Error::new_spanned(
        ident,
        format!("unknown {what} `{name}` in `#[audit]`{hint} expected one of: {}", vocabulary::names(table)),
    )
}

fn unknown_key(ident: &Ident) -> syn::Error {
    let name = ident.to_string();
    let hint = closest(AUDIT_KEYS, &name).map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| ";".into());
    syn::Error::new_spanned(
        ident,
        format!("unknown key `{name}` in `#[audit]`{hint} expected one of: {}", list(AUDIT_KEYS)),
    )
}

/// The annotated item as a function with a body, or an error naming what it is instead.
pub(crate) fn function(attr: &str, item: TokenStream) -> syn::Result<ItemFn> {
    let parsed: Item = syn::parse2(item.clone())?;
    let kind = match parsed {
        Item::Fn(f) => {
            if let Some(c) = &f.sig.constness {
                return Err(syn::Error::new_spanned(
                    c,
                    format!("`#[{attr}]` cannot be applied to a `const fn`: it records at run time"),
                ));
            }
            if let syn::ReturnType::Type(_, ty) = &f.sig.output {
                if let syn::Type::Never(never) = &**ty {
                    return Err(syn::Error::new_spanned(
                        never,
                        format!("`#[{attr}]` cannot be applied to a function that never returns (`-> !`)"),
                    ));
                }
            }
            return Ok(f);
        }
        Item::Verbatim(tokens) => {
            if let Ok(f) = syn::parse2::<syn::TraitItemFn>(tokens) {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    format!("`#[{attr}]` needs a function with a body; this one has none"),
                ));
            }
            "this item"
        }
        Item::Struct(_) => "a struct",
        Item::Enum(_) => "an enum",
        Item::Union(_) => "a union",
        Item::Impl(_) => "an impl block (put it on each method instead)",
        Item::Trait(_) => "a trait (put it on each method with a body instead)",
        Item::Mod(_) => "a module",
        Item::Const(_) => "a constant",
        Item::Static(_) => "a static",
        Item::Type(_) => "a type alias",
        Item::Use(_) => "a `use` declaration",
        Item::ForeignMod(_) => "an extern block",
        Item::Macro(_) => "a macro invocation",
        _ => "this item",
    };
    Err(syn::Error::new_spanned(
        item_head(item),
        format!("`#[{attr}]` can only be applied to a function (`fn` or `async fn`), not to {kind}"),
    ))
}

/// The tokens of an item before its body or generics, without its attributes: `pub struct Name`.
fn item_head(item: TokenStream) -> TokenStream {
    let mut head = TokenStream::new();
    let mut tokens = item.clone().into_iter();
    let (mut in_attrs, mut after_pub) = (true, false);
    while let Some(tt) = tokens.next() {
        match &tt {
            TokenTree::Punct(p) if in_attrs && p.as_char() == '#' => {
                tokens.next(); // the `[..]` of an outer attribute
                continue;
            }
            // `pub(crate)` belongs to the head; any other group starts the body.
            TokenTree::Group(g) if after_pub && g.delimiter() == Delimiter::Parenthesis => {}
            TokenTree::Group(_) => break,
            TokenTree::Punct(p) if matches!(p.as_char(), '<' | ';' | '=') => break,
            _ => {}
        }
        in_attrs = false;
        after_pub = matches!(&tt, TokenTree::Ident(i) if i == "pub");
        head.extend([tt]);
    }
    if head.is_empty() {
        item
    } else {
        head
    }
}

/// The closest of `candidates` to `name` (ignoring case and `_`), if it is close enough to be a likely misspelling.
/// Used for the keys of the attribute macros, which are not vocabulary tables.
pub(crate) fn closest(candidates: &[&'static str], name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase().replace('_', "");
    candidates
        .iter()
        .map(|cand| (strsim::damerau_levenshtein(&lower, &cand.to_ascii_lowercase()), *cand))
        .filter(|(d, cand)| *d <= 1.max(cand.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `candidates` as "`a`, `b`, `c`", for "expected one of …" messages.
pub(crate) fn list(candidates: &[&str]) -> String {
    candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &str) -> String {
        syn::parse_str::<AuditArgs>(args).and_then(audit).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn accepts_the_vocabulary() {
        for a in vocabulary::ACTIONS {
            for r in vocabulary::RESOURCES {
                assert_eq!(check(&format!("{}, {}", a.macro_name, r.macro_name)), "");
            }
        }
    }

    #[test]
    fn suggests_the_nearest_name() {
        assert!(check("crate, Document").starts_with("unknown action `crate` in `#[audit]`; did you mean `create`?"));
        assert!(check("create, Documnet")
            .starts_with("unknown resource type `Documnet` in `#[audit]`; did you mean `Document`?"));
        assert!(check("create, document").contains("did you mean `Document`?"));
        assert!(check("create, Document, idd = 1").starts_with("unknown key `idd` in `#[audit]`; did you mean `id`?"));
        assert!(check("create, Document, zzzz = 1").starts_with("unknown key `zzzz` in `#[audit]`; expected one of"));
        assert_eq!(
            check("Document, create"),
            "the action comes first in `#[audit]`: write `#[audit(create, Document, ..)]`"
        );
        assert_eq!(
            check("create, Document, id = 1, id = 2"),
            "duplicate key `id` in `#[audit]`; each key may be given once"
        );
    }

    #[test]
    fn checks_the_disclosure_keys() {
        let all = "share, Document, recipient = to, purpose = PublicHealth, patient = p.mrn, \
                   data_categories = [\"a\", \"b\"], retention_days = 30, compliance_frameworks = [\"HIPAA\"], \
                   immutable = true";
        assert_eq!(check(all), "");
        let Ok(a) = syn::parse_str::<AuditArgs>(all).and_then(audit) else { panic!("valid") };
        assert_eq!(a.fields.purpose.map(|p| p.wire), Some("PUBLIC_HEALTH"));
        assert_eq!(a.fields.data_categories.len(), 2);
        assert!(check("share, Document, purpose = Paymnt")
            .starts_with("unknown purpose of use `Paymnt` in `#[audit]`; did you mean `Payment`?"));
        assert!(check("share, Document, purpose = \"PAYMENT\"").starts_with("expected a purpose of use"));
        assert!(check("share, Document, retention_days = 0").starts_with("expected a whole number of days"));
        assert!(check("share, Document, retention_days = -1").starts_with("expected a whole number of days"));
        assert!(check("share, Document, retention_days = 5000000000").starts_with("expected a whole number"));
        assert!(check("share, Document, data_categories = \"a\"").starts_with("expected a list of non-empty"));
        assert!(check("share, Document, compliance_frameworks = [\"\"]").starts_with("expected a list of non-empty"));
        assert!(check("share, Document, compliance_frameworks = [x]").starts_with("expected a list of non-empty"));
        assert_eq!(check("share, Document, immutable = 1"), "expected `true` or `false` for `immutable` in `#[audit]`");
        assert!(check("share, Document, recipent = 1").contains("did you mean `recipient`?"));
        assert_eq!(
            check("share, Document, patient = a, patient = b"),
            "duplicate key `patient` in `#[audit]`; each key may be given once"
        );
    }

    #[test]
    fn gathers_independent_errors() {
        let e = syn::parse_str::<AuditArgs>("craete, Documnet, idd = 1").and_then(audit).err().expect("errors");
        assert_eq!(e.into_iter().count(), 3);
    }

    #[test]
    fn names_the_item_kind() {
        let e =
            |s: &str| function("audit", s.parse().expect("tokens")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e("#[derive(Debug)] pub struct Doc { id: u32 }").ends_with("not to a struct"));
        assert!(e("const fn f() {}").contains("`const fn`"));
        assert!(e("fn f() -> ! { loop {} }").contains("never returns"));
        assert!(e("fn f(&self);").contains("needs a function with a body"));
        assert_eq!(e("pub(crate) async fn f() {}"), "");
        let head = item_head("#[derive(Debug)] pub(crate) struct Doc<T> { id: T }".parse().expect("tokens"));
        assert_eq!(head.to_string(), "pub (crate) struct Doc");
    }
}

// ---- #[workflow] and #[step] ------------------------------------------------------------------------------

/// `#[workflow]` / `#[step]` arguments after every check.
pub(crate) struct Trace {
    /// `name = ".."`; default: the fn's name.
    pub name: Option<syn::LitStr>,
    /// `fields(..)` (`#[workflow]` only), in the order written.
    pub fields: Vec<crate::attr::Field>,
    /// `crate = path`, default `::observer`.
    pub krate: Path,
}

/// Checks the keys of `#[attr(..)]` (`workflow` or `step`): known to that attribute, each at most once, `name` a
/// non-empty string literal, field names unique.
pub(crate) fn trace(attr: &'static str, args: crate::attr::TraceArgs) -> syn::Result<Trace> {
    use crate::attr::{TraceKey, STEP_KEYS, WORKFLOW_KEYS};

    let allowed = if attr == "workflow" { WORKFLOW_KEYS } else { STEP_KEYS };
    let mut errors = Errors::default();
    let (mut name, mut fields, mut krate) = (None, Vec::new(), None);
    let mut seen: Vec<String> = Vec::new();
    for key in args.keys {
        if let Err(e) = first_use(&mut seen, key.key(), attr) {
            errors.push(e);
            continue;
        }
        match key {
            TraceKey::Name(_, value) => match &value {
                Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), attrs }) if attrs.is_empty() => {
                    if lit.value().trim().is_empty() {
                        errors.push(syn::Error::new_spanned(lit, format!("`name` in `#[{attr}]` must not be empty")));
                    }
                    name = Some(lit.clone());
                }
                _ => errors.push(syn::Error::new_spanned(
                    &value,
                    format!(
                        "expected a string literal for `name` in `#[{attr}]`, e.g. `name = \"{}\"`",
                        if attr == "workflow" { "process-order" } else { "validate" }
                    ),
                )),
            },
            TraceKey::Fields(_, list) if allowed.contains(&"fields") => {
                let mut names: Vec<&str> = Vec::new();
                for field in &list {
                    if names.contains(&field.name.as_str()) {
                        errors.push(syn::Error::new_spanned(
                            &field.key,
                            format!(
                                "duplicate field `{}` in `fields(..)` of `#[{attr}]`; each field may be given once",
                                field.name
                            ),
                        ));
                    } else {
                        names.push(&field.name);
                    }
                }
                fields = list;
            }
            TraceKey::Fields(key, _) => errors.push(syn::Error::new_spanned(
                &key,
                format!(
                    "unknown key `fields` in `#[{attr}]`; expected one of: {} (`fields(..)` is for `#[workflow]`)",
                    list(allowed)
                ),
            )),
            TraceKey::Crate(_, path) => krate = Some(path),
            TraceKey::Unknown(key) => {
                let name = key.to_string();
                let hint =
                    closest(allowed, &name).map(|s| format!("; did you mean `{s}`?")).unwrap_or_else(|| ";".into());
                errors.push(syn::Error::new_spanned(
                    &key,
                    format!("unknown key `{name}` in `#[{attr}]`{hint} expected one of: {}", list(allowed)),
                ));
            }
        }
    }
    errors.finish()?;
    Ok(Trace { name, fields, krate: krate.unwrap_or_else(|| syn::parse_quote!(::observer)) })
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    fn check(attr: &'static str, args: &str) -> String {
        crate::attr::TraceArgs::parse(attr, args.parse().expect("tokens"))
            .and_then(|a| trace(attr, a))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn accepts_the_keys() {
        assert_eq!(check("workflow", "name = \"a\", fields(x = 1), crate = ::observer"), "");
        assert_eq!(check("step", "name = \"a\", crate = ::observer"), "");
        let t = crate::attr::TraceArgs::parse("workflow", quote::quote!()).and_then(|a| trace("workflow", a));
        let Ok(t) = t else { panic!("no arguments is valid") };
        assert!(t.name.is_none() && t.fields.is_empty());
        assert_eq!(quote::ToTokens::to_token_stream(&t.krate).to_string(), ":: observer");
    }

    #[test]
    fn reports_mistakes() {
        assert_eq!(
            check("workflow", "nmae = \"x\""),
            "unknown key `nmae` in `#[workflow]`; did you mean `name`? expected one of: `name`, `fields`, `crate`"
        );
        assert_eq!(check("step", "zzz = 1"), "unknown key `zzz` in `#[step]`; expected one of: `name`, `crate`");
        assert!(check("step", "fields(a = 1)").contains("(`fields(..)` is for `#[workflow]`)"));
        assert_eq!(
            check("step", "name = x"),
            "expected a string literal for `name` in `#[step]`, e.g. `name = \"validate\"`"
        );
        assert_eq!(check("workflow", "name = \" \""), "`name` in `#[workflow]` must not be empty");
        assert_eq!(
            check("workflow", "name = \"a\", name = \"b\""),
            "duplicate key `name` in `#[workflow]`; each key may be given once"
        );
        assert_eq!(
            check("workflow", "fields(a = 1, a = 2)"),
            "duplicate field `a` in `fields(..)` of `#[workflow]`; each field may be given once"
        );
    }

    #[test]
    fn gathers_independent_errors() {
        let e = crate::attr::TraceArgs::parse("workflow", "nmae = 1, name = x, fields(a = 1, a = 2)".parse().unwrap())
            .and_then(|a| trace("workflow", a))
            .err()
            .expect("errors");
        assert_eq!(e.into_iter().count(), 3);
    }
}
