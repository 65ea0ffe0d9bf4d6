//! `__vocabulary!`: generates the runtime's vocabulary enums from the tables in [`crate::vocabulary`].

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, Token, Visibility};

use crate::vocabulary;

/// `#[attrs] pub enum Name;`
pub(crate) struct VocabularyInput {
    attrs: Vec<Attribute>,
    vis: Visibility,
    ident: Ident,
}

impl Parse for VocabularyInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        input.parse::<Token![enum]>()?;
        let ident = input.parse()?;
        input.parse::<Token![;]>()?;
        Ok(Self { attrs, vis, ident })
    }
}

pub(crate) fn expand(input: VocabularyInput) -> syn::Result<TokenStream> {
    let VocabularyInput { attrs, vis, ident } = input;
    let table = vocabulary::table(&ident.to_string()).ok_or_else(|| {
        let known = vocabulary::GENERATED.iter().map(|(name, _)| format!("`{name}`")).collect::<Vec<_>>();
        syn::Error::new_spanned(&ident, format!("`__vocabulary!` knows only {}", known.join(", ")))
    })?;
    let variants = table.iter().map(|e| {
        let v = format_ident!("{}", e.variant);
        let (wire, doc) = (e.wire, e.doc);
        quote! { #[doc = #doc] #[serde(rename = #wire)] #v }
    });
    let all = table.iter().map(|e| format_ident!("{}", e.variant));
    let as_str_doc = format!("The JSON spelling, e.g. `\"{}\"`.", table.first().map_or("", |e| e.wire));
    let arms = table.iter().map(|e| {
        let v = format_ident!("{}", e.variant);
        let wire = e.wire;
        quote! { Self::#v => #wire }
    });
    Ok(quote! {
        #(#attrs)*
        #vis enum #ident { #(#variants,)* }

        impl #ident {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[ #(Self::#all,)* ];

            #[doc = #as_str_doc]
            pub const fn as_str(self) -> &'static str {
                match self { #(#arms,)* }
            }
        }
    })
}
