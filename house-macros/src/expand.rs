//! Code generation: the user's fn as written, plus a type-namespace companion whose
//! `HandlerRoute` impl builds the route. The route's closure decodes and checks each parameter
//! in declaration order (unrolled, one block per parameter) and then calls the fn.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, Item, Lit, LitFloat, ReturnType};

use crate::ast::{Elem, Handler, Input, Kind, Param, Shape};
use crate::attr::{Number, Rule};
use crate::errors::Errors;
use crate::valid;

/// Expands `#[closing_handler]` / `#[stream_handler]` on `item`.
pub(crate) fn handler(kind: Kind, args: TokenStream, item: Item) -> TokenStream {
    let Item::Fn(func) = item else {
        let error = syn::Error::new_spanned(
            &item,
            format!(
                "`#[{}]` applies to functions, like `fn index() -> &'static str`",
                kind.attr()
            ),
        );
        let error = error.into_compile_error();
        return quote!(#item #error);
    };
    let mut errors = Errors::default();
    let handler = Handler::from_syn(kind, args, func, &mut errors);
    valid::handler(&handler, &mut errors);
    match errors.finish() {
        Ok(()) => companion(&handler, route(&handler)),
        // A `self` receiver means the fn sits in an impl, where no companion type can go.
        Err(error) if handler.func.sig.receiver().is_some() => {
            let func = &handler.func;
            let error = error.into_compile_error();
            quote!(#func #error)
        }
        Err(error) => {
            // The fn and its companion still exist, so `routes![..]` and calls of the fn do not
            // add "cannot find" errors to the real ones.
            let error = error.into_compile_error();
            let mut tokens = companion(
                &handler,
                quote!(::core::unreachable!("the handler did not compile")),
            );
            tokens.extend(error);
            tokens
        }
    }
}

/// The fn as written (minus `#[param]`), the companion type, and its `HandlerRoute` impl.
fn companion(handler: &Handler, body: TokenStream) -> TokenStream {
    let func = &handler.func;
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let cfgs = func.attrs.iter().filter(|a| a.path().is_ident("cfg"));
    let cfgs2 = cfgs.clone();
    quote! {
        #func

        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[doc(hidden)]
        #[derive(::core::fmt::Debug)]
        #vis struct #ident {}

        #(#cfgs2)*
        const _: () = {
            #[automatically_derived]
            impl ::house::__private::HandlerRoute for #ident {
                fn route() -> ::house::Route {
                    #body
                }
            }
        };
    }
}

/// `::house::Route::closing("/path", |ctx| { decode; check; call; respond })…`.
fn route(handler: &Handler) -> TokenStream {
    let sig = &handler.func.sig;
    let ident = &sig.ident;
    let name = ident.unraw().to_string();
    let path = match &handler.args.path {
        Some(path) => path.value(),
        None => format!("/{}", name.replace('_', "-")),
    };
    let reject = |name: &str| match handler.kind {
        Kind::Closing => quote!(return ::house::__private::reject(#name, __house_error)),
        Kind::Stream => quote! {
            return ::core::result::Result::Err(::house::__private::reject(#name, __house_error))
        },
    };
    let mut params = Vec::new();
    let mut args = Vec::new();
    for input in &handler.inputs {
        args.push(match input {
            Input::Request => quote!(__house_request),
            Input::Hub { mutable: true, .. } => quote!(&mut *__house_ctx.hub),
            Input::Hub { mutable: false, .. } => quote!(&*__house_ctx.hub),
            Input::Session { mutable: true, .. } => quote!(&mut __house_ctx.session),
            Input::Session { mutable: false, .. } => quote!(&__house_ctx.session),
            Input::Param(param) => {
                let var = format_ident!("__house_p{}", params.len());
                params.push(param_block(param, &var, reject(&param.name)));
                var.into_token_stream()
            }
        });
    }
    // The trait bound of the return value is spanned at the return type, so a wrong type is
    // reported there.
    let (ret_span, ret_ty) = match &sig.output {
        // The turbofish makes rustc underline the whole type, not only its first token; an
        // `impl Trait` cannot be named there.
        ReturnType::Type(_, ty) if !matches!(**ty, syn::Type::ImplTrait(_)) => {
            (ty.span(), quote!(::<#ty>))
        }
        ReturnType::Type(_, ty) => (ty.span(), TokenStream::new()),
        ReturnType::Default => (ident.span(), TokenStream::new()),
    };
    let (ctor, out_ty, finish) = match handler.kind {
        Kind::Closing => {
            let mut respond =
                quote_spanned!(ret_span=> ::house::__private::respond #ret_ty (__house_output));
            if let Some((_, content_type)) = &handler.args.content_type {
                respond = quote!(::house::__private::with_content_type(#respond, #content_type));
            }
            (
                quote!(::house::Route::closing),
                quote!(::house::Response),
                respond,
            )
        }
        Kind::Stream => (
            quote!(::house::Route::stream),
            quote!(::core::result::Result<::house::Subscribe, ::house::Response>),
            quote_spanned!(ret_span=> ::house::__private::subscribe #ret_ty (__house_output)),
        ),
    };
    let methods = handler
        .args
        .methods
        .as_ref()
        .map(|(_, methods)| quote!(.with_methods(#(::house::Methods::#methods)|*)));
    quote! {
        #ctor(#path, |__house_ctx: &mut ::house::Ctx<'_>| -> #out_ty {
            let __house_request: &::house::Request = __house_ctx.request;
            #(#params)*
            let __house_output = #ident(#(#args),*);
            #finish
        })
        #methods
        .with_name(#name)
    }
}

/// `let __house_p0: T = { decode or return 400; check each rule or return 400; value };`
fn param_block(param: &Param, var: &syn::Ident, reject: TokenStream) -> TokenStream {
    let name = &param.name;
    let ty = &param.ty;
    // Spanned at the type: an unsupported type is reported on the user's parameter.
    let decode = quote_spanned! {ty.span()=>
        <#ty as ::house::FromParam>::from_values(__house_request.params().get_all(#name))
    };
    let checks = param
        .args
        .rules
        .iter()
        .map(|rule| check(param, rule, &reject));
    let checked = quote! {{
        let __house_value: #ty = match #decode {
            ::core::result::Result::Ok(__house_value) => __house_value,
            ::core::result::Result::Err(__house_error) => #reject,
        };
        #(#checks)*
        __house_value
    }};
    match &param.args.default {
        // A default is the developer's value, so the rules (which guard clients' values) skip it.
        Some((_, default)) => {
            let default = default_value(param, default);
            quote! {
                let #var: #ty = if ::core::option::Option::is_none(&__house_request.param(#name)) {
                    #default
                } else #checked;
            }
        }
        None => quote!(let #var: #ty = #checked;),
    }
}

/// One rule's check; element rules look inside `Option`/`Vec`, count rules at the `Vec`.
fn check(param: &Param, rule: &Rule, reject: &TokenStream) -> TokenStream {
    let key = rule.key();
    let fail = |call: TokenStream| {
        quote! {
            if let ::core::result::Result::Err(__house_error) = #call {
                #reject;
            }
        }
    };
    let element = |target: TokenStream| {
        // Spanned at the key: `min` on a type without `Bounded` is reported on `min`.
        fail(match rule {
            Rule::Min(_, n) => {
                let n = number(param.elem, n);
                quote_spanned!(key.span()=> ::house::__private::check_min(#target, #n))
            }
            Rule::Max(_, n) => {
                let n = number(param.elem, n);
                quote_spanned!(key.span()=> ::house::__private::check_max(#target, #n))
            }
            Rule::OneOf(_, values) => {
                quote_spanned!(key.span()=> ::house::__private::check_one_of(#target, &[#(#values),*]))
            }
            Rule::MinCount(..) | Rule::MaxCount(..) => TokenStream::new(),
        })
    };
    match (rule, param.shape) {
        (Rule::MinCount(_, n), _) => {
            fail(quote!(::house::__private::check_min_count(&__house_value, #n)))
        }
        (Rule::MaxCount(_, n), _) => {
            fail(quote!(::house::__private::check_max_count(&__house_value, #n)))
        }
        (_, Shape::One) => element(quote_spanned!(key.span()=> &__house_value)),
        (_, Shape::Option) => {
            let body = element(quote_spanned!(key.span()=> __house_item));
            quote! {
                if let ::core::option::Option::Some(__house_item) = &__house_value {
                    #body
                }
            }
        }
        (_, Shape::Vec) => {
            let body = element(quote_spanned!(key.span()=> __house_item));
            quote! {
                for __house_item in &__house_value {
                    #body
                }
            }
        }
    }
}

/// A bound as a literal of the element's type: `min = 1` on an `f64` becomes `1.0`.
fn number(elem: Elem, n: &Number) -> TokenStream {
    match (&n.lit, elem) {
        (Lit::Int(int), Elem::Float) if int.suffix().is_empty() => {
            let lit = LitFloat::new(&format!("{}.0", int.base10_digits()), int.span());
            let neg = &n.neg;
            quote!(#neg #lit)
        }
        _ => n.to_token_stream(),
    }
}

/// `default = "lobby"` on a `String` becomes `String::from("lobby")`; other defaults are used
/// as written.
fn default_value(param: &Param, default: &Expr) -> TokenStream {
    if let (Expr::Lit(lit), Elem::Str, Shape::One) = (default, param.elem, param.shape) {
        if let Lit::Str(s) = &lit.lit {
            return quote_spanned!(s.span()=> ::std::string::String::from(#s));
        }
    }
    if let (Expr::Lit(lit), Elem::Float, Shape::One) = (default, param.elem, param.shape) {
        if let Lit::Int(_) = &lit.lit {
            return number(
                Elem::Float,
                &Number {
                    neg: None,
                    lit: lit.lit.clone(),
                },
            );
        }
    }
    default.to_token_stream()
}
