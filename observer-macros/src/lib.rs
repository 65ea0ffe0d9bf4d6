//! Attribute macros for the [`observer`](https://docs.rs/observer) SDK.
//!
//! Use them through the `observer` crate (`#[observer::audit(..)]`), which re-exports them; this crate's
//! generated code calls `::observer::__private`, which is not public API.

mod vocab;
mod vocabulary;

use proc_macro::TokenStream;

/// Generates the runtime's vocabulary enums from the shared tables. Not public API.
#[doc(hidden)]
#[proc_macro]
pub fn __vocabulary(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as vocabulary::VocabularyInput);
    vocabulary::expand(input).unwrap_or_else(syn::Error::into_compile_error).into()
}
