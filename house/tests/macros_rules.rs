//! The `#[param(...)]` rules of the handler macros over real sockets: each at, below and above
//! its boundary, defaults, and the order checks run in.
#![allow(clippy::unwrap_used)]

mod support;

use house::{closing_handler, routes, Config};
use support::TestServer;

#[closing_handler]
fn room(#[param(max = 16)] room: String) -> String {
    room
}

#[closing_handler]
fn message(#[param(min = 5, max = 8)] message: String) -> String {
    message
}

#[closing_handler]
fn age(#[param(min = -5, max = 130)] age: i16) -> String {
    age.to_string()
}

#[closing_handler]
fn ratio(#[param(min = 0, max = 0.5)] ratio: f32) -> String {
    ratio.to_string()
}

#[closing_handler]
fn tags(#[param(name = "tag", min_count = 1, max_count = 3, max = 2)] tags: Vec<String>) -> String {
    tags.join(",")
}

#[closing_handler]
fn nick(#[param(min = 2)] nick: Option<String>) -> String {
    nick.unwrap_or_else(|| "anonymous".to_owned())
}

#[closing_handler]
fn pick(
    #[param(one_of = ["red", "green"])] colour: String,
    #[param(one_of = [1, 3, 5])] size: u8,
) -> String {
    format!("{colour} {size}")
}

#[closing_handler]
fn page(
    #[param(default = 1, min = 1)] page: u32,
    #[param(default = "lobby", max = 3)] room: String,
) -> String {
    format!("{page} {room}")
}

#[closing_handler]
fn order(
    #[param(max = 1)] first: String,
    #[param(max = 1)] second: String,
    #[param(one_of = ["x"], max = 0)] third: String,
) -> String {
    first + &second + &third
}

#[track_caller]
fn check(rows: &[(&str, u16, &str)]) {
    TestServer::start(
        Config::default(),
        routes![room, message, age, ratio, tags, nick, pick, page, order],
    )
    .check(rows);
}

#[test]
fn string_lengths_count_characters_not_bytes() {
    let e16 = "%C3%A9".repeat(16);
    let e17 = "%C3%A9".repeat(17);
    let s16 = "é".repeat(16);
    check(&[
        (&format!("/room?room={e16}"), 200, &s16),
        (
            &format!("/room?room={e17}"),
            400,
            "parameter `room` must be at most 16 characters (got 17)",
        ),
        (
            &format!("/room?room={}", "a".repeat(15)),
            200,
            &"a".repeat(15),
        ),
        ("/room?room=", 200, ""),
        // 4-byte characters count once too.
        (
            &format!("/room?room={}", "%F0%9F%8F%A0".repeat(16)),
            200,
            &"🏠".repeat(16),
        ),
    ]);
}

#[test]
fn string_min_and_max_boundaries() {
    check(&[
        (
            "/message?message=abcd",
            400,
            "parameter `message` must be at least 5 characters (got 4)",
        ),
        ("/message?message=abcde", 200, "abcde"),
        ("/message?message=abcdefgh", 200, "abcdefgh"),
        (
            "/message?message=abcdefghi",
            400,
            "parameter `message` must be at most 8 characters (got 9)",
        ),
        (
            "/message?message=",
            400,
            "parameter `message` must be at least 5 characters (got 0)",
        ),
        ("/message", 400, "missing parameter `message`"),
    ]);
}

#[test]
fn number_bounds_are_values() {
    check(&[
        (
            "/age?age=-6",
            400,
            "parameter `age` must be at least -5 (got -6)",
        ),
        ("/age?age=-5", 200, "-5"),
        ("/age?age=130", 200, "130"),
        (
            "/age?age=131",
            400,
            "parameter `age` must be at most 130 (got 131)",
        ),
        (
            "/ratio?ratio=-0.1",
            400,
            "parameter `ratio` must be at least 0 (got -0.1)",
        ),
        ("/ratio?ratio=0", 200, "0"),
        ("/ratio?ratio=0.5", 200, "0.5"),
        (
            "/ratio?ratio=0.51",
            400,
            "parameter `ratio` must be at most 0.5 (got 0.51)",
        ),
    ]);
}

#[test]
fn vec_counts_and_element_rules() {
    check(&[
        (
            "/tags",
            400,
            "parameter `tag` must be given at least 1 time (got 0)",
        ),
        ("/tags?tag=a", 200, "a"),
        ("/tags?tag=a&tag=b&tag=c", 200, "a,b,c"),
        (
            "/tags?tag=a&tag=b&tag=c&tag=d",
            400,
            "parameter `tag` must be given at most 3 times (got 4)",
        ),
        (
            "/tags?tag=ab&tag=abc",
            400,
            "parameter `tag` must be at most 2 characters (got 3)",
        ),
    ]);
}

#[test]
fn option_rules_apply_when_present() {
    check(&[
        ("/nick", 200, "anonymous"),
        ("/nick?nick=al", 200, "al"),
        (
            "/nick?nick=a",
            400,
            "parameter `nick` must be at least 2 characters (got 1)",
        ),
    ]);
}

#[test]
fn one_of_allowed_values() {
    check(&[
        ("/pick?colour=red&size=1", 200, "red 1"),
        ("/pick?colour=green&size=5", 200, "green 5"),
        (
            "/pick?colour=blue&size=1",
            400,
            "parameter `colour` must be one of `red`, `green` (got `blue`)",
        ),
        (
            "/pick?colour=red&size=2",
            400,
            "parameter `size` must be one of `1`, `3`, `5` (got `2`)",
        ),
    ]);
}

#[test]
fn defaults_fill_absent_parameters_only() {
    check(&[
        ("/page", 200, "1 lobby"),
        ("/page?page=4&room=abc", 200, "4 abc"),
        // Present values are the client's and are checked, even when empty.
        (
            "/page?page=0",
            400,
            "parameter `page` must be at least 1 (got 0)",
        ),
        (
            "/page?room=abcd",
            400,
            "parameter `room` must be at most 3 characters (got 4)",
        ),
        (
            "/page?page=",
            400,
            "parameter `page` must be an integer from 0 to 4294967295 (got an empty value)",
        ),
        ("/page?room=", 200, "1 "),
    ]);
}

#[test]
fn first_failure_in_declaration_order_wins() {
    check(&[
        (
            "/order?first=aa&second=bb",
            400,
            "parameter `first` must be at most 1 character (got 2)",
        ),
        ("/order?second=bb", 400, "missing parameter `first`"),
        (
            "/order?first=a&second=bb",
            400,
            "parameter `second` must be at most 1 character (got 2)",
        ),
        // Within one parameter, rules run in the order written: `one_of` before `max`.
        (
            "/order?first=a&second=b&third=yy",
            400,
            "parameter `third` must be one of `x` (got `yy`)",
        ),
        (
            "/order?first=a&second=b&third=x",
            400,
            "parameter `third` must be at most 0 characters (got 1)",
        ),
    ]);
}
