//! Checks on a handler declaration that need no type information; each problem becomes a
//! compile error on the offending token, and all of them are reported together.

use std::collections::HashMap;

use syn::{Expr, Lit, Signature};

use crate::ast::{Elem, Handler, Input, Kind, Param, Shape, Source};
use crate::attr::{Number, Rule};
use crate::errors::Errors;

/// What a handler's signature may not be.
pub(crate) fn signature(sig: &Signature, errors: &mut Errors) {
    // `async fn f()`: the event loop calls handlers synchronously, so there is no executor.
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            token,
            "handlers cannot be `async`: house calls them on its event loop; remove `async`",
        ));
    }
    // `unsafe fn f()`: the generated route would call it without an `unsafe` block.
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            "handlers cannot be `unsafe`",
        ));
    }
    // `fn f<T>(x: T)`: each parameter's decoding is generated for its written type.
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "handlers cannot be generic: each parameter needs a concrete type",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "handlers cannot be variadic",
        ));
    }
}

/// Checks across the handler: its options, its context inputs, its parameters' names and rules.
pub(crate) fn handler(handler: &Handler, errors: &mut Errors) {
    signature(&handler.func.sig, errors);
    // `#[closing_handler("send")]`: route paths are absolute.
    if let Some(path) = &handler.args.path {
        if !path.value().starts_with('/') {
            errors.push(syn::Error::new(
                path.span(),
                "expected a path starting with `/`, like `\"/send\"`",
            ));
        }
    }
    if let Some((key, content_type)) = &handler.args.content_type {
        // A stream's type is always `text/event-stream`.
        if handler.kind == Kind::Stream {
            errors.push(syn::Error::new(
                *key,
                "`content_type` applies to closing handlers; streams are always `text/event-stream`",
            ));
        }
        // `content_type = "text/plain\r\nX: y"` would split the response head.
        let value = content_type.value();
        if value.is_empty() || value.contains(['\r', '\n', '\0']) {
            errors.push(syn::Error::new(
                content_type.span(),
                "expected a media type without line breaks, like `\"text/plain; charset=utf-8\"`",
            ));
        }
    }
    let mut hub: Option<bool> = None;
    let mut session: Option<bool> = None;
    let mut names: HashMap<&str, ()> = HashMap::new();
    let mut body = false;
    for input in &handler.inputs {
        match input {
            Input::Request | Input::State(_) | Input::Guard(_) => {}
            Input::Caught(tokens) => errors.push(syn::Error::new_spanned(
                tokens,
                "`&Caught` is the argument of a `#[catcher]`; a handler takes `&Request` for the request",
            )),
            Input::Body(_, attr) => {
                if handler.kind == Kind::Stream {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "a stream handler has no body: `EventSource` sends `GET`s; read the body in a `#[closing_handler]` and publish to the stream",
                    ));
                } else if body {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "the body is already an argument of this handler: a request has one body; take it once",
                    ));
                }
                body = true;
            }
            // Two `&mut Hub`s would borrow the hub twice.
            Input::Hub { mutable, span } => {
                if hub.is_some() && (*mutable || hub == Some(true)) {
                    errors.push(syn::Error::new(
                        *span,
                        "the hub is already an argument of this handler; take it once",
                    ));
                }
                hub = Some(hub.unwrap_or(false) || *mutable);
            }
            // Likewise two `&mut Session`s.
            Input::Session { mutable, span } => {
                if session.is_some() && (*mutable || session == Some(true)) {
                    errors.push(syn::Error::new(
                        *span,
                        "the session is already an argument of this handler; take it once",
                    ));
                }
                session = Some(session.unwrap_or(false) || *mutable);
            }
            Input::Param(param) => {
                // `fn f(room: String, #[param(name = "room")] other: String)`: one value, two bindings.
                if names.insert(&param.name, ()).is_some() {
                    errors.push(syn::Error::new(
                        param.name_span,
                        format!(
                            "two parameters read the HTTP parameter `{}`; rename one with `#[param(name = \"…\")]`",
                            param.name
                        ),
                    ));
                }
                if param.name.is_empty() {
                    errors.push(syn::Error::new(
                        param.name_span,
                        "expected a non-empty parameter name",
                    ));
                }
                if param.source == Source::Path {
                    path_param(param, errors);
                }
                rules(param, errors);
            }
        }
    }
    // `#[closing_handler("/rooms/{name}")] fn room() …`: the segment would be thrown away.
    if let Some(lit) = &handler.args.path {
        for name in &handler.template.params {
            let taken = handler
                .inputs
                .iter()
                .any(|input| matches!(input, Input::Param(p) if &p.name == name));
            if !taken {
                errors.push(syn::Error::new(
                    lit.span(),
                    format!(
                        "path parameter `{name}` has no matching argument; add one, like `{name}: String` (or name another with `#[param(name = \"{name}\")]`)"
                    ),
                ));
            }
        }
    }
}

/// A path parameter always has exactly one value, and no default.
fn path_param(param: &Param, errors: &mut Errors) {
    if param.shape != Shape::One {
        errors.push(syn::Error::new_spanned(
            &param.ty,
            format!(
                "path parameter `{}` is always present, exactly once: take the value itself, like `String`, not an `Option` or a `Vec`",
                param.name
            ),
        ));
    }
    if let Some((key, _)) = &param.args.default {
        errors.push(syn::Error::new(
            key.span(),
            format!(
                "`default` does not apply to path parameter `{}`: a path that matches always has it",
                param.name
            ),
        ));
    }
}

/// Whether each rule fits the parameter's type, and the bounds are in order.
pub(crate) fn rules(param: &Param, errors: &mut Errors) {
    let elem = param.elem;
    let mut min = None;
    let mut max = None;
    let mut min_count = None;
    let mut max_count = None;
    for rule in &param.args.rules {
        let key = rule.key();
        match rule {
            Rule::Min(_, n) | Rule::Max(_, n) => {
                // `#[param(min = 1)] flag: bool`: there is no length or value to bound.
                if matches!(elem, Elem::Bool | Elem::Char | Elem::Json) {
                    errors.push(syn::Error::new(
                        key.span(),
                        format!(
                            "`{key}` does not apply to {}: it bounds a `String`'s length in characters or a number's value",
                            param_type_name(param)
                        ),
                    ));
                    continue;
                }
                // `#[param(max = 2.5)] room: String`: a length is a whole number.
                match elem {
                    Elem::Str | Elem::Int { signed: false } => non_negative_int(n, errors),
                    Elem::Int { signed: true } if !n.is_int() => {
                        errors.push(syn::Error::new_spanned(
                            n,
                            "expected an integer literal for an integer parameter",
                        ))
                    }
                    _ => {}
                }
                let slot = if matches!(rule, Rule::Min(..)) {
                    &mut min
                } else {
                    &mut max
                };
                *slot = Some(n);
            }
            Rule::MinCount(_, n) | Rule::MaxCount(_, n) => {
                // `#[param(min_count = 1)] tag: String`: only a `Vec` collects repeated values.
                if param.shape != Shape::Vec {
                    errors.push(syn::Error::new(
                        key.span(),
                        format!(
                            "`{key}` applies to `Vec` parameters, which collect repeated values"
                        ),
                    ));
                    continue;
                }
                non_negative_int(n, errors);
                let slot = if matches!(rule, Rule::MinCount(..)) {
                    &mut min_count
                } else {
                    &mut max_count
                };
                *slot = Some(n);
            }
            Rule::OneOf(_, values) => one_of(elem, values, errors),
        }
    }
    // `#[param(min = 5, max = 3)]`: no value could pass.
    for (low, high, low_key, high_key) in [
        (min, max, "min", "max"),
        (min_count, max_count, "min_count", "max_count"),
    ] {
        if let (Some(low), Some(high)) = (low, high) {
            if low.value() > high.value() {
                errors.push(syn::Error::new_spanned(
                    low,
                    format!(
                        "`{low_key}` is greater than `{high_key}` ({} > {}): no value could pass",
                        quote::quote!(#low).to_string().replace(' ', ""),
                        quote::quote!(#high).to_string().replace(' ', ""),
                    ),
                ));
            }
        }
    }
    // `#[param(default = Some(1))] n: Option<u8>`: an absent `Option` is already `None`.
    if let Some((key, _)) = &param.args.default {
        if param.shape == Shape::Option {
            errors.push(syn::Error::new(
                key.span(),
                "`default` does not apply to `Option` parameters: an absent one is `None`",
            ));
        }
    }
}

fn param_type_name(param: &Param) -> String {
    let ty = &param.ty;
    match param.shape {
        Shape::One => param.elem.describe(ty),
        _ => format!("the elements of {}", param.elem.describe(ty)),
    }
}

/// Lengths and counts: `5`, not `-1` or `2.5`.
fn non_negative_int(n: &Number, errors: &mut Errors) {
    if n.int().is_none_or(|v| v < 0) {
        errors.push(syn::Error::new_spanned(
            n,
            "expected a non-negative integer literal",
        ));
    }
}

/// `one_of` values must be literals of the element's kind when the macro knows it.
fn one_of(elem: Elem, values: &[Expr], errors: &mut Errors) {
    let (fits, expected): (fn(&Lit) -> bool, &str) = match elem {
        Elem::Str => (|l| matches!(l, Lit::Str(_)), "a string literal"),
        Elem::Int { .. } => (|l| matches!(l, Lit::Int(_)), "an integer literal"),
        Elem::Float => (
            |l| matches!(l, Lit::Float(_) | Lit::Int(_)),
            "a number literal",
        ),
        Elem::Char => (|l| matches!(l, Lit::Char(_)), "a char literal"),
        _ => return,
    };
    for value in values {
        let lit = match value {
            Expr::Lit(lit) => Some(&lit.lit),
            Expr::Unary(unary) => match &*unary.expr {
                Expr::Lit(lit) if matches!(elem, Elem::Int { signed: true } | Elem::Float) => {
                    Some(&lit.lit)
                }
                _ => None,
            },
            _ => None,
        };
        if !lit.is_some_and(fits) {
            errors.push(syn::Error::new_spanned(
                value,
                format!("expected {expected}"),
            ));
        }
    }
}
