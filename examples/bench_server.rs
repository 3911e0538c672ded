//! `cargo run --release --example bench_server -- --port 4500 [--compress]`
//!
//! The benchmark twin of the axum reference (`../shared/peers/axum-chat`): the same three routes
//! with the same bytes, so `examples/compare.rs` measures the servers and not the apps.
//!
//!   GET /source?room=X                          an SSE stream of room X
//!   GET /send-message?room=X&name=N&message=M   publishes {"name":N,"message":M} to room X
//!   GET /hello                                  "Hello, World!"
//!
//! And one of its own, for the compression figures (`--compress` turns on
//! `Config::with_compression`; `loadgen --gzip` asks for it):
//!
//!   GET /send-doc?room=X&message=M              publishes a 1 KB JSON document (an order
//!                                               with its customer and items, varied per
//!                                               message) that carries M

use house::{Config, Event, Route, Server, Subscribe};
use serde::Serialize;

/// What a chat message carries (the axum reference publishes the same JSON).
#[derive(Serialize)]
struct Message<'a> {
    name: &'a str,
    message: &'a str,
}

const USAGE: &str = "usage: bench_server [--port N] [--compress]

  --port N    port to listen on, on 127.0.0.1 (default 4500)
  --compress  gzip streams for clients that take it (Config::with_compression)";

/// The port and `--compress` from the command line; `Err` carries what to print (empty for
/// `--help`).
fn parse_options() -> Result<(u16, bool), String> {
    let mut port = 4500;
    let mut compress = false;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(|err| err.to_string())? {
        match arg {
            lexopt::Arg::Long("port") => {
                let value = parser.value().map_err(|err| err.to_string())?;
                port = lexopt::ValueExt::parse(&value).map_err(|err| err.to_string())?;
            }
            lexopt::Arg::Long("compress") => compress = true,
            lexopt::Arg::Short('h') | lexopt::Arg::Long("help") => return Err(String::new()),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok((port, compress))
}

/// A JSON document of about 1 KB for `message`: an order, its customer and its lines, each
/// field picked from small lists by a generator seeded with the message, so documents differ as
/// real ones do (a repeated document would compress far better than real traffic).
fn document(message: &str) -> serde_json::Value {
    const FIRST: &[&str] = &[
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
    ];
    const LAST: &[&str] = &[
        "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
    ];
    const CITIES: &[&str] = &[
        "Lisbon", "Utrecht", "Kraków", "Tampere", "Ghent", "Bilbao", "Brno", "Turin",
    ];
    const PRODUCTS: &[&str] = &[
        "linen shirt",
        "walnut desk lamp",
        "trail running shoes",
        "cast iron pan",
        "wool scarf",
        "ceramic mug",
        "noise-cancelling headphones",
        "fountain pen",
    ];
    const STATUSES: &[&str] = &["paid", "packed", "shipped", "delivered"];
    // xorshift64*, seeded from the message: deterministic, and different for every message.
    let mut state = message.bytes().fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let mut next = |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    };
    let (first, last) = (FIRST[next(FIRST.len())], LAST[next(LAST.len())]);
    let lines: Vec<serde_json::Value> = (0..7)
        .map(|_| {
            serde_json::json!({
                "sku": format!("SKU-{:05}", next(100_000)),
                "title": PRODUCTS[next(PRODUCTS.len())],
                "quantity": 1 + next(4),
                "unit_price": format!("{}.{:02}", 3 + next(200), next(100)),
                "warehouse": format!("WH-{}", next(40)),
            })
        })
        .collect();
    serde_json::json!({
        "message": message,
        "order_id": format!("ord_{:016x}", next(usize::MAX)),
        "created_at": format!("2026-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", 1 + next(12), 1 + next(28), next(24), next(60), next(60), next(1000)),
        "status": STATUSES[next(STATUSES.len())],
        "customer": {
            "id": 100_000 + next(900_000),
            "name": format!("{first} {last}"),
            "email": format!("{}.{}{}@example.org", first.to_lowercase(), last.to_lowercase(), next(100)),
            "address": {
                "street": format!("{} {} Street", 1 + next(300), LAST[next(LAST.len())]),
                "city": CITIES[next(CITIES.len())],
                "postcode": format!("{:05}", next(100_000)),
            },
        },
        "lines": lines,
        "currency": "EUR",
        "total": format!("{}.{:02}", 20 + next(900), next(100)),
    })
}

fn main() -> std::io::Result<()> {
    let (port, compress) = match parse_options() {
        Ok(options) => options,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(why) => {
            eprintln!("bench_server: {why}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let routes = vec![
        Route::stream("/source", |ctx| {
            Subscribe::to(ctx.request.param("room").unwrap_or("default"))
        }),
        Route::closing("/send-message", |ctx| {
            let room = ctx.request.param("room").unwrap_or("default").to_owned();
            let event = Event::json(&Message {
                name: ctx.request.param("name").unwrap_or(""),
                message: ctx.request.param("message").unwrap_or(""),
            });
            // As in the reference, a room nobody listens to is not an error.
            ctx.hub.publish(&room, event).map(|_| "ok")
        }),
        Route::closing("/send-doc", |ctx| {
            let room = ctx.request.param("room").unwrap_or("default").to_owned();
            let event = Event::json(&document(ctx.request.param("message").unwrap_or("")));
            ctx.hub.publish(&room, event).map(|_| "ok")
        }),
        Route::closing("/hello", |_| "Hello, World!"),
    ];
    let config = Config::default().with_compression(compress);
    let server = Server::bind(("127.0.0.1", port), config, routes)?;
    eprintln!("bench_server: listening on {}", server.local_addr());
    server.run()
}
