//! `#[derive(FromParam)]` for enums of unit variants: a one-of parameter.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

use crate::attr;
use crate::errors::Errors;

/// `impl FromParam` matching each variant's name (kebab-case unless renamed).
pub(crate) fn from_param(input: DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "`FromParam` can be derived for enums of unit variants; implement `house::FromParam` by hand for other types",
        ));
    };
    let mut errors = Errors::default();
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "`FromParam` cannot be derived for generic enums",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut variants = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.push(syn::Error::new_spanned(
                &variant.fields,
                "expected a unit variant: a parameter's value names a variant",
            ));
        }
        let mut name = (kebab(&variant.ident.to_string()), variant.ident.span());
        for a in variant.attrs.iter().filter(|a| attr::is_param(a)) {
            match attr::variant_name(a) {
                Ok(lit) => name = (lit.value(), lit.span()),
                Err(err) => errors.push(err),
            }
        }
        if names.contains(&name.0) {
            errors.push(syn::Error::new(
                name.1,
                format!("two variants are named `{}`", name.0),
            ));
        }
        names.push(name.0);
        variants.push(&variant.ident);
    }
    errors.finish()?;
    let ident = &input.ident;
    let expected = format!(
        "one of {}",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(quote! {
        const _: () = {
            #[automatically_derived]
            impl ::house::FromParam for #ident {
                fn from_param(
                    __house_value: &::core::primitive::str,
                ) -> ::core::result::Result<Self, ::house::ParamError> {
                    match __house_value {
                        #(#names => ::core::result::Result::Ok(#ident::#variants),)*
                        _ => ::core::result::Result::Err(
                            ::house::ParamError::invalid(#expected, __house_value),
                        ),
                    }
                }
            }
        };
    })
}

/// `DarkBlue` → `dark-blue`.
fn kebab(ident: &str) -> String {
    let mut out = String::new();
    for (i, c) in ident.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}
