//! Path templates: `/api/rooms/{name}/messages` and a trailing `{*rest}`, checked at compile
//! time. A string literal cannot be spanned inside portably, so each error is on the whole
//! literal and its message quotes the part at fault.

use syn::LitStr;

use crate::errors::Errors;

/// A template's parameters and the shape the router compares (names left out).
pub(crate) struct Template {
    /// `{name}` and `{*rest}` names, in order.
    pub params: Vec<String>,
    /// The template with every parameter's name removed (`/rooms/{}/files/{*}`): two
    /// templates of one shape can never be told apart.
    pub shape: String,
}

/// Parses `path` (already known to start with `/`), reporting each malformed part.
pub(crate) fn parse(path: &str, lit: &LitStr, errors: &mut Errors) -> Template {
    let mut report = |message: String| errors.push(syn::Error::new(lit.span(), message));
    let mut params: Vec<String> = Vec::new();
    let mut shape = String::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        shape.push('/');
        let last = i + 1 == segments.len();
        // Only a trailing `/` may leave a segment empty.
        if segment.is_empty() && !last {
            report(format!(
                "malformed path `{path}`: empty segment (`//`); remove the extra `/`"
            ));
            continue;
        }
        // `<name>` is another framework's syntax.
        if let Some(name) = segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            let name = name.trim_start_matches('*');
            report(format!(
                "path parameters are written with braces: write `{{{name}}}`, not `{segment}`"
            ));
            continue;
        }
        if !segment.contains(['{', '}']) {
            shape.push_str(segment);
            continue;
        }
        let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            let message = if segment.matches('{').count() > segment.matches('}').count() {
                format!("malformed path `{path}`: unclosed `{{` in `{segment}`; close it, like `{{name}}`")
            } else if segment.matches('{').count() < segment.matches('}').count() {
                format!("malformed path `{path}`: unmatched `}}` in `{segment}`")
            } else {
                format!(
                    "malformed path `{path}`: a parameter must be a whole segment, but `{segment}` has text around it; write it as its own segment, like `/a/{{b}}`"
                )
            };
            report(message);
            continue;
        };
        let (rest, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        if name.is_empty() {
            report(format!(
                "malformed path `{path}`: empty `{segment}`; name the parameter, like `{{id}}`{}",
                if rest { " or `{*rest}`" } else { "" }
            ));
            continue;
        }
        if !is_identifier(name) {
            report(format!(
                "malformed path `{path}`: `{name}` in `{segment}` is not a Rust identifier; parameter names are like `room_id`"
            ));
            continue;
        }
        if rest && !last {
            report(format!(
                "malformed path `{path}`: `{segment}` takes the rest of the path, so it must be the last segment"
            ));
            continue;
        }
        if params.iter().any(|p| p == name) {
            report(format!(
                "malformed path `{path}`: `{{{name}}}` appears twice; give each parameter its own name"
            ));
            continue;
        }
        shape.push_str(if rest { "{*}" } else { "{}" });
        params.push(name.to_owned());
    }
    Template { params, shape }
}

/// `room_id`, `_x`, `r2`: what a binding could be called (keywords are fine: `r#type` binds
/// `type`).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic());
    first_ok && name != "_" && chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str) -> Result<Template, String> {
        let lit = LitStr::new(path, proc_macro2::Span::call_site());
        let mut errors = Errors::default();
        let template = parse(path, &lit, &mut errors);
        errors
            .finish()
            .map(|()| template)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn shapes_ignore_names() {
        let t = check("/api/rooms/{name}/files/{*rest}").unwrap();
        assert_eq!(t.params, ["name", "rest"]);
        assert_eq!(t.shape, "/api/rooms/{}/files/{*}");
        assert_eq!(check("/").unwrap().shape, "/");
        assert_eq!(check("/a/").unwrap().shape, "/a/");
    }

    #[test]
    fn malformed() {
        for (path, part) in [
            ("/a//b", "empty segment"),
            ("/a/{b", "unclosed"),
            ("/a/b}", "unmatched"),
            ("/a/{}", "empty `{}`"),
            ("/a{b}", "whole segment"),
            ("/a/{1x}", "not a Rust identifier"),
            ("/{a}/{a}", "appears twice"),
            ("/{*a}/b", "last segment"),
            ("/<a>", "write `{a}`"),
        ] {
            let error = check(path).err().unwrap_or_default();
            assert!(error.contains(part), "{path}: {error}");
        }
    }
}
