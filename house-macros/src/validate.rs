//! `#[derive(Validate)]`: `#[param(min, max, one_of)]` rules on the fields of a struct that a
//! `#[body]` decodes, checked with the same functions (and messages) as parameters.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields};

use crate::ast::{Param, Source};
use crate::attr::{self, ParamArgs, Rule};
use crate::errors::Errors;
use crate::{expand, valid};

/// `impl Validate` checking each field's rules in declaration order, each in the order written.
pub(crate) fn validate(input: DeriveInput) -> syn::Result<TokenStream> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => fields,
            _ => {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "`Validate` can be derived for structs with named fields, whose rules name the field; check other types in the handler",
                ))
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "`Validate` can be derived for structs with named fields, whose rules name the field; check other types in the handler",
            ))
        }
    };
    let mut errors = Errors::default();
    let mut checks = Vec::new();
    for field in &fields.named {
        let Some(ident) = &field.ident else {
            continue;
        };
        let mut args = ParamArgs::default();
        for (i, a) in field.attrs.iter().filter(|a| attr::is_param(a)).enumerate() {
            if i > 0 {
                errors.push(syn::Error::new_spanned(
                    a,
                    "`#[param]` specified more than once; put every rule in one `#[param(...)]`",
                ));
                continue;
            }
            match attr::param_tokens(a) {
                Ok(tokens) => args = ParamArgs::parse(tokens, &mut errors),
                Err(err) => errors.push(err),
            }
        }
        // What parameters have but fields do not: serde names and fills fields.
        if let Some(name) = &args.name {
            errors.push(syn::Error::new(
                name.span(),
                "`name` does not apply to a body field: rename it with `#[serde(rename = \"…\")]`",
            ));
        }
        if let Some((key, _)) = &args.default {
            errors.push(syn::Error::new(
                key.span(),
                "`default` does not apply to a body field: use `#[serde(default)]`",
            ));
        }
        args.rules.retain(|rule| match rule {
            Rule::MinCount(key, _) | Rule::MaxCount(key, _) => {
                errors.push(syn::Error::new(
                    key.span(),
                    format!("`{key}` applies to repeated handler parameters, not to body fields; bound a list field with `min`/`max` on its elements, or check its length in the handler"),
                ));
                false
            }
            _ => true,
        });
        let name = ident.unraw().to_string();
        let param = Param::new(
            name.clone(),
            ident.span(),
            &field.ty,
            args,
            Source::Field,
            &mut errors,
        );
        valid::rules(&param, &mut errors);
        let reject = quote! {
            return ::core::result::Result::Err(::house::BodyError::field(#name, __house_error))
        };
        for rule in &param.args.rules {
            checks.push(expand::check(&param, rule, &quote!(self.#ident), &reject));
        }
    }
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "`Validate` cannot be derived for generic structs",
        ));
    }
    errors.finish()?;
    let ident = &input.ident;
    Ok(quote! {
        const _: () = {
            #[automatically_derived]
            impl ::house::Validate for #ident {
                fn validate(&self) -> ::core::result::Result<(), ::house::BodyError> {
                    #(#checks)*
                    ::core::result::Result::Ok(())
                }
            }
        };
    })
}
