//! `#[derive(Row)]`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Data, DeriveInput, Error, Fields, GenericArgument, GenericParam, Lifetime, LitStr,
    PathArguments, Result, Type,
};

/// The list of supported field types, for error messages.
const SUPPORTED: &str = "a row field is one of bool, i32, i64, f32, f64, String, &str, Vec<u8>, \
                         &[u8], Timestamp, Vector<N>, [f32; N], or Option<T> of one of these \
                         for a nullable column";

pub(crate) fn expand(input: &DeriveInput) -> Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => &fields.named,
            other => {
                return Err(Error::new_spanned(
                    other,
                    "#[derive(Row)] needs a struct with named fields: each field is a column, \
                     named after the field",
                ));
            }
        },
        Data::Enum(data) => {
            return Err(Error::new_spanned(
                data.enum_token,
                "#[derive(Row)] needs a struct with named fields, not an enum: each field is a \
                 column, named after the field",
            ));
        }
        Data::Union(data) => {
            return Err(Error::new_spanned(
                data.union_token,
                "#[derive(Row)] needs a struct with named fields, not a union",
            ));
        }
    };

    // At most one lifetime, for borrowed `&str` / `&[u8]` input fields; no type or const
    // parameters, because the column types must be known.
    let mut lifetime: Option<&Lifetime> = None;
    for param in &input.generics.params {
        match param {
            GenericParam::Lifetime(def) if lifetime.is_none() => lifetime = Some(&def.lifetime),
            GenericParam::Lifetime(def) => {
                return Err(Error::new_spanned(
                    def,
                    "#[derive(Row)] supports at most one lifetime parameter (for `&str` and \
                     `&[u8]` fields borrowing from the batch)",
                ));
            }
            GenericParam::Type(_) | GenericParam::Const(_) => {
                return Err(Error::new_spanned(
                    param,
                    "#[derive(Row)] does not support type or const parameters: each field needs \
                     a concrete column type",
                ));
            }
        }
    }
    if let Some(where_clause) = &input.generics.where_clause {
        return Err(Error::new_spanned(
            where_clause,
            "#[derive(Row)] does not support where clauses",
        ));
    }

    let mut errors: Option<Error> = None;
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut idents = Vec::new();
    for field in fields {
        let ident = field.ident.as_ref().expect("named fields have names");
        let name = match column_name(field) {
            Ok(name) => name,
            Err(e) => {
                combine(&mut errors, e);
                continue;
            }
        };
        if let Err(e) = check_field_type(&field.ty, &name, true) {
            combine(&mut errors, e);
        }
        if names.iter().any(|n: &LitStr| n.value() == name) {
            combine(
                &mut errors,
                Error::new_spanned(ident, format!("two fields have the column name `{name}`")),
            );
        }
        names.push(LitStr::new(&name, ident.span()));
        types.push(&field.ty);
        idents.push(ident);
    }
    if let Some(errors) = errors {
        return Err(errors);
    }

    let ident = &input.ident;
    let sdk = quote!(::skewless_guest);
    let indices: Vec<syn::Index> = (0..types.len()).map(syn::Index::from).collect();
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    // The reader lifetime: the struct's own, or a fresh one.
    let read_lifetime = lifetime
        .cloned()
        .unwrap_or_else(|| Lifetime::new("'a", Span::call_site()));
    let read_impl_generics = if lifetime.is_some() {
        quote!(#impl_generics)
    } else {
        quote!(<#read_lifetime>)
    };
    // Bounds spanned at each field type, so an unsupported type that passed the syntactic
    // check (a same-named type of another crate) is reported at the field.
    let field_checks = types.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            let _ = <#ty as #sdk::row::ReadField<#read_lifetime>>::read;
        }
    });
    let field_defs = types.iter().zip(&names).map(|(ty, name)| {
        quote! {
            #sdk::Field::new(
                #name,
                <#ty as #sdk::row::RowField>::data_type(),
                <#ty as #sdk::row::RowField>::NULLABLE,
            )
        }
    });

    Ok(quote! {
        impl #impl_generics #sdk::Row for #ident #ty_generics {
            type Builder = (#(<#types as #sdk::row::RowField>::Builder,)*);

            fn fields() -> ::std::vec::Vec<#sdk::Field> {
                ::std::vec![#(#field_defs),*]
            }

            #[inline]
            fn builder(capacity: usize) -> Self::Builder {
                (#(<#types as #sdk::row::RowField>::builder(capacity),)*)
            }

            #[inline]
            fn push(builder: &mut Self::Builder, row: Self) {
                #(<#types as #sdk::row::RowField>::push(&mut builder.#indices, row.#idents);)*
            }

            fn finish(builder: Self::Builder, batch: &mut #sdk::BatchBuilder) {
                #(batch.add_column(#names, builder.#indices);)*
            }
        }

        impl #read_impl_generics #sdk::ReadRow<#read_lifetime> for #ident #ty_generics {
            type Reader = (#(<#types as #sdk::row::ReadField<#read_lifetime>>::Reader,)*);

            fn reader(
                batch: &#read_lifetime #sdk::Batch,
            ) -> ::core::result::Result<Self::Reader, #sdk::TransformError> {
                #(#field_checks)*
                ::core::result::Result::Ok((
                    #(<#types as #sdk::row::ReadField<#read_lifetime>>::reader(batch, #names)?,)*
                ))
            }

            #[inline]
            fn read(reader: &Self::Reader, row: usize) -> Self {
                Self {
                    #(#idents: <#types as #sdk::row::ReadField<#read_lifetime>>::read(
                        &reader.#indices,
                        row,
                    ),)*
                }
            }
        }
    })
}

fn combine(errors: &mut Option<Error>, error: Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

/// The column name: `#[row(name = "...")]` or the field name without `r#`.
fn column_name(field: &syn::Field) -> Result<String> {
    let ident = field.ident.as_ref().expect("named fields have names");
    let mut name = None;
    for attr in &field.attrs {
        if !attr.path().is_ident("row") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    return Err(Error::new_spanned(value, "a column name cannot be empty"));
                }
                name = Some(value.value());
                Ok(())
            } else {
                Err(meta.error("unknown #[row] option; expected `name = \"column_name\"`"))
            }
        })?;
    }
    Ok(name.unwrap_or_else(|| {
        let name = ident.to_string();
        name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
    }))
}

/// Checks a field type against the supported ones, by name: the error then says which field
/// and what to use instead. (A type alias of a supported type is rejected too; use the type.)
fn check_field_type(ty: &Type, field: &str, top: bool) -> Result<()> {
    let unsupported = |hint: &str| {
        Error::new_spanned(
            ty,
            format!(
                "unsupported type `{}` for row field `{field}`: {SUPPORTED}{hint}",
                pretty(ty)
            ),
        )
    };
    match ty {
        Type::Group(group) => check_field_type(&group.elem, field, top),
        Type::Paren(paren) => check_field_type(&paren.elem, field, top),
        Type::Array(array) => {
            if is_ident(&array.elem, "f32") {
                Ok(())
            } else {
                Err(unsupported(
                    "; a fixed-size array must hold f32 (a float32 vector)",
                ))
            }
        }
        Type::Reference(reference) => {
            if reference.mutability.is_some() {
                return Err(unsupported("; use a shared reference"));
            }
            match &*reference.elem {
                Type::Path(_) if is_ident(&reference.elem, "str") => Ok(()),
                Type::Slice(slice) if is_ident(&slice.elem, "u8") => Ok(()),
                _ => Err(unsupported(
                    "; the supported references are `&str` and `&[u8]`",
                )),
            }
        }
        Type::Path(path) if path.qself.is_none() => {
            let segment = path.path.segments.last().expect("a path has a segment");
            let name = segment.ident.to_string();
            let args: Vec<&GenericArgument> = match &segment.arguments {
                PathArguments::None => Vec::new(),
                PathArguments::AngleBracketed(args) => args.args.iter().collect(),
                PathArguments::Parenthesized(_) => return Err(unsupported("")),
            };
            match (name.as_str(), args.as_slice()) {
                ("bool" | "i32" | "i64" | "f32" | "f64" | "String" | "Timestamp", []) => Ok(()),
                ("Vec", [GenericArgument::Type(elem)]) if is_ident(elem, "u8") => Ok(()),
                ("Vec", [GenericArgument::Type(elem)]) if is_ident(elem, "f32") => Err(
                    unsupported("; for an embedding use `Vector<N>` or `[f32; N]` (fixed size N)"),
                ),
                ("Vec", _) => Err(unsupported(
                    "; `Vec<u8>` (binary) is the only supported Vec",
                )),
                ("Vector", [GenericArgument::Const(_) | GenericArgument::Type(_)]) => Ok(()),
                ("Option", [GenericArgument::Type(inner)]) if top => {
                    if let Type::Path(inner_path) = inner
                        && inner_path
                            .path
                            .segments
                            .last()
                            .is_some_and(|s| s.ident == "Option")
                    {
                        return Err(unsupported("; `Option` cannot be nested"));
                    }
                    check_field_type(inner, field, false)
                }
                ("u8" | "u16" | "i8" | "i16", []) => Err(unsupported("; use `i32`")),
                ("u32" | "u64" | "usize" | "isize" | "u128" | "i128", []) => {
                    Err(unsupported("; use `i64` (or `i32`) for integers"))
                }
                ("char", []) => Err(unsupported("; use `String`")),
                ("HashMap" | "BTreeMap" | "HashSet" | "BTreeSet", _) => Err(unsupported(
                    "; a column holds one scalar, string, bytes or vector value per row",
                )),
                _ => Err(unsupported("")),
            }
        }
        _ => Err(unsupported("")),
    }
}

fn is_ident(ty: &Type, ident: &str) -> bool {
    match ty {
        Type::Path(path) => path.qself.is_none() && path.path.is_ident(ident),
        Type::Group(group) => is_ident(&group.elem, ident),
        Type::Paren(paren) => is_ident(&paren.elem, ident),
        _ => false,
    }
}

/// A type as an author wrote it (`Vec<u64>`, not `Vec < u64 >`).
pub(crate) fn pretty(tokens: &impl quote::ToTokens) -> String {
    let mut s = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (":: ", "::"),
        (" ,", ","),
        ("& ", "&"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        ("' ", "'"),
    ] {
        s = s.replace(from, to);
    }
    s
}
