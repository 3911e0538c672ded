//! The handler as the macros see it: syn's fn turned into context inputs and HTTP parameters.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, Type};

use crate::attr::{self, HandlerArgs, ParamArgs};
use crate::errors::Errors;
use crate::template::{self, Template};

/// Which macro is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Closing,
    Stream,
}

impl Kind {
    /// The attribute's name, for messages.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Closing => "closing_handler",
            Kind::Stream => "stream_handler",
        }
    }
}

/// A handler fn with its arguments understood.
pub(crate) struct Handler {
    pub kind: Kind,
    /// The user's fn with our `#[param]` attributes removed, to re-emit as written.
    pub func: ItemFn,
    pub args: HandlerArgs,
    pub inputs: Vec<Input>,
    /// The route's path: the attribute's, or `/` and the fn's name in kebab-case.
    pub path: String,
    /// The path's parameters and shape.
    pub template: Template,
}

/// One fn argument.
pub(crate) enum Input {
    /// `&Request`.
    Request,
    /// `&Hub` or `&mut Hub`; the span is the argument's, for the "more than one" error.
    Hub { mutable: bool, span: Span },
    /// `&Session` or `&mut Session`, like the hub.
    Session { mutable: bool, span: Span },
    /// `&Caught`: a catcher's argument (the type's tokens, for the error in a handler).
    Caught(TokenStream),
    /// `&T` of any other type: shared state of type `T`, given with `Server::with_state`.
    State(Box<Type>),
    /// `#[guard] user: User`: checked through `FromRequest` before any parameter.
    Guard(Box<Type>),
    /// `#[body] msg: Json<T>`: the request body, through `FromBody`; with the attribute's
    /// tokens for errors.
    Body(Box<Type>, TokenStream),
    /// Anything else: an HTTP parameter.
    Param(Box<Param>),
}

/// Where a parameter's value comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The query string or a form body.
    Query,
    /// A `{name}` or `{*name}` segment of the route's path.
    Path,
    /// A field of a `#[derive(Validate)]` struct (only the rules apply).
    Field,
}

/// An HTTP parameter: decoded through `FromParam`, then checked against its rules.
pub(crate) struct Param {
    /// The name clients send.
    pub name: String,
    /// Where the name comes from: the binding, or the `name = "…"` literal.
    pub name_span: Span,
    pub ty: Type,
    pub shape: Shape,
    /// The type the rules look at: `T` of `Option<T>` / `Vec<T>`, else the type itself.
    pub elem: Elem,
    pub args: ParamArgs,
    pub source: Source,
}

/// The wrapper the macro sees around the element type (by name, so a type alias of `Option`
/// counts as a plain type).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    One,
    Option,
    Vec,
}

/// What the rules know about the element type, by its last path segment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    Str,
    Int {
        signed: bool,
    },
    Float,
    Bool,
    Char,
    Json,
    /// A user type: the rules go through the `Bounded` / `PartialEq` traits.
    Other,
}

impl Elem {
    /// The type's name in messages.
    pub(crate) fn describe(self, ty: &Type) -> String {
        match self {
            Elem::Json => "`JsonParam`".to_owned(),
            _ => format!("`{}`", quote::quote!(#ty).to_string().replace(' ', "")),
        }
    }
}

impl Handler {
    /// Reads `func`'s arguments, stripping our `#[param]`, `#[guard]` and `#[body]`
    /// attributes; problems go to `errors`.
    pub(crate) fn from_syn(
        kind: Kind,
        args: TokenStream,
        mut func: ItemFn,
        errors: &mut Errors,
    ) -> Handler {
        let args = HandlerArgs::parse(args, errors);
        let mut inputs = Vec::new();
        for arg in &mut func.sig.inputs {
            match arg {
                FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                    receiver,
                    "handlers cannot take `self`; declare the handler as a free function",
                )),
                FnArg::Typed(typed) => {
                    let marks = Marks::take(&mut typed.attrs, errors);
                    if let Some(input) = input(&typed.pat, &typed.ty, &marks, errors) {
                        inputs.push(input);
                    }
                }
            }
        }
        let path = match &args.path {
            Some(path) => path.value(),
            None => format!("/{}", func.sig.ident.unraw().to_string().replace('_', "-")),
        };
        let template = match &args.path {
            // A path without a leading `/` is reported on its own (valid.rs).
            Some(lit) if path.starts_with('/') => template::parse(&path, lit, errors),
            _ => Template {
                params: Vec::new(),
                shape: path.clone(),
            },
        };
        for input in &mut inputs {
            if let Input::Param(param) = input {
                if template.params.contains(&param.name) {
                    param.source = Source::Path;
                }
            }
        }
        Handler {
            kind,
            func,
            args,
            inputs,
            path,
            template,
        }
    }
}

/// Our attributes on one fn argument, removed from the fn that is re-emitted.
#[derive(Default)]
pub(crate) struct Marks {
    pub params: Vec<syn::Attribute>,
    pub guard: Option<syn::Attribute>,
    pub body: Option<syn::Attribute>,
}

impl Marks {
    /// Takes `#[param]`, `#[guard]` and `#[body]` out of `attrs`.
    pub(crate) fn take(attrs: &mut Vec<syn::Attribute>, errors: &mut Errors) -> Marks {
        let mut marks = Marks::default();
        attrs.retain(|a| {
            if attr::is_param(a) {
                marks.params.push(a.clone());
            } else if a.path().is_ident("guard") || a.path().is_ident("body") {
                let guard = a.path().is_ident("guard");
                let word = if guard { "guard" } else { "body" };
                if !matches!(a.meta, syn::Meta::Path(_)) {
                    errors.push(syn::Error::new_spanned(
                        a,
                        format!("`#[{word}]` takes no arguments; write `#[{word}]`"),
                    ));
                }
                let slot = if guard {
                    &mut marks.guard
                } else {
                    &mut marks.body
                };
                if slot.is_some() {
                    errors.push(syn::Error::new_spanned(
                        a,
                        format!("`#[{word}]` specified more than once"),
                    ));
                }
                *slot = Some(a.clone());
            } else {
                return true;
            }
            false
        });
        marks
    }
}

/// One typed argument: a context input (by type), a guard, the body, or an HTTP parameter.
fn input(pat: &Pat, ty: &Type, marks: &Marks, errors: &mut Errors) -> Option<Input> {
    // `#[guard]`/`#[body]` name what the argument is; `#[param]` rules do not apply to them.
    let marked = match (&marks.guard, &marks.body) {
        (Some(guard), Some(body)) => {
            errors.push(syn::Error::new_spanned(
                body,
                "an argument is either a guard or the body: remove `#[guard]` or `#[body]`",
            ));
            Some((guard, "guard"))
        }
        (Some(guard), None) => Some((guard, "guard")),
        (None, Some(body)) => Some((body, "body")),
        (None, None) => None,
    };
    if let Some((mark, word)) = marked {
        for attr in &marks.params {
            errors.push(syn::Error::new_spanned(
                attr,
                format!(
                    "`#[param]` rules apply to HTTP parameters, not to a `#[{word}]`; remove `#[param(...)]`{}",
                    if word == "body" {
                        " (for rules on a JSON body's fields, put them on the struct's fields with `#[derive(house::Validate)]`)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Type::Reference(reference) = ty {
            errors.push(syn::Error::new_spanned(
                reference.and_token,
                format!(
                    "a `#[{word}]` argument is taken by value: remove the `&`, like `#[{word}] {}`",
                    if word == "guard" {
                        "user: User"
                    } else {
                        "msg: Json<Message>"
                    }
                ),
            ));
        }
        let ty = Box::new(ty.clone());
        return Some(if word == "guard" {
            Input::Guard(ty)
        } else {
            Input::Body(ty, mark.to_token_stream())
        });
    }
    if let Some(context) = context(ty, errors) {
        for attr in &marks.params {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[param]` applies to HTTP parameters, not to the request, the hub, the session or state",
            ));
        }
        return Some(context);
    }
    let mut args = ParamArgs::default();
    for (i, attr) in marks.params.iter().enumerate() {
        if i > 0 {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[param]` specified more than once; put every rule in one `#[param(...)]`",
            ));
            continue;
        }
        match attr::param_tokens(attr) {
            Ok(tokens) => args = ParamArgs::parse(tokens, errors),
            Err(err) => errors.push(err),
        }
    }
    let (name, name_span) = match (&args.name, pat) {
        (Some(lit), _) => (lit.value(), lit.span()),
        (None, Pat::Ident(binding)) => {
            let ident = binding.ident.unraw();
            (ident.to_string(), binding.ident.span())
        }
        (None, other) => {
            errors.push(syn::Error::new_spanned(
                other,
                "expected a named binding, or `#[param(name = \"…\")]` to name the HTTP parameter",
            ));
            return None;
        }
    };
    // `msg: Json<T>` used to read a parameter's text; now a JSON value is the body.
    if last_ident(ty).is_some_and(|ident| ident == "Json") {
        errors.push(syn::Error::new_spanned(
            ty,
            "a `Json` argument is the request body: mark it `#[body]` (for JSON inside a query parameter, use `house::JsonParam<T>`)",
        ));
    }
    Some(Input::Param(Box::new(Param::new(
        name,
        name_span,
        ty,
        args,
        Source::Query,
        errors,
    ))))
}

impl Param {
    /// A parameter of type `ty`; a nested `Option`/`Vec` is reported.
    pub(crate) fn new(
        name: String,
        name_span: Span,
        ty: &Type,
        args: ParamArgs,
        source: Source,
        errors: &mut Errors,
    ) -> Param {
        let (shape, elem_ty) = shape(ty);
        // A JSON body's field may well be `Vec<Option<T>>` (`[1, null]`).
        if shape != Shape::One && source != Source::Field {
            nested(ty, shape, elem_ty, errors);
        }
        Param {
            name,
            name_span,
            ty: ty.clone(),
            shape,
            elem: elem(elem_ty),
            args,
            source,
        }
    }
}

/// `Vec<Option<T>>`, `Option<Option<T>>`, `Option<Vec<T>>`, `Vec<Vec<T>>`: the inner wrapper
/// would never do what it says, so each is refused with the type to write instead.
fn nested(ty: &Type, outer: Shape, inner: &Type, errors: &mut Errors) {
    let (inner_shape, _) = shape(inner);
    let message = match (outer, inner_shape) {
        (_, Shape::One) => return,
        (Shape::Vec, Shape::Option) => {
            "`Vec<Option<T>>` is not supported: every value of a repeated parameter is present, and an empty value is already refused by `T` (or is an empty `String`), so the inner `Option` would never be `None`; use `Vec<T>`"
        }
        (Shape::Option, Shape::Option) => {
            "`Option<Option<T>>` is not supported: an absent parameter is `None` and a present one is decoded by `T`, so there is no second kind of absence; use `Option<T>`"
        }
        (Shape::Option, Shape::Vec) => {
            "`Option<Vec<T>>` is not supported: an absent `Vec` parameter is already an empty `Vec`; use `Vec<T>` (with `#[param(min_count = 1)]` to require a value)"
        }
        (Shape::Vec, Shape::Vec) => {
            "`Vec<Vec<T>>` is not supported: every value of a repeated parameter goes into one `Vec`; use `Vec<T>`, or a `house::FromParam` type that splits one value"
        }
        (Shape::One, _) => return,
    };
    errors.push(syn::Error::new_spanned(ty, message));
}

/// `&Request`, `&Hub`, `&mut Hub`, `&Session`, `&mut Session`, `&Caught` and, for any other
/// `&T`, state; by the last segment of the referenced type's path.
fn context(ty: &Type, errors: &mut Errors) -> Option<Input> {
    let Type::Reference(reference) = ty else {
        return None;
    };
    let mutable = reference.mutability.is_some();
    let ident = last_ident(&reference.elem);
    if ident.is_some_and(|i| i == "Request") {
        if mutable {
            errors.push(syn::Error::new_spanned(
                ty,
                "the request is shared: expected `&Request`, not `&mut Request`",
            ));
        }
        Some(Input::Request)
    } else if ident.is_some_and(|i| i == "Hub") {
        Some(Input::Hub {
            mutable,
            span: ty.span(),
        })
    } else if ident.is_some_and(|i| i == "Session") {
        Some(Input::Session {
            mutable,
            span: ty.span(),
        })
    } else if ident.is_some_and(|i| i == "Caught") {
        if mutable {
            errors.push(syn::Error::new_spanned(
                ty,
                "the caught error is shared: expected `&Caught`, not `&mut Caught`",
            ));
        }
        Some(Input::Caught(ty.to_token_stream()))
    } else if ident.is_some_and(|i| i == "str") || matches!(*reference.elem, Type::Slice(_)) {
        // `room: &str` reads like a parameter, but parameters are decoded into owned values.
        errors.push(syn::Error::new_spanned(
            ty,
            "parameters are owned values: take `String` (or `Vec<u8>` for a `#[body]`)",
        ));
        None
    } else {
        if let Some(mutability) = reference.mutability {
            errors.push(syn::Error::new_spanned(
                mutability,
                "state is shared: take `&T`; for mutation use interior mutability like `Mutex` or an atomic",
            ));
        }
        Some(Input::State(reference.elem.clone()))
    }
}

/// `Option<T>` → (Option, T), `Vec<T>` → (Vec, T), else (One, ty).
fn shape(ty: &Type) -> (Shape, &Type) {
    let Type::Path(path) = ty else {
        return (Shape::One, ty);
    };
    let Some(last) = path.path.segments.last() else {
        return (Shape::One, ty);
    };
    let shape = match last.ident.to_string().as_str() {
        "Option" => Shape::Option,
        "Vec" => Shape::Vec,
        _ => return (Shape::One, ty),
    };
    match &last.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            GenericArgument::Type(inner) => (shape, inner),
            _ => (Shape::One, ty),
        },
        _ => (Shape::One, ty),
    }
}

fn elem(ty: &Type) -> Elem {
    let Some(ident) = last_ident(ty) else {
        return Elem::Other;
    };
    match ident.to_string().as_str() {
        "String" => Elem::Str,
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => Elem::Int { signed: true },
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => Elem::Int { signed: false },
        "f32" | "f64" => Elem::Float,
        "bool" => Elem::Bool,
        "char" => Elem::Char,
        "Json" | "JsonParam" => Elem::Json,
        _ => Elem::Other,
    }
}

pub(crate) fn last_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        Type::Group(group) => last_ident(&group.elem),
        Type::Paren(paren) => last_ident(&paren.elem),
        _ => None,
    }
}
