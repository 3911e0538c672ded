//! Cross-origin requests (CORS, as the Fetch standard describes it): which page origins may
//! read the server's answers, and the `Access-Control-*` headers every response and stream
//! head gets for them, and the answer to a browser's preflight.

use std::time::Duration;

use crate::request::{Method, Methods, Request};
use crate::response::{check_header, is_token_byte, Response, Status};

/// Which other origins may use the server from a page, set with [`Config::with_cors`].
///
/// - A request whose `Origin` is allowed gets `Access-Control-Allow-Origin: <that origin>`
///   ([`Cors::any`] without credentials: `*`), `Access-Control-Allow-Credentials: true` when
///   [credentials](Self::allow_credentials) are allowed, and `Access-Control-Expose-Headers`
///   when [set](Self::expose_headers). Whenever the answer depends on the origin (a list of
///   origins, or credentials), the response also says `Vary: Origin`, so a cache never hands
///   one origin's answer to another. A disallowed origin gets no `Access-Control-*` header: the
///   browser then refuses the page the response.
/// - That holds for every response the server writes: handler responses, stream heads, the
///   router's 404 and 405, a rate limit's 429, the parser's 4xx. The 503 written at the
///   connection cap comes before any request is read, so its origin is unknown: only
///   [`Cors::any`] without credentials can label it (`*`).
/// - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) to a routed
///   path is answered by the server, before any handler (an `OPTIONS` route included):
///   `204` with `Access-Control-Allow-Methods` (the path's methods),
///   `Access-Control-Allow-Headers` (those requested that are [allowed](Self::allow_headers)),
///   and `Access-Control-Max-Age` when [set](Self::max_age). From a disallowed origin it is a
///   `403` without them: the browser fails the preflight either way, and `403` tells a person
///   reading the log that it was refused. A preflight to a path with no route is the usual
///   `404`.
/// - A response that already has `Access-Control-Allow-Origin` (a handler's own) is left as
///   it is.
///
/// Credentials are never combined with `*`: `Cors::any().allow_credentials(true)` echoes each
/// request's origin instead (any origin can then read answers made with the user's cookies;
/// prefer a list).
///
/// `Content-Type: application/json` is not a "simple" request header: a page that sends it
/// needs `allow_headers(["content-type"])`.
///
/// [`Config::with_cors`]: crate::Config::with_cors
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use house::{Config, Cors};
///
/// let cors = Cors::allow_origins(["https://app.example"])
///     .allow_credentials(true)
///     .allow_headers(["content-type"])
///     .max_age(Duration::from_secs(600));
/// let config = Config::default().with_cors(cors);
/// assert!(config.cors().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `None`: any origin.
    origins: Option<Vec<String>>,
    credentials: bool,
    /// Lowercase.
    allow_headers: Vec<String>,
    /// Joined with `, `; empty for none.
    expose_headers: String,
    max_age: Option<Duration>,
}

impl Cors {
    /// Any origin may read the server's answers (`Access-Control-Allow-Origin: *`).
    pub fn any() -> Cors {
        Cors {
            origins: None,
            credentials: false,
            allow_headers: Vec::new(),
            expose_headers: String::new(),
            max_age: None,
        }
    }

    /// These origins (scheme, host and port, as a browser sends them in `Origin`: e.g.
    /// `https://app.example` or `http://localhost:8080`) may read the server's answers; they
    /// are compared exactly.
    ///
    /// # Panics
    /// If an origin is empty, `*` (use [`Cors::any`]), ends with `/` (an origin has no path),
    /// or contains whitespace or a control character.
    pub fn allow_origins<I, S>(origins: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let origins =
            origins
                .into_iter()
                .map(|origin| {
                    let origin = origin.into();
                    assert!(
                    !origin.is_empty()
                        && origin != "*"
                        && !origin.ends_with('/')
                        && !origin.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()),
                    "invalid CORS origin {origin:?}: write scheme://host[:port], without a path"
                );
                    origin
                })
                .collect();
        Cors {
            origins: Some(origins),
            ..Cors::any()
        }
    }

    /// Whether pages may send cookies (and read answers made with them):
    /// `Access-Control-Allow-Credentials: true`. Needed by `fetch(url, {credentials:
    /// "include"})` and `new EventSource(url, {withCredentials: true})`.
    pub fn allow_credentials(mut self, allow: bool) -> Cors {
        self.credentials = allow;
        self
    }

    /// Request headers a page may send beyond the simple ones (a preflight asks for them).
    /// `Last-Event-ID`, which a stream resumes from, is always allowed.
    ///
    /// # Panics
    /// If a name is not an HTTP token.
    pub fn allow_headers<I, S>(mut self, headers: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow_headers = headers
            .into_iter()
            .map(|name| token(name.into()).to_ascii_lowercase())
            .collect();
        self
    }

    /// Response headers a page may read beyond the simple ones
    /// (`Access-Control-Expose-Headers`).
    ///
    /// # Panics
    /// If a name is not an HTTP token.
    pub fn expose_headers<I, S>(mut self, headers: I) -> Cors
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = headers.into_iter().map(|name| token(name.into())).collect();
        self.expose_headers = names.join(", ");
        self
    }

    /// How long a browser may cache a preflight's answer (`Access-Control-Max-Age`, whole
    /// seconds; browsers cap it, Chromium at two hours).
    pub fn max_age(mut self, max_age: Duration) -> Cors {
        self.max_age = Some(max_age);
        self
    }

    /// The `Access-Control-Allow-Origin` a request from `origin` gets, if any.
    fn allowed_origin<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        match &self.origins {
            None if !self.credentials => Some("*"),
            None => origin.filter(|origin| check_header("Origin", origin).is_ok()),
            Some(list) => origin.filter(|origin| list.iter().any(|o| o == origin)),
        }
    }

    /// Whether the answer depends on the request's origin (then `Vary: Origin`).
    fn varies(&self) -> bool {
        self.origins.is_some() || self.credentials
    }

    /// `response` with the CORS headers a request from `origin` (`None`: no `Origin` header,
    /// or unknown) gets; a response with its own `Access-Control-Allow-Origin` is left alone.
    pub(crate) fn apply(&self, response: Response, origin: Option<&str>) -> Response {
        if response.header("access-control-allow-origin").is_some() {
            return response;
        }
        let response = if self.varies() {
            response.append_header("Vary", "Origin".to_owned())
        } else {
            response
        };
        let Some(allowed) = self.allowed_origin(origin) else {
            return response;
        };
        let mut response =
            response.append_header("Access-Control-Allow-Origin", allowed.to_owned());
        if self.credentials {
            response = response.append_header("Access-Control-Allow-Credentials", "true".into());
        }
        if !self.expose_headers.is_empty() {
            response = response
                .append_header("Access-Control-Expose-Headers", self.expose_headers.clone());
        }
        response
    }

    /// The answer to the preflight `request` for a path that takes `methods`.
    pub(crate) fn preflight(&self, request: &Request, methods: Methods) -> Response {
        let origin = request.header("origin");
        let vary = |response: Response| {
            if self.varies() {
                response.append_header("Vary", "Origin".to_owned())
            } else {
                response
            }
        };
        let Some(allowed) = self.allowed_origin(origin) else {
            // `apply` adds the `Vary`, as it does to every answer without an allowed origin.
            return Response::error(Status::FORBIDDEN, "this origin may not use the server");
        };
        let mut response = vary(Response::new(Status::NO_CONTENT))
            .append_header("Access-Control-Allow-Origin", allowed.to_owned());
        if self.credentials {
            response = response.append_header("Access-Control-Allow-Credentials", "true".into());
        }
        let mut methods = methods | Methods::OPTIONS;
        if methods.contains(Method::Get) {
            methods = methods | Methods::HEAD;
        }
        response = response.append_header("Access-Control-Allow-Methods", methods.allow_header());
        let requested = request
            .header("access-control-request-headers")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|name| {
                // `Last-Event-ID` is house's own: a reconnecting stream resumes with it.
                let lower = name.to_ascii_lowercase();
                lower == "last-event-id" || self.allow_headers.contains(&lower)
            })
            .collect::<Vec<_>>()
            .join(", ");
        if !requested.is_empty() {
            response = response.append_header("Access-Control-Allow-Headers", requested);
        }
        if let Some(max_age) = self.max_age {
            response =
                response.append_header("Access-Control-Max-Age", max_age.as_secs().to_string());
        }
        response
    }
}

/// Whether `request` is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(crate) fn is_preflight(request: &Request) -> bool {
    request.method() == Method::Options
        && request.header("origin").is_some()
        && request.header("access-control-request-method").is_some()
}

fn token(name: String) -> String {
    assert!(
        !name.is_empty() && name.bytes().all(is_token_byte),
        "invalid header name {name:?}"
    );
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(response: &Response) -> Vec<(String, String)> {
        response
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn any_without_credentials_is_a_star_that_does_not_vary() {
        let response = Cors::any().apply(Response::new(Status::OK), None);
        assert_eq!(
            headers(&response),
            pairs(&[("Access-Control-Allow-Origin", "*")])
        );
    }

    #[test]
    fn any_with_credentials_echoes_the_origin() {
        let cors = Cors::any().allow_credentials(true);
        let response = cors.apply(Response::new(Status::OK), Some("http://a.test"));
        assert_eq!(
            headers(&response),
            pairs(&[
                ("Vary", "Origin"),
                ("Access-Control-Allow-Origin", "http://a.test"),
                ("Access-Control-Allow-Credentials", "true"),
            ])
        );
        let response = cors.apply(Response::new(Status::OK), None);
        assert_eq!(headers(&response), pairs(&[("Vary", "Origin")]));
    }

    #[test]
    fn a_list_echoes_only_its_origins() {
        let cors = Cors::allow_origins(["http://a.test"]).expose_headers(["X-Id", "X-Seq"]);
        let response = cors.apply(Response::new(Status::OK), Some("http://a.test"));
        assert_eq!(
            headers(&response),
            pairs(&[
                ("Vary", "Origin"),
                ("Access-Control-Allow-Origin", "http://a.test"),
                ("Access-Control-Expose-Headers", "X-Id, X-Seq"),
            ])
        );
        for other in [Some("http://b.test"), Some("http://a.test:80"), None] {
            let response = cors.apply(Response::new(Status::OK), other);
            assert_eq!(
                headers(&response),
                pairs(&[("Vary", "Origin")]),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_handlers_own_allow_origin_is_kept() {
        let own = Response::new(Status::OK).with_header("Access-Control-Allow-Origin", "x");
        let response = Cors::any().apply(own, Some("http://a.test"));
        assert_eq!(
            headers(&response),
            pairs(&[("Access-Control-Allow-Origin", "x")])
        );
    }

    #[test]
    fn a_preflight_allows_the_requested_headers_that_are_allowed() {
        let cors = Cors::any().allow_headers(["Content-Type"]);
        let request = Request::new(Method::Options, "/x")
            .with_header("Origin", "http://a.test")
            .with_header("Access-Control-Request-Method", "GET")
            .with_header(
                "Access-Control-Request-Headers",
                "x-other, content-type, last-event-id",
            );
        let response = cors.preflight(&request, Methods::GET);
        assert_eq!(
            response.header("access-control-allow-headers"),
            Some("content-type, last-event-id")
        );
        assert_eq!(
            response.header("access-control-allow-methods"),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    }

    #[test]
    #[should_panic(expected = "without a path")]
    fn an_origin_with_a_path_is_refused() {
        let _ = Cors::allow_origins(["https://a.example/"]);
    }

    #[test]
    #[should_panic(expected = "invalid header name")]
    fn a_header_that_is_not_a_token_is_refused() {
        let _ = Cors::any().allow_headers(["a b"]);
    }
}
