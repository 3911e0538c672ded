//! The router on arbitrary request targets, through the in-process test client (the real
//! parser, router, catchers and handlers): it never panics, `{name}` never takes a `/` or an
//! empty segment, and every answer is one the table can give.
#![no_main]

use house::test::Client;
use house::{Methods, Route, Status, Subscribe};
use libfuzzer_sys::fuzz_target;

/// Describes what the route captured, so the target can check it: `route|name:SE|...` where
/// `S` says the value holds a `/` and `E` that it is empty (values may hold any character).
fn echo(name: &'static str) -> impl Fn(&mut house::Ctx<'_>) -> String + Send + Sync {
    move |ctx| {
        let params: Vec<String> = ctx
            .request
            .path_params()
            .iter()
            .map(|(n, v)| {
                format!(
                    "{n}:{}{}",
                    u8::from(v.contains('/')),
                    u8::from(v.is_empty())
                )
            })
            .collect();
        format!("{name}|{}", params.join("|"))
    }
}

fn client() -> Client {
    Client::new([
        Route::closing("/", echo("root")),
        Route::closing("/rooms/{room}", echo("room")).with_methods(Methods::GET),
        Route::closing("/rooms/{room}", echo("room-post")).with_methods(Methods::POST),
        Route::closing("/rooms/{room}/messages/{id}", echo("message")),
        Route::closing("/rooms/lobby/messages/latest", echo("latest")),
        Route::closing("/files/{*path}", echo("files")),
        Route::stream("/rooms/{room}/events", |ctx| {
            Subscribe::to(ctx.request.path_param("room").unwrap_or_default())
        }),
        Route::catcher(Status::NOT_FOUND, |_| "caught"),
    ])
    .expect("the table builds")
}

thread_local! {
    static CLIENT: Client = client();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The request line splits on whitespace; such targets only test the parser's 400.
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return;
    }
    let (method, target) = match text.split_once('!') {
        Some(("p", target)) => (house::Method::Post, target),
        Some(("h", target)) => (house::Method::Head, target),
        Some(("o", target)) => (house::Method::Options, target),
        _ => (house::Method::Get, text),
    };
    let target = format!("/{target}");
    CLIENT.with(|client| {
        let response = client.request(method, &target).send();
        let status = response.status().code();
        assert!(
            matches!(status, 200 | 204 | 400 | 404 | 405 | 414),
            "{target}: {status}"
        );
        if status != 200 || method == house::Method::Head {
            return;
        }
        let body = response.text();
        if body.is_empty() {
            return; // a stream's head
        }
        let (_, params) = body.split_once('|').unwrap_or((&body, ""));
        let encoded_slash = target.to_ascii_lowercase().contains("%2f");
        for param in params.split('|').filter(|p| !p.is_empty()) {
            let (name, flags) = param.split_once(':').expect("name:flags");
            if name != "path" {
                assert!(flags.starts_with('0') || encoded_slash, "{target}: {param}");
                assert!(flags.ends_with('0'), "{target}: empty {name}");
            }
        }
    });
});
