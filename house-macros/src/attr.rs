//! Attribute arguments: `#[closing_handler("/path", methods = [GET], content_type = "…")]` and
//! `#[param(name = "…", min = 1, max = 16, …)]`.
//!
//! The arguments are split at top-level commas and each entry is parsed on its own, so every
//! bad entry of an attribute is reported, not only the first.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, LitStr, Token, UnOp};

use crate::errors::Errors;

mod kw {
    syn::custom_keyword!(path);
    syn::custom_keyword!(methods);
    syn::custom_keyword!(content_type);
    syn::custom_keyword!(name);
    syn::custom_keyword!(min);
    syn::custom_keyword!(max);
    syn::custom_keyword!(min_count);
    syn::custom_keyword!(max_count);
    syn::custom_keyword!(default);
    syn::custom_keyword!(one_of);
}

/// The methods `methods = [...]` may list.
pub(crate) const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The arguments of `#[closing_handler(...)]` / `#[stream_handler(...)]`.
#[derive(Default)]
pub(crate) struct HandlerArgs {
    /// `"/path"` or `path = "/path"`.
    pub path: Option<LitStr>,
    /// `methods = [GET, POST]`.
    pub methods: Option<(Span, Vec<Ident>)>,
    /// `content_type = "text/plain"`, with the key's span.
    pub content_type: Option<(Span, LitStr)>,
}

enum HandlerEntry {
    Path(Span, LitStr),
    Methods(Span, Vec<Ident>),
    ContentType(Span, LitStr),
}

impl Parse for HandlerEntry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lh = input.lookahead1();
        if lh.peek(LitStr) {
            let path: LitStr = input.parse()?;
            return Ok(HandlerEntry::Path(path.span(), path));
        }
        if lh.peek(kw::path) {
            let key: kw::path = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(HandlerEntry::Path(key.span, string(input.parse()?)?))
        } else if lh.peek(kw::methods) {
            let key: kw::methods = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(HandlerEntry::Methods(key.span, methods(input.parse()?)?))
        } else if lh.peek(kw::content_type) {
            let key: kw::content_type = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(HandlerEntry::ContentType(key.span, string(input.parse()?)?))
        } else {
            Err(lh.error())
        }
    }
}

impl HandlerArgs {
    /// Parses the attribute's arguments, reporting each bad entry.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> HandlerArgs {
        let mut parsed = HandlerArgs::default();
        for entry in split(args) {
            match syn::parse2::<HandlerEntry>(entry) {
                Ok(HandlerEntry::Path(span, path)) => {
                    set(&mut parsed.path, path, span, "path", errors)
                }
                Ok(HandlerEntry::Methods(span, list)) => {
                    set(&mut parsed.methods, (span, list), span, "methods", errors)
                }
                Ok(HandlerEntry::ContentType(span, ct)) => set(
                    &mut parsed.content_type,
                    (span, ct),
                    span,
                    "content_type",
                    errors,
                ),
                Err(err) => errors.push(err),
            }
        }
        parsed
    }
}

/// A number literal, maybe negated: `5`, `-3`, `0.5`.
#[derive(Clone)]
pub(crate) struct Number {
    pub neg: Option<Token![-]>,
    pub lit: Lit,
}

impl Number {
    /// Whether it is an integer literal.
    pub(crate) fn is_int(&self) -> bool {
        matches!(self.lit, Lit::Int(_))
    }

    /// The value, for comparing bounds at compile time.
    pub(crate) fn value(&self) -> f64 {
        let magnitude = match &self.lit {
            Lit::Int(int) => int.base10_parse::<f64>().unwrap_or(f64::MAX),
            Lit::Float(float) => float.base10_parse::<f64>().unwrap_or(f64::MAX),
            _ => 0.0,
        };
        if self.neg.is_some() {
            -magnitude
        } else {
            magnitude
        }
    }

    /// The value as an exact integer, when it is one.
    pub(crate) fn int(&self) -> Option<i128> {
        let Lit::Int(int) = &self.lit else {
            return None;
        };
        let magnitude = int.base10_parse::<i128>().ok()?;
        Some(if self.neg.is_some() {
            -magnitude
        } else {
            magnitude
        })
    }
}

impl ToTokens for Number {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.neg.to_tokens(tokens);
        self.lit.to_tokens(tokens);
    }
}

/// One validation rule, kept in the order written so checks run in that order.
#[derive(Clone)]
pub(crate) enum Rule {
    /// `min = 5`: at least 5 characters, or a value of at least 5.
    Min(Ident, Number),
    /// `max = 16`.
    Max(Ident, Number),
    /// `min_count = 1`: a `Vec` parameter given at least once.
    MinCount(Ident, Number),
    /// `max_count = 3`.
    MaxCount(Ident, Number),
    /// `one_of = ["red", "green"]`.
    OneOf(Ident, Vec<Expr>),
}

impl Rule {
    /// The rule's key, for messages and spans.
    pub(crate) fn key(&self) -> &Ident {
        match self {
            Rule::Min(key, _)
            | Rule::Max(key, _)
            | Rule::MinCount(key, _)
            | Rule::MaxCount(key, _)
            | Rule::OneOf(key, _) => key,
        }
    }
}

/// The arguments of `#[param(...)]`.
#[derive(Default)]
pub(crate) struct ParamArgs {
    /// `name = "room"`: the HTTP name, when it differs from the binding's.
    pub name: Option<LitStr>,
    /// `default = expr`: the value when the parameter is absent.
    pub default: Option<(Ident, Expr)>,
    pub rules: Vec<Rule>,
}

enum ParamEntry {
    Name(Ident, LitStr),
    Default(Ident, Expr),
    Rule(Rule),
}

impl Parse for ParamEntry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lh = input.lookahead1();
        let known = lh.peek(kw::name)
            || lh.peek(kw::min)
            || lh.peek(kw::max)
            || lh.peek(kw::min_count)
            || lh.peek(kw::max_count)
            || lh.peek(kw::default)
            || lh.peek(kw::one_of);
        if !known {
            return Err(lh.error());
        }
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(match key.to_string().as_str() {
            "name" => ParamEntry::Name(key, string(value)?),
            "default" => ParamEntry::Default(key, value),
            "min" => ParamEntry::Rule(Rule::Min(key, number(value)?)),
            "max" => ParamEntry::Rule(Rule::Max(key, number(value)?)),
            "min_count" => ParamEntry::Rule(Rule::MinCount(key, number(value)?)),
            "max_count" => ParamEntry::Rule(Rule::MaxCount(key, number(value)?)),
            _ => ParamEntry::Rule(Rule::OneOf(key, literals(value)?)),
        })
    }
}

impl ParamArgs {
    /// Parses the tokens inside `#[param(...)]`, reporting each bad entry.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> ParamArgs {
        let mut parsed = ParamArgs::default();
        for entry in split(args) {
            match syn::parse2::<ParamEntry>(entry) {
                Ok(ParamEntry::Name(key, name)) => {
                    set(&mut parsed.name, name, key.span(), "name", errors)
                }
                Ok(ParamEntry::Default(key, value)) => {
                    let span = key.span();
                    set(&mut parsed.default, (key, value), span, "default", errors)
                }
                Ok(ParamEntry::Rule(rule)) => {
                    let key = rule.key();
                    if parsed.rules.iter().any(|r| r.key() == key) {
                        errors.push(syn::Error::new(
                            key.span(),
                            format!("`{key}` specified more than once"),
                        ));
                    } else {
                        parsed.rules.push(rule);
                    }
                }
                Err(err) => errors.push(err),
            }
        }
        parsed
    }
}

/// Fills `slot`, or reports the key as a duplicate (on the second key).
fn set<T>(slot: &mut Option<T>, value: T, span: Span, key: &str, errors: &mut Errors) {
    if slot.is_some() {
        errors.push(syn::Error::new(
            span,
            format!("`{key}` specified more than once"),
        ));
    } else {
        *slot = Some(value);
    }
}

/// `a = 1, b = [2, 3], c` → `a = 1` · `b = [2, 3]` · `c` (brackets are one token tree, so only
/// top-level commas split).
fn split(args: TokenStream) -> Vec<TokenStream> {
    let mut entries = vec![TokenStream::new()];
    for tree in args {
        match &tree {
            TokenTree::Punct(p) if p.as_char() == ',' => entries.push(TokenStream::new()),
            _ => {
                if let Some(entry) = entries.last_mut() {
                    entry.extend([tree]);
                }
            }
        }
    }
    entries.retain(|e| !e.is_empty());
    entries
}

/// A value that must be a string literal: `name = "room"`, not `name = ROOM`.
fn string(value: Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            "expected a string literal, like `\"room\"`",
        )),
    }
}

/// A value that must be a number literal: `min = 5`, `min = -0.5`, not `min = LIMIT`.
fn number(value: Expr) -> syn::Result<Number> {
    let (neg, inner) = match value {
        Expr::Unary(syn::ExprUnary {
            op: UnOp::Neg(minus),
            expr,
            ..
        }) => (Some(minus), *expr),
        other => (None, other),
    };
    match inner {
        Expr::Lit(syn::ExprLit {
            lit: lit @ (Lit::Int(_) | Lit::Float(_)),
            ..
        }) => Ok(Number { neg, lit }),
        other => Err(syn::Error::new_spanned(
            other,
            "expected a number literal, like `5` or `-0.5`",
        )),
    }
}

/// `one_of = ["red", "green"]`: a non-empty list of literals.
fn literals(value: Expr) -> syn::Result<Vec<Expr>> {
    let Expr::Array(array) = value else {
        return Err(syn::Error::new_spanned(
            value,
            "expected a list of literals, like `[\"red\", \"green\"]`",
        ));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new(
            array.bracket_token.span.join(),
            "expected at least one allowed value",
        ));
    }
    for elem in &array.elems {
        let literal = match elem {
            Expr::Lit(_) => true,
            Expr::Unary(unary) => {
                matches!(unary.op, UnOp::Neg(_)) && matches!(*unary.expr, Expr::Lit(_))
            }
            _ => false,
        };
        if !literal {
            return Err(syn::Error::new_spanned(elem, "expected a literal"));
        }
    }
    Ok(array.elems.into_iter().collect())
}

/// `methods = [GET, POST]`.
fn methods(value: Expr) -> syn::Result<Vec<Ident>> {
    let expected = "expected a list of methods, like `[GET, POST]`";
    let Expr::Array(array) = value else {
        return Err(syn::Error::new_spanned(value, expected));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new(
            array.bracket_token.span.join(),
            "expected at least one method",
        ));
    }
    let mut idents: Vec<Ident> = Vec::new();
    for elem in &array.elems {
        let ident = match elem {
            Expr::Path(path) => path.path.get_ident().cloned(),
            _ => None,
        };
        let Some(ident) = ident else {
            return Err(syn::Error::new_spanned(elem, expected));
        };
        if !METHODS.contains(&ident.to_string().as_str()) {
            return Err(syn::Error::new(
                ident.span(),
                format!(
                    "unknown method `{ident}`; expected one of {}",
                    METHODS.map(|m| format!("`{m}`")).join(", ")
                ),
            ));
        }
        if idents.contains(&ident) {
            return Err(syn::Error::new(
                ident.span(),
                format!("`{ident}` listed more than once"),
            ));
        }
        idents.push(ident);
    }
    Ok(idents)
}

/// Whether an attribute is our `#[param(...)]`.
pub(crate) fn is_param(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("param")
}

/// The tokens inside `#[param(...)]` (`#[param]` alone has none).
pub(crate) fn param_tokens(attr: &syn::Attribute) -> syn::Result<TokenStream> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(TokenStream::new()),
        syn::Meta::List(list) => Ok(list.tokens.clone()),
        syn::Meta::NameValue(nv) => Err(syn::Error::new(
            nv.eq_token.span(),
            "expected `#[param(...)]`, like `#[param(max = 16)]`",
        )),
    }
}

/// `#[param(name = "dark")]` on an enum variant of `#[derive(FromParam)]`.
pub(crate) fn variant_name(attr: &syn::Attribute) -> syn::Result<LitStr> {
    attr.parse_args_with(|input: ParseStream| {
        input.parse::<kw::name>()?;
        input.parse::<Token![=]>()?;
        string(input.parse()?)
    })
}
