//! Static files: a directory mounted under a URL prefix, and single files served from a
//! handler, with content types, validators (`ETag`, `Last-Modified`) and `304 Not Modified`.
//!
//! # Example
//! ```no_run
//! use house::{files, Config, Route, Server};
//!
//! let routes = vec![
//!     // `/static/app.css` → `./static/app.css`
//!     files::mount("/static/", "static")?,
//!     Route::closing("/index", |ctx| files::serve_file(ctx.request, "static/index.html")),
//! ];
//! Server::bind("127.0.0.1:4242", Config::default(), routes)?.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is served
//! A mounted directory serves the regular files below it, following symlinks only while they
//! stay inside it. Everything else answers `404 Not Found`, and never with a file outside the
//! directory: a missing file, a directory (there is no index page or listing), a path with a `..`
//! or `.` segment (also when it arrived percent-encoded as `%2e%2e`, since the request path is
//! already decoded), an empty segment (`/static//etc/passwd`), a backslash, a NUL, a symlink
//! that leads outside the directory, and every dotfile or dot-directory (`.env`, `.git/config`).
//!
//! Every file answer carries `Cache-Control: no-cache` (the browser revalidates each use, so
//! edits show at once and unchanged files cost a `304`) and, like every response,
//! `X-Content-Type-Options: nosniff`.
//! Files up to [`STREAM_THRESHOLD`] bytes are read into memory; larger ones are streamed through
//! the connection's write queue a chunk at a time.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::request::{Method, Methods, Request};
use crate::response::{Response, Status};
use crate::route::Route;

/// Largest file read whole into memory per request. A larger file is sent as
/// [`Body::File`](crate::Body::File): the server reads it into the write queue a chunk at a time
/// as the client drains it.
pub const STREAM_THRESHOLD: u64 = 64 * 1024;

/// `Content-Type` of files whose extension is not in [`content_type`]'s table.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A route that serves the files below `dir` at the paths below `prefix`, for `GET` and `HEAD`.
///
/// `prefix` gets a trailing `/` if it lacks one, so `/static` never matches `/staticky`. `dir`
/// is resolved once, here, relative to the current directory; see the [module docs](self) for
/// what is and is not served.
///
/// # Errors
/// If `dir` does not exist or is not a directory, so a typo fails at start-up rather than
/// answering 404 forever.
///
/// # Examples
/// ```
/// # let dir = std::env::temp_dir();
/// let route = house::files::mount("/static", dir)?;
/// assert_eq!(route.path(), "/static/");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn mount(prefix: impl Into<Cow<'static, str>>, dir: impl AsRef<Path>) -> io::Result<Route> {
    let mut prefix = prefix.into();
    if !prefix.ends_with('/') {
        prefix.to_mut().push('/');
    }
    let dir = dir.as_ref();
    let root = dir.canonicalize().map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot serve static files from {}: {err}", dir.display()),
        )
    })?;
    if !root.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot serve static files from {}: not a directory",
                dir.display()
            ),
        ));
    }
    let name = format!("files::mount({})", dir.display());
    let strip = prefix.to_string();
    Ok(Route::closing(prefix, move |ctx| {
        let rel = ctx.request.path().strip_prefix(strip.as_str());
        match rel.and_then(|rel| resolve(&root, rel)) {
            Some(path) => serve_file(ctx.request, path),
            None => not_found(),
        }
    })
    .with_prefix()
    .with_methods(Methods::GET | Methods::HEAD)
    .with_name(name))
}

/// The response for one file chosen by the application (not by the client): `200` with the
/// file, or `304` when the request's `If-None-Match` / `If-Modified-Since` shows the client has
/// it, or `404` when it is missing or not a regular file.
///
/// The `Content-Type` comes from the extension ([`content_type`]). No traversal checks happen
/// here: never build `path` from request data; [`mount`] is for that.
///
/// # Examples
/// ```
/// use house::{files, Method, Request, Status};
///
/// let request = Request::new(Method::Get, "/index");
/// let response = files::serve_file(&request, "no/such/file.html");
/// assert_eq!(response.status(), Status::NOT_FOUND);
/// ```
pub fn serve_file(request: &Request, path: impl AsRef<Path>) -> Response {
    let path = path.as_ref();
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if is_missing(&err) => return not_found(),
        Err(_) => return unreadable(),
    };
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return not_found(),
        Err(_) => return unreadable(),
    };
    let len = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    if modified.is_some_and(|modified| is_fresh(request, len, modified)) {
        return with_file_headers(Response::new(Status::NOT_MODIFIED), len, modified);
    }
    let response = with_file_headers(Response::new(Status::OK), len, modified)
        .with_header("Content-Type", content_type(path));
    if len > STREAM_THRESHOLD {
        return response.with_file(file, len);
    }
    // Read what is there now: if the file changed since `metadata`, Content-Length still
    // matches the bytes sent, because the server computes it from the body.
    let mut body = Vec::with_capacity(len as usize);
    match file.read_to_end(&mut body) {
        Ok(_) => response.with_body(body),
        Err(_) => unreadable(),
    }
}

/// The `Content-Type` for `path`'s extension (case-insensitive), or [`OCTET_STREAM`].
///
/// Text types say `charset=utf-8`.
///
/// # Examples
/// ```
/// use house::files::content_type;
///
/// assert_eq!(content_type("chat.JS".as_ref()), "text/javascript; charset=utf-8");
/// assert_eq!(content_type("logo.svg".as_ref()), "image/svg+xml");
/// assert_eq!(content_type("Makefile".as_ref()), "application/octet-stream");
/// ```
pub fn content_type(path: &Path) -> &'static str {
    let Some(ext) = path.extension().and_then(|ext| ext.to_str()) else {
        return OCTET_STREAM;
    };
    CONTENT_TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |(_, ct)| ct)
}

/// Extension → `Content-Type`, for the web's usual files. Kept by hand rather than taken from
/// `mime_guess` (see the README's "Dependencies"): its answers carry no charset, call source
/// maps `text/plain` and `.mjs` `application/javascript`, and a static mount needs these few.
const CONTENT_TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml"),
    ("webmanifest", "application/manifest+json"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
];

/// The file below `root` (canonical) that the decoded request path remainder `rel` names, or
/// `None` if `rel` must not be served.
fn resolve(root: &Path, rel: &str) -> Option<PathBuf> {
    // `a\..\..\x` means nothing special on Unix, but refuse it in case the tree is shared with
    // a system where it does; NUL cannot be in a file name.
    if rel.contains(['\\', '\0']) {
        return None;
    }
    let mut path = root.to_path_buf();
    for segment in rel.split('/') {
        // "" is a leading, doubled or trailing slash ("/etc/passwd" after the prefix, "a//b",
        // a directory "css/"); "." and ".." move around; ".env" is a dotfile.
        if segment.is_empty() || segment.starts_with('.') {
            return None;
        }
        path.push(segment);
    }
    // Symlinks are resolved here; whatever they lead to must still be inside `root` and not
    // a dotfile there (`public -> .git`).
    let real = path.canonicalize().ok()?;
    let inside = real.strip_prefix(root).ok()?;
    let hidden = inside.components().any(|c| match c {
        Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
        _ => true,
    });
    (!hidden).then_some(real)
}

/// Whether the client's cached copy, described by its conditional headers, is current.
///
/// `If-None-Match` wins over `If-Modified-Since` when both are sent (RFC 9110 §13.2.2).
fn is_fresh(request: &Request, len: u64, modified: Duration) -> bool {
    // A `POST` that happens to carry validators still gets the file (RFC 9110 §13.1.1).
    if !matches!(request.method(), Method::Get | Method::Head) {
        return false;
    }
    if let Some(tags) = request.header("if-none-match") {
        let ours = etag(len, modified);
        return tags.split(',').map(str::trim).any(|tag| {
            // Weak comparison: `W/"x"` matches `"x"`.
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours
        });
    }
    request
        .header("if-modified-since")
        .and_then(parse_http_date)
        .is_some_and(|since| modified.as_secs() <= since)
}

/// A strong validator from the file's length and modification time (nanoseconds, so two edits
/// within a second still differ).
fn etag(len: u64, modified: Duration) -> String {
    format!("\"{len:x}-{:x}\"", modified.as_nanos())
}

/// Adds the validators (when the file system knows the modification time) and the caching
/// headers every file answer carries.
fn with_file_headers(mut response: Response, len: u64, modified: Option<Duration>) -> Response {
    if let Some(modified) = modified {
        response = response.with_header("ETag", etag(len, modified));
        if let Some(date) = http_date(modified.as_secs()) {
            response = response.with_header("Last-Modified", date);
        }
    }
    response.with_header("Cache-Control", "no-cache")
}

fn is_missing(err: &io::Error) -> bool {
    // A permission error hides the file rather than confirming it exists.
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::NotADirectory
    )
}

fn not_found() -> Response {
    Response::error(Status::NOT_FOUND, "")
}

fn unreadable() -> Response {
    Response::error(Status::INTERNAL_SERVER_ERROR, "the file could not be read")
}

/// The last second an HTTP date can name (9999-12-31 23:59:59 GMT): a file modified later
/// (a clock set wrong, `touch -d`) gets no `Last-Modified`, only its `ETag`.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// `784111777` → `"Sun, 06 Nov 1994 08:49:37 GMT"` (RFC 9110 IMF-fixdate); `None` past
/// [`LAST_HTTP_DATE`], where `httpdate` would panic.
fn http_date(secs: u64) -> Option<String> {
    (secs <= LAST_HTTP_DATE)
        .then(|| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)))
}

/// The seconds since the epoch of an HTTP date in any of the three forms a recipient must
/// accept (RFC 9110 §5.6.7): IMF-fixdate, RFC 850 and asctime. `None` for anything else,
/// an impossible date (`30 Feb`) included: the client then just gets a `200`.
fn parse_http_date(date: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(date).ok()?;
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Ctx, Handler, Hub};
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("house-files-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir.canonicalize().unwrap())
        }

        fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// `site/` (the served root) and `secret.txt` beside it.
    fn site() -> (TempDir, PathBuf) {
        let tmp = TempDir::new();
        tmp.write("secret.txt", "outside");
        tmp.write("site/index.html", "<h1>hi</h1>");
        tmp.write("site/css/app.css", "body{}");
        tmp.write("site/.env", "SECRET=1");
        tmp.write("site/.git/config", "[core]");
        tmp.write("site/a b.txt", "spaced");
        let root = tmp.0.join("site");
        (tmp, root)
    }

    fn get(route: &Route, request: Request) -> Response {
        let mut hub = Hub::default();
        let mut ctx = Ctx::new(&request, &mut hub);
        match route.handler() {
            Handler::Closing(handler) => handler(&mut ctx),
            _ => panic!("files are served by a closing handler"),
        }
    }

    fn body(response: &Response) -> &[u8] {
        match response.body() {
            Body::Bytes(bytes) => bytes,
            other => panic!("expected an in-memory body, got {other:?}"),
        }
    }

    #[test]
    fn resolves_plain_paths() {
        let (_tmp, root) = site();
        assert_eq!(resolve(&root, "index.html"), Some(root.join("index.html")));
        assert_eq!(
            resolve(&root, "css/app.css"),
            Some(root.join("css/app.css"))
        );
        assert_eq!(resolve(&root, "a b.txt"), Some(root.join("a b.txt")));
    }

    #[test]
    fn refuses_traversal_dotfiles_and_odd_paths() {
        let (_tmp, root) = site();
        for rel in [
            "../secret.txt",
            "css/../../secret.txt",
            "css/../index.html",
            "./index.html",
            "/etc/passwd",
            "css//app.css",
            "..\\secret.txt",
            "css\\app.css",
            "index.html\0",
            ".env",
            ".git/config",
            "css/",
            "",
            "missing.html",
        ] {
            assert_eq!(resolve(&root, rel), None, "{rel:?}");
        }
    }

    #[test]
    fn symlinks_stay_inside() {
        let (tmp, root) = site();
        std::os::unix::fs::symlink(tmp.0.join("secret.txt"), root.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(&tmp.0, root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join(".env"), root.join("env.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("css"), root.join("styles")).unwrap();
        assert_eq!(resolve(&root, "out.txt"), None);
        assert_eq!(resolve(&root, "up/secret.txt"), None);
        assert_eq!(resolve(&root, "env.txt"), None);
        assert_eq!(
            resolve(&root, "styles/app.css"),
            Some(root.join("css/app.css"))
        );
    }

    #[test]
    fn content_types_by_extension() {
        for (name, expected) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.HTM", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("a.json", "application/json"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.JPEG", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("a.webp", "image/webp"),
            ("a.ico", "image/x-icon"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.woff", "font/woff"),
            ("a.woff2", "font/woff2"),
            ("a.wasm", "application/wasm"),
            ("a.csv", "text/csv; charset=utf-8"),
            ("a.md", "text/markdown; charset=utf-8"),
            ("site.webmanifest", "application/manifest+json"),
            ("a.MP4", "video/mp4"),
            ("a.webm", "video/webm"),
            ("a.mp3", "audio/mpeg"),
            ("a.otf", "font/otf"),
            ("a.map", "application/json"),
            ("a.tar.gz", OCTET_STREAM),
            ("README", OCTET_STREAM),
            (".html", OCTET_STREAM),
        ] {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn mount_serves_files_with_validators() {
        let (_tmp, root) = site();
        let route = mount("/static", &root).unwrap();
        assert_eq!(route.path(), "/static/");
        let routes = crate::Routes::new([mount("/static", &root).unwrap()]).unwrap();
        let mut request = Request::new(Method::Get, "/static/css/app.css");
        assert!(matches!(
            routes.resolve(&mut request),
            crate::route::Resolved::Handler(_)
        ));
        assert!(route.methods().contains(Method::Head));
        assert!(!route.methods().contains(Method::Post));

        let response = get(&route, Request::new(Method::Get, "/static/css/app.css"));
        assert_eq!(response.status(), Status::OK);
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(body(&response), b"body{}");
        assert!(response
            .header("etag")
            .is_some_and(|t| t.starts_with("\"6-")));
        let last_modified = response.header("last-modified").unwrap();
        assert!(parse_http_date(last_modified).is_some(), "{last_modified}");
        assert_eq!(response.header("cache-control"), Some("no-cache"));

        for rel in [
            "/static/../secret.txt",
            "/static/.env",
            "/static/css/",
            "/static/css",
            "/static/nope",
        ] {
            let response = get(&route, Request::new(Method::Get, rel));
            assert_eq!(response.status(), Status::NOT_FOUND, "{rel}");
            assert!(!body(&response).starts_with(b"outside"));
        }
    }

    #[test]
    fn conditional_requests_answer_304() {
        let (_tmp, root) = site();
        let route = mount("/static/", &root).unwrap();
        let first = get(&route, Request::new(Method::Get, "/static/index.html"));
        let etag = first.header("etag").unwrap().to_owned();
        let last_modified = first.header("last-modified").unwrap().to_owned();

        let cases = [
            ("if-none-match", etag.clone(), Status::NOT_MODIFIED),
            (
                "if-none-match",
                format!("\"x\", W/{etag}"),
                Status::NOT_MODIFIED,
            ),
            ("if-none-match", "*".to_owned(), Status::NOT_MODIFIED),
            ("if-none-match", "\"other\"".to_owned(), Status::OK),
            (
                "if-modified-since",
                last_modified.clone(),
                Status::NOT_MODIFIED,
            ),
            (
                "if-modified-since",
                http_date(4_000_000_000).unwrap(),
                Status::NOT_MODIFIED,
            ),
            (
                "if-modified-since",
                http_date(1_000_000).unwrap(),
                Status::OK,
            ),
            // The obsolete asctime form is still a date (RFC 9110 §5.6.7).
            (
                "if-modified-since",
                "Tue Nov  6 08:49:37 2096".to_owned(),
                Status::NOT_MODIFIED,
            ),
            ("if-modified-since", "yesterday".to_owned(), Status::OK),
        ];
        for (header, value, status) in cases {
            let request =
                Request::new(Method::Get, "/static/index.html").with_header(header, value.clone());
            let response = get(&route, request);
            assert_eq!(response.status(), status, "{header}: {value}");
            assert_eq!(response.header("etag"), Some(etag.as_str()));
            if status == Status::NOT_MODIFIED {
                assert!(response.body().is_empty());
                assert_eq!(response.header("content-type"), None);
            }
        }

        // Only GET and HEAD are answered 304.
        let request =
            Request::new(Method::Post, "/static/index.html").with_header("if-none-match", etag);
        assert_eq!(get(&route, request).status(), Status::OK);

        // A non-matching tag wins over a matching date.
        let request = Request::new(Method::Get, "/static/index.html")
            .with_header("if-none-match", "\"other\"")
            .with_header("if-modified-since", last_modified);
        assert_eq!(get(&route, request).status(), Status::OK);
    }

    #[test]
    fn large_files_are_streamed() {
        let tmp = TempDir::new();
        let big = vec![b'x'; STREAM_THRESHOLD as usize + 1];
        tmp.write("big.wasm", &big);
        tmp.write("small.wasm", &big[..STREAM_THRESHOLD as usize]);
        let request = Request::new(Method::Get, "/big.wasm");
        let response = serve_file(&request, tmp.0.join("big.wasm"));
        assert!(matches!(response.body(), Body::File { len, .. } if *len == STREAM_THRESHOLD + 1));
        assert_eq!(response.header("content-type"), Some("application/wasm"));
        let response = serve_file(&request, tmp.0.join("small.wasm"));
        assert_eq!(body(&response).len() as u64, STREAM_THRESHOLD);
    }

    #[test]
    fn serve_file_missing_or_directory_is_404() {
        let tmp = TempDir::new();
        let request = Request::new(Method::Get, "/index");
        assert_eq!(
            serve_file(&request, tmp.0.join("nope.html")).status(),
            Status::NOT_FOUND
        );
        assert_eq!(serve_file(&request, &tmp.0).status(), Status::NOT_FOUND);
    }

    #[test]
    fn mount_refuses_a_missing_directory() {
        let err = mount("/static/", "/no/such/dir").unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"), "{err}");
    }

    #[test]
    fn http_dates() {
        let date = |secs| http_date(secs).unwrap();
        assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(date(LAST_HTTP_DATE), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(LAST_HTTP_DATE + 1), None);
        assert_eq!(http_date(u64::MAX), None);
        // All three forms RFC 9110 §5.6.7 says a recipient must accept.
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(form), Some(784_111_777), "{form}");
        }
        for secs in [0, 68_169_600, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_http_date(&date(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Wed, 30 Feb 1994 08:49:37 GMT",
            "Thu, 01 Jan 1969 00:00:00 GMT",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
