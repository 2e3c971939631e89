//! `#[transform(name = "...", version = "...", description = "...")]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, Expr, FnArg, ItemFn, Lit, LitStr, Meta, Result, ReturnType, Token};

/// The shape every error about the function repeats.
const EXPECTED: &str = "expected `fn f(row: Input) -> Output` (or `-> Result<Output, \
                        TransformError>`), where `Input` and `Output` are structs with \
                        `#[derive(skewless_guest::Row)]`";

const USAGE: &str = "#[transform(name = \"my-transform\", version = \"1.0.0\", description = \
                     \"...\")]";

struct Args {
    name: LitStr,
    version: LitStr,
    description: Option<LitStr>,
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> Result<TokenStream> {
    let args = parse_args(attr)?;
    let function: ItemFn = syn::parse2(item).map_err(|e| {
        Error::new(
            e.span(),
            format!("#[transform] goes on a function: {EXPECTED}"),
        )
    })?;
    let (input_ty, output_ty) = check_signature(&function)?;

    let description = args.description.unwrap_or_else(|| doc_summary(&function));
    let Args { name, version, .. } = args;
    let sdk = quote!(::skewless_guest);
    let ident = &function.sig.ident;
    let generics = &function.sig.generics;

    // Bounds checked where the author can see them: spanned at the argument and return types.
    let input_check = quote_spanned! {input_ty.span()=>
        #sdk::__private::assert_input_row::<#input_ty>();
    };
    let output_check = quote_spanned! {output_ty.span()=>
        #sdk::__private::assert_output::<#output_ty>();
    };

    Ok(quote! {
        // The row is taken by value by design (the API passes ownership of each row); an
        // author cannot take it by reference, so the lint would only be noise.
        #[allow(
            clippy::needless_pass_by_value,
            reason = "a per-row transform takes its input row by value"
        )]
        #function

        #[allow(dead_code, reason = "checks the transform's argument and return types")]
        const _: () = {
            fn __skewless_check_types #generics () {
                #input_check
                #output_check
            }
        };

        #[doc(hidden)]
        struct __SkewlessRowTransform;

        impl #sdk::Transform for __SkewlessRowTransform {
            fn signature() -> #sdk::Signature {
                #sdk::__private::row_signature(&#ident, #name, #version, #description)
            }

            fn transform(
                input: &#sdk::Batch,
            ) -> ::core::result::Result<#sdk::Batch, #sdk::TransformError> {
                #sdk::__private::run_rows(input, #ident)
            }
        }

        #sdk::export_transform!(__SkewlessRowTransform);
    })
}

fn parse_args(attr: TokenStream) -> Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(attr)
        .map_err(|e| Error::new(e.span(), format!("{e}; expected {USAGE}")))?;
    let (mut name, mut version, mut description) = (None, None, None);
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(Error::new_spanned(
                &meta,
                format!("expected `key = \"value\"`: {USAGE}"),
            ));
        };
        let key = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let slot = match key.as_str() {
            "name" => &mut name,
            "version" => &mut version,
            "description" => &mut description,
            _ => {
                return Err(Error::new_spanned(
                    &pair.path,
                    "unknown #[transform] argument; expected `name`, `version` or `description`",
                ));
            }
        };
        let Expr::Lit(syn::ExprLit {
            lit: Lit::Str(value),
            ..
        }) = &pair.value
        else {
            return Err(Error::new_spanned(
                &pair.value,
                format!("`{key}` must be a string literal, e.g. {key} = \"...\""),
            ));
        };
        if slot.is_some() {
            return Err(Error::new_spanned(
                &pair.path,
                format!("`{key}` is given twice"),
            ));
        }
        if key != "description" && value.value().trim().is_empty() {
            return Err(Error::new_spanned(
                value,
                format!("`{key}` cannot be empty"),
            ));
        }
        *slot = Some(value.clone());
    }
    let missing = |key: &str| {
        Error::new(
            Span::call_site(),
            format!("missing `{key} = \"...\"` in #[transform(...)]: {USAGE}"),
        )
    };
    Ok(Args {
        name: name.ok_or_else(|| missing("name"))?,
        version: version.ok_or_else(|| missing("version"))?,
        description,
    })
}

/// Checks the function's shape; returns its argument and return types.
fn check_signature(function: &ItemFn) -> Result<(&syn::Type, &syn::Type)> {
    let sig = &function.sig;
    let not = |tokens: &dyn quote::ToTokens, what: &str| {
        Err(Error::new_spanned(
            tokens,
            format!("a transform function cannot be {what}: {EXPECTED}"),
        ))
    };
    if let Some(token) = &sig.asyncness {
        return not(token, "async");
    }
    if let Some(token) = &sig.constness {
        return not(token, "const");
    }
    if let Some(token) = &sig.unsafety {
        return not(token, "unsafe");
    }
    if let Some(abi) = &sig.abi {
        return not(abi, "extern");
    }
    if let Some(variadic) = &sig.variadic {
        return not(variadic, "variadic");
    }
    if let Some(param) = sig
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
    {
        return not(param, "generic over types or constants");
    }

    let input_ty = match sig.inputs.len() {
        0 => {
            return Err(Error::new(
                sig.paren_token.span.join(),
                format!(
                    "a transform takes exactly one argument, the input row, and this one takes \
                     none: {EXPECTED}"
                ),
            ));
        }
        1 => match &sig.inputs[0] {
            FnArg::Typed(arg) => &*arg.ty,
            FnArg::Receiver(receiver) => {
                return Err(Error::new_spanned(
                    receiver,
                    format!("a transform is a free function, not a method: {EXPECTED}"),
                ));
            }
        },
        n => {
            let extra: Vec<_> = sig.inputs.iter().skip(1).collect();
            return Err(Error::new_spanned(
                quote!(#(#extra),*),
                format!(
                    "a transform takes exactly one argument, the input row, and this one takes \
                     {n}: {EXPECTED}; put every input column in the input struct"
                ),
            ));
        }
    };
    let output_ty = match &sig.output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => {
            return Err(Error::new(
                sig.paren_token.span.close(),
                format!(
                    "a transform returns the output row, and this one returns nothing: {EXPECTED}"
                ),
            ));
        }
    };
    Ok((input_ty, output_ty))
}

/// The first paragraph of the function's doc comment, on one line.
fn doc_summary(function: &ItemFn) -> LitStr {
    let mut lines = Vec::new();
    for attr in &function.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(pair) = &attr.meta
            && let Expr::Lit(syn::ExprLit {
                lit: Lit::Str(doc), ..
            }) = &pair.value
        {
            let line = doc.value().trim().to_owned();
            if line.is_empty() && !lines.is_empty() {
                break;
            }
            if !line.is_empty() {
                lines.push(line);
            }
        }
    }
    LitStr::new(&lines.join(" "), Span::call_site())
}
