//! Every parameter type of `#[closing_handler]`, over real sockets: what decodes, what answers 400.
#![allow(clippy::unwrap_used)]

mod support;

use house::{closing_handler, routes, Config, FromParam, JsonParam, ParamError};
use serde::Deserialize;
use support::{body_of, status_of, TestServer};

#[closing_handler]
fn text(value: String) -> String {
    format!("[{value}]")
}

#[closing_handler]
fn small(value: u8) -> String {
    value.to_string()
}

#[closing_handler]
fn signed(value: i64) -> String {
    value.to_string()
}

#[closing_handler]
fn float(value: f64) -> String {
    value.to_string()
}

#[closing_handler]
fn flag(value: bool) -> String {
    value.to_string()
}

#[closing_handler]
fn letter(value: char) -> String {
    value.to_string()
}

#[closing_handler]
fn maybe(value: Option<u16>) -> String {
    format!("{value:?}")
}

#[closing_handler]
fn many(value: Vec<i32>) -> String {
    format!("{value:?}")
}

#[derive(Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[closing_handler]
fn point(value: JsonParam<Point>) -> String {
    format!("{}+{}", value.0.x, value.0.y)
}

#[derive(FromParam, Debug)]
enum Colour {
    Red,
    DarkBlue,
    #[param(name = "gr")]
    Green,
}

#[closing_handler]
fn colour(value: Colour) -> String {
    format!("{value:?}")
}

/// A user type: an even number.
struct Even(u32);

impl FromParam for Even {
    fn from_param(value: &str) -> Result<Even, ParamError> {
        match value.parse::<u32>() {
            Ok(n) if n % 2 == 0 => Ok(Even(n)),
            _ => Err(ParamError::invalid("an even number", value)),
        }
    }
}

#[closing_handler]
fn even(value: Even) -> String {
    value.0.to_string()
}

fn server() -> TestServer {
    TestServer::start(
        Config::default(),
        routes![text, small, signed, float, flag, letter, maybe, many, point, colour, even],
    )
}

/// `(target, status, body)` rows, checked on one server.
#[track_caller]
fn check(rows: &[(&str, u16, &str)]) {
    server().check(rows);
}

#[test]
fn strings_take_any_text_including_empty() {
    check(&[
        ("/text?value=hi%20there", 200, "[hi there]"),
        ("/text?value=", 200, "[]"),
        ("/text?value=%C3%A9t%C3%A9", 200, "[été]"),
        ("/text", 400, "missing parameter `value`"),
    ]);
}

#[test]
fn integers_are_strict_and_in_range() {
    check(&[
        ("/small?value=0", 200, "0"),
        ("/small?value=255", 200, "255"),
        ("/small?value=256", 400, "parameter `value` must be an integer from 0 to 255 (got `256`)"),
        ("/small?value=-1", 400, "parameter `value` must be an integer from 0 to 255 (got `-1`)"),
        ("/small?value=12abc", 400, "parameter `value` must be an integer from 0 to 255 (got `12abc`)"),
        ("/small?value=", 400, "parameter `value` must be an integer from 0 to 255 (got an empty value)"),
        ("/small?value=1.5", 400, "parameter `value` must be an integer from 0 to 255 (got `1.5`)"),
        ("/signed?value=-9223372036854775808", 200, "-9223372036854775808"),
        ("/signed?value=%2B7", 200, "7"),
        ("/signed?value=%207", 400, "parameter `value` must be an integer from -9223372036854775808 to 9223372036854775807 (got ` 7`)"),
    ]);
}

#[test]
fn floats_are_finite_numbers() {
    check(&[
        ("/float?value=2.5", 200, "2.5"),
        ("/float?value=-1e3", 200, "-1000"),
        (
            "/float?value=NaN",
            400,
            "parameter `value` must be a number (got `NaN`)",
        ),
        (
            "/float?value=inf",
            400,
            "parameter `value` must be a number (got `inf`)",
        ),
        (
            "/float?value=2.5x",
            400,
            "parameter `value` must be a number (got `2.5x`)",
        ),
    ]);
}

#[test]
fn bools_and_chars() {
    check(&[
        ("/flag?value=true", 200, "true"),
        ("/flag?value=on", 200, "true"),
        ("/flag?value=0", 200, "false"),
        (
            "/flag?value=yes",
            400,
            "parameter `value` must be `true` or `false` (got `yes`)",
        ),
        ("/letter?value=%C3%A9", 200, "é"),
        (
            "/letter?value=ab",
            400,
            "parameter `value` must be a single character (got `ab`)",
        ),
        (
            "/letter?value=",
            400,
            "parameter `value` must be a single character (got an empty value)",
        ),
    ]);
}

#[test]
fn option_is_none_when_absent() {
    check(&[
        ("/maybe", 200, "None"),
        ("/maybe?value=7", 200, "Some(7)"),
        (
            "/maybe?value=x",
            400,
            "parameter `value` must be an integer from 0 to 65535 (got `x`)",
        ),
        (
            "/maybe?value=",
            400,
            "parameter `value` must be an integer from 0 to 65535 (got an empty value)",
        ),
    ]);
}

#[test]
fn vec_collects_repeated_values_in_order() {
    check(&[
        ("/many", 200, "[]"),
        ("/many?value=3&value=-1&value=2", 200, "[3, -1, 2]"),
        (
            "/many?value=3&value=x",
            400,
            "parameter `value` must be an integer from -2147483648 to 2147483647 (got `x`)",
        ),
    ]);
}

#[test]
fn repeated_single_value_takes_the_first() {
    check(&[("/small?value=1&value=2", 200, "1")]);
}

#[test]
fn json_values() {
    check(&[
        ("/point?value=%7B%22x%22%3A1%2C%22y%22%3A2%7D", 200, "1+2"),
        (
            "/point?value=%7B%22x%22%3A1%7D",
            400,
            "parameter `value` must be JSON of the expected shape (missing field `y` at line 1 column 7) (got `{\"x\":1}`)",
        ),
    ]);
}

#[test]
fn derived_enums_and_user_types() {
    check(&[
        ("/colour?value=red", 200, "Red"),
        ("/colour?value=dark-blue", 200, "DarkBlue"),
        ("/colour?value=gr", 200, "Green"),
        (
            "/colour?value=Red",
            400,
            "parameter `value` must be one of `red`, `dark-blue`, `gr` (got `Red`)",
        ),
        ("/even?value=4", 200, "4"),
        (
            "/even?value=3",
            400,
            "parameter `value` must be an even number (got `3`)",
        ),
        ("/even", 400, "missing parameter `value`"),
    ]);
}

#[test]
fn form_bodies_are_parameters_too() {
    let server = server();
    let response = server.exchange(
        b"POST /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nvalue=200",
    );
    assert_eq!(status_of(&response), 200, "{response}");
    assert_eq!(body_of(&response), "200");
}
