//! The handler as the macros see it: syn's fn turned into context inputs and HTTP parameters.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, Type};

use crate::attr::{self, HandlerArgs, ParamArgs};
use crate::errors::Errors;

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
}

/// One fn argument.
pub(crate) enum Input {
    /// `&Request`.
    Request,
    /// `&Hub` or `&mut Hub`; the span is the argument's, for the "more than one" error.
    Hub { mutable: bool, span: Span },
    /// `&Session` or `&mut Session`, like the hub.
    Session { mutable: bool, span: Span },
    /// Anything else: an HTTP parameter.
    Param(Box<Param>),
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
            Elem::Json => "`Json`".to_owned(),
            _ => format!("`{}`", quote::quote!(#ty).to_string().replace(' ', "")),
        }
    }
}

impl Handler {
    /// Reads `func`'s arguments, stripping `#[param]` attributes; problems go to `errors`.
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
                    let mut param_attrs = Vec::new();
                    typed.attrs.retain(|a| {
                        let ours = attr::is_param(a);
                        if ours {
                            param_attrs.push(a.clone());
                        }
                        !ours
                    });
                    if let Some(input) = input(&typed.pat, &typed.ty, &param_attrs, errors) {
                        inputs.push(input);
                    }
                }
            }
        }
        Handler {
            kind,
            func,
            args,
            inputs,
        }
    }
}

/// One typed argument: a context input (by type) or an HTTP parameter.
fn input(pat: &Pat, ty: &Type, attrs: &[syn::Attribute], errors: &mut Errors) -> Option<Input> {
    if let Some(context) = context(ty, errors) {
        for attr in attrs {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[param]` applies to HTTP parameters, not to the request, the hub or the session",
            ));
        }
        return Some(context);
    }
    let mut args = ParamArgs::default();
    for (i, attr) in attrs.iter().enumerate() {
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
            let ident = syn::ext::IdentExt::unraw(&binding.ident);
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
    let (shape, elem_ty) = shape(ty);
    Some(Input::Param(Box::new(Param {
        name,
        name_span,
        ty: ty.clone(),
        shape,
        elem: elem(elem_ty),
        args,
    })))
}

/// `&Request`, `&Hub`, `&mut Hub`, `&Session` and `&mut Session`, by the last segment of the
/// referenced type's path.
fn context(ty: &Type, errors: &mut Errors) -> Option<Input> {
    let Type::Reference(reference) = ty else {
        return None;
    };
    let ident = last_ident(&reference.elem)?;
    let mutable = reference.mutability.is_some();
    if ident == "Request" {
        if mutable {
            errors.push(syn::Error::new_spanned(
                ty,
                "the request is shared: expected `&Request`, not `&mut Request`",
            ));
        }
        Some(Input::Request)
    } else if ident == "Hub" {
        Some(Input::Hub {
            mutable,
            span: ty.span(),
        })
    } else if ident == "Session" {
        Some(Input::Session {
            mutable,
            span: ty.span(),
        })
    } else {
        None
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
        "Json" => Elem::Json,
        _ => Elem::Other,
    }
}

fn last_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        Type::Group(group) => last_ident(&group.elem),
        Type::Paren(paren) => last_ident(&paren.elem),
        _ => None,
    }
}
