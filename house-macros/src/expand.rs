//! Code generation: the user's fn as written, plus a type-namespace companion whose
//! `HandlerRoute` impl builds the route. The route's closure decodes and checks each parameter
//! in declaration order (unrolled, one block per parameter) and then calls the fn.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Item, ItemFn, Lit, LitFloat, ReturnType};

use crate::ast::{self, Elem, Handler, Input, Kind, Marks, Param, Shape, Source};
use crate::attr::{self, Number, Rule};
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
    let shape = shape(&handler);
    match errors.finish() {
        Ok(()) => companion(&handler.func, route(&handler), shape),
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
                &handler.func,
                quote!(::core::unreachable!("the handler did not compile")),
                shape,
            );
            tokens.extend(error);
            tokens
        }
    }
}

/// `(shape, methods)` for `routes!`'s clash check: the template without parameter names, and
/// one bit per method in `attr::METHODS` order.
fn shape(handler: &Handler) -> TokenStream {
    let shape = &handler.template.shape;
    let bits = match &handler.args.methods {
        Some((_, methods)) => methods
            .iter()
            .filter_map(|m| attr::METHODS.iter().position(|known| m == known))
            .fold(0u8, |bits, i| bits | 1 << i),
        // `GET`, `HEAD`, `POST`, as `Methods::DEFAULT`.
        None => 0b111,
    };
    quote!((#shape, #bits))
}

/// The fn as written (minus our attributes), the companion type, and its `HandlerRoute` impl.
fn companion(func: &ItemFn, body: TokenStream, shape: TokenStream) -> TokenStream {
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
                const SHAPE: (&'static ::core::primitive::str, ::core::primitive::u8) = #shape;

                fn route() -> ::house::Route {
                    #body
                }
            }
        };
    }
}

/// `::house::Route::closing("/path", |ctx| { guard; state; body; decode; check; call;
/// respond })…`.
fn route(handler: &Handler) -> TokenStream {
    let sig = &handler.func.sig;
    let ident = &sig.ident;
    let name = ident.unraw().to_string();
    let path = &handler.path;
    // How a refusal leaves the route's closure: a closing handler returns the response, a
    // stream handler sends it instead of the stream.
    let leave = |response: TokenStream| match handler.kind {
        Kind::Closing => quote!(return #response),
        Kind::Stream => quote!(return ::core::result::Result::Err(#response)),
    };
    let reject = |name: &str| leave(quote!(::house::__private::reject(#name, __house_error)));
    let refuse = leave(quote!(__house_refusal));
    let mut guards = Vec::new();
    let mut states = Vec::new();
    let mut needs = Vec::new();
    let mut guard_needs = Vec::new();
    let mut bodies = Vec::new();
    let mut params = Vec::new();
    let mut args = Vec::new();
    let mut queried = false;
    for (i, input) in handler.inputs.iter().enumerate() {
        let var = format_ident!("__house_a{}", i);
        args.push(match input {
            Input::Request => quote!(__house_request),
            Input::Hub { mutable: true, .. } => quote!(&mut *__house_ctx.hub),
            Input::Hub { mutable: false, .. } => quote!(&*__house_ctx.hub),
            Input::Session { mutable: true, .. } => quote!(&mut __house_ctx.session),
            Input::Session { mutable: false, .. } => quote!(&__house_ctx.session),
            // Reported by valid.rs; the argument is never built.
            Input::Caught(_) => quote!(::core::unreachable!()),
            Input::Guard(ty) => {
                guard_needs.push(quote_spanned!(ty.span()=>
                    let __house_route = <#ty as ::house::FromRequest>::needs(__house_route);
                ));
                let call = quote_spanned!(ty.span()=>
                    <#ty as ::house::FromRequest>::from_request(__house_ctx)
                );
                guards.push(quote! {
                    let #var: #ty = match #call {
                        ::core::result::Result::Ok(__house_value) => __house_value,
                        ::core::result::Result::Err(__house_refusal) => #refuse,
                    };
                });
                var.into_token_stream()
            }
            Input::State(ty) => {
                needs.push(quote_spanned!(ty.span()=> .needs_state::<#ty>()));
                states.push(quote! {
                    let #var: &#ty = match ::house::__private::state::<#ty>(__house_state) {
                        ::core::result::Result::Ok(__house_value) => __house_value,
                        ::core::result::Result::Err(__house_refusal) => #refuse,
                    };
                });
                var.into_token_stream()
            }
            Input::Body(ty, _) => {
                let call = quote_spanned!(ty.span()=>
                    ::house::__private::body::<#ty>(__house_request)
                );
                let validate = validate_body(&var, &refuse);
                bodies.push(quote! {
                    let #var: #ty = match #call {
                        ::core::result::Result::Ok(__house_value) => __house_value,
                        ::core::result::Result::Err(__house_refusal) => #refuse,
                    };
                    #validate
                });
                var.into_token_stream()
            }
            Input::Param(param) => {
                queried |= param.source == Source::Query;
                params.push(param_block(param, &var, reject(&param.name)));
                var.into_token_stream()
            }
        });
    }
    // A form handler sent JSON or multipart would otherwise answer "missing parameter".
    let expect_form = (queried && bodies.is_empty()).then(|| {
        quote! {
            if let ::core::result::Result::Err(__house_refusal) =
                ::house::__private::expect_form(__house_request)
            {
                #refuse;
            }
        }
    });
    let state = (!states.is_empty())
        .then(|| quote!(let __house_state: &::house::States = __house_ctx.state;));
    // The trait bound of the return value is spanned at the return type, so a wrong type is
    // reported there.
    let (ret_span, ret_ty) = return_type(sig);
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
    // Guards first, so a request that may not see the route gets their answer (a 401), not a
    // 400 about a parameter.
    quote! {{
        let __house_route = #ctor(#path, |__house_ctx: &mut ::house::Ctx<'_>| -> #out_ty {
            let __house_request: &::house::Request = __house_ctx.request;
            #(#guards)*
            #state
            #(#states)*
            #(#bodies)*
            #expect_form
            #(#params)*
            let __house_output = #ident(#(#args),*);
            #finish
        })
        #methods
        #(#needs)*
        .with_name(#name);
        // What the guards need from the state (`Bearer`: `BearerTokens`), checked at start-up.
        #(#guard_needs)*
        __house_route
    }}
}

/// Where a return type's trait bound is reported, and the turbofish naming it.
fn return_type(sig: &syn::Signature) -> (proc_macro2::Span, TokenStream) {
    match &sig.output {
        // The turbofish makes rustc underline the whole type, not only its first token; an
        // `impl Trait` cannot be named there.
        ReturnType::Type(_, ty) if !matches!(**ty, syn::Type::ImplTrait(_)) => {
            (ty.span(), quote!(::<#ty>))
        }
        ReturnType::Type(_, ty) => (ty.span(), TokenStream::new()),
        ReturnType::Default => (sig.ident.span(), TokenStream::new()),
    }
}

/// The body's `#[param]` field rules when its type derives `Validate`, and nothing for other
/// types (`validate_body!` chooses by autoref specialisation on the concrete type).
fn validate_body(var: &syn::Ident, refuse: &TokenStream) -> TokenStream {
    quote! {
        if let ::core::result::Result::Err(__house_refusal) =
            ::house::__private::validate_body!(&#var)
        {
            #refuse;
        }
    }
}

/// `let __house_p0: T = { decode or return 400; check each rule or return 400; value };`
fn param_block(param: &Param, var: &syn::Ident, reject: TokenStream) -> TokenStream {
    let name = &param.name;
    let ty = &param.ty;
    let values = match param.source {
        Source::Path => quote!(path_params),
        Source::Query | Source::Field => quote!(params),
    };
    // Spanned at the type: an unsupported type is reported on the user's parameter.
    let decode = quote_spanned! {ty.span()=>
        <#ty as ::house::FromParam>::from_values(__house_request.#values().get_all(#name))
    };
    let checks = param
        .args
        .rules
        .iter()
        .map(|rule| check(param, rule, &quote!(__house_value), &reject));
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

/// One rule's check of the place `value`; element rules look inside `Option`/`Vec`, count
/// rules at the `Vec`.
pub(crate) fn check(
    param: &Param,
    rule: &Rule,
    value: &TokenStream,
    reject: &TokenStream,
) -> TokenStream {
    let key = rule.key();
    // On the key, like the rest of the check: a missing `Bounded` is reported on `max`.
    let value: TokenStream = value
        .clone()
        .into_iter()
        .map(|mut tree| {
            tree.set_span(key.span());
            tree
        })
        .collect();
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
        (Rule::MinCount(_, n), _) => fail(quote!(::house::__private::check_min_count(&#value, #n))),
        (Rule::MaxCount(_, n), _) => fail(quote!(::house::__private::check_max_count(&#value, #n))),
        (_, Shape::One) => element(quote_spanned!(key.span()=> &#value)),
        (_, Shape::Option) => {
            let body = element(quote_spanned!(key.span()=> __house_item));
            quote! {
                if let ::core::option::Option::Some(__house_item) = &#value {
                    #body
                }
            }
        }
        (_, Shape::Vec) => {
            let body = element(quote_spanned!(key.span()=> __house_item));
            quote! {
                for __house_item in &#value {
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

/// Expands `#[catcher(404)]` on `item`: a companion whose route is
/// `::house::Route::catcher(status, |caught| …)`.
pub(crate) fn catcher(args: TokenStream, item: Item) -> TokenStream {
    let Item::Fn(mut func) = item else {
        let error = syn::Error::new_spanned(
            &item,
            "`#[catcher]` applies to functions, like `fn not_found(caught: &Caught) -> String`",
        );
        let error = error.into_compile_error();
        return quote!(#item #error);
    };
    let mut errors = Errors::default();
    let code = catcher_status(args, &mut errors);
    valid::signature(&func.sig, &mut errors);
    let mut takes_caught = false;
    for arg in &mut func.sig.inputs {
        let FnArg::Typed(typed) = arg else {
            errors.push(syn::Error::new_spanned(
                arg,
                "catchers cannot take `self`; declare the catcher as a free function",
            ));
            continue;
        };
        let marks = Marks::take(&mut typed.attrs, &mut errors);
        for attr in marks.params.iter().chain(&marks.guard).chain(&marks.body) {
            errors.push(syn::Error::new_spanned(
                attr,
                "a catcher's only argument is `&Caught`: remove this attribute",
            ));
        }
        let caught = matches!(&*typed.ty, syn::Type::Reference(r)
            if r.mutability.is_none() && ast::last_ident(&r.elem).is_some_and(|i| i == "Caught"));
        if !caught || takes_caught {
            errors.push(syn::Error::new_spanned(
                &typed.ty,
                "a catcher takes one argument, `caught: &Caught` (the status, the request when there is one, and the detail), or none",
            ));
        }
        takes_caught = true;
    }
    let name = func.sig.ident.unraw().to_string();
    let shape = quote!((#code, 0u8));
    let body = match (errors.finish(), code.parse::<u16>()) {
        (Ok(()), Ok(code)) => {
            let ident = &func.sig.ident;
            let (ret_span, ret_ty) = return_type(&func.sig);
            let arg = takes_caught.then(|| quote!(__house_caught));
            let respond =
                quote_spanned!(ret_span=> ::house::__private::respond #ret_ty (__house_output));
            quote! {
                ::house::Route::catcher(
                    ::house::Status::from_code(#code),
                    |__house_caught: &::house::Caught<'_>| -> ::house::Response {
                        let __house_output = #ident(#arg);
                        #respond
                    },
                )
                .with_name(#name)
            }
        }
        (Err(error), _) => {
            let mut tokens = companion(
                &func,
                quote!(::core::unreachable!("the catcher did not compile")),
                shape,
            );
            tokens.extend(error.into_compile_error());
            return tokens;
        }
        (Ok(()), Err(_)) => quote!(::core::unreachable!("the catcher did not compile")),
    };
    companion(&func, body, shape)
}

/// `404` in `#[catcher(404)]`: an error status, 400 to 599. Returns the code's digits (or `""`
/// when there is none), for the companion's shape.
fn catcher_status(args: TokenStream, errors: &mut Errors) -> String {
    let expected = "expected the status this catcher answers for, like `#[catcher(404)]`";
    if args.is_empty() {
        errors.push(syn::Error::new(proc_macro2::Span::call_site(), expected));
        return String::new();
    }
    let lit = match syn::parse2::<syn::LitInt>(args.clone()) {
        Ok(lit) if lit.suffix().is_empty() => lit,
        _ => {
            errors.push(syn::Error::new_spanned(
                args,
                format!("{expected}: a status code literal, without a suffix"),
            ));
            return String::new();
        }
    };
    match lit.base10_parse::<u16>() {
        Ok(code @ 400..=599) => code.to_string(),
        _ => {
            errors.push(syn::Error::new_spanned(
                &lit,
                "catchers answer the errors the server makes itself: expected a status from 400 to 599",
            ));
            String::new()
        }
    }
}
