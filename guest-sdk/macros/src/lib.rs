//! Procedural macros of [`skewless-guest`](https://docs.rs/skewless-guest): `#[derive(Row)]`
//! and `#[transform(...)]`. Use them through `skewless_guest`, which re-exports them and
//! documents them; the generated code names `::skewless_guest`.
//!
//! Both macros check the author's code before generating anything and report mistakes with
//! `syn::Error::new_spanned`, pointing at the field, argument or attribute to change. What only
//! the type checker can know (is this argument type a row?) is left to trait bounds whose
//! `#[diagnostic::on_unimplemented]` messages live in `skewless-guest`.

use proc_macro::TokenStream;

mod row;
mod transform;

/// Derives `skewless_guest::Row` and `skewless_guest::ReadRow` for a struct with named fields.
#[proc_macro_derive(Row, attributes(row))]
pub fn derive_row(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    row::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Exports a per-row function `fn f(row: Input) -> Output` as the crate's transform.
#[proc_macro_attribute]
pub fn transform(attr: TokenStream, item: TokenStream) -> TokenStream {
    transform::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
