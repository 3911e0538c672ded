//! Typed handler parameters: how a request parameter's text becomes a Rust value, and the rule
//! checks that `#[closing_handler]` and `#[stream_handler]` expand into.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;

/// How long a client's value may be before an error message shortens it, in characters.
const MAX_ECHO_CHARS: usize = 32;

/// A type a handler parameter can have: decoded from the parameter's text.
///
/// `house` implements it for `String`, every integer type, `f32`, `f64`, `bool`, `char`,
/// [`JsonParam<T>`] (for `T: Deserialize`), and for `Option<T>` and `Vec<T>` of those. Implement it
/// for your own type to take it as a parameter; return [`ParamError::invalid`] to answer 400.
///
/// # Examples
/// A parameter that must be a hex colour like `#a0b1c2`:
/// ```
/// use house::{FromParam, ParamError};
///
/// struct Colour(u32);
///
/// impl FromParam for Colour {
///     fn from_param(value: &str) -> Result<Colour, ParamError> {
///         value
///             .strip_prefix('#')
///             .filter(|hex| hex.len() == 6)
///             .and_then(|hex| u32::from_str_radix(hex, 16).ok())
///             .map(Colour)
///             .ok_or_else(|| ParamError::invalid("a colour like `#a0b1c2`", value))
///     }
/// }
///
/// #[house::closing_handler]
/// fn paint(colour: Colour) -> String {
///     format!("painting {:06x}", colour.0)
/// }
/// # let _ = paint;
/// ```
/// A request with `colour=blue` is then answered
/// ``400 Bad Request: parameter `colour` must be a colour like `#a0b1c2` (got `blue`)``.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler parameter",
    label = "not decodable from a request parameter",
    note = "parameters may be `String`, integers, `f32`, `f64`, `bool`, `char`, `house::JsonParam<T>`, `Option<T>` or `Vec<T>` of those, or a type that implements `house::FromParam`",
    note = "a JSON request body is a `#[body] house::Json<T>` argument, not a parameter",
    note = "the request and the hub are passed by type: `&Request`, `&Hub` or `&mut Hub`"
)]
pub trait FromParam: Sized {
    /// Decodes one value.
    fn from_param(value: &str) -> Result<Self, ParamError>;

    /// Decodes a parameter from all its values, in the order they arrived.
    ///
    /// The default decodes the first value and reports a missing parameter when there is none;
    /// `Option<T>` answers `None` instead, and `Vec<T>` decodes every value.
    fn from_values<'a, I>(mut values: I) -> Result<Self, ParamError>
    where
        I: Iterator<Item = &'a str>,
    {
        match values.next() {
            Some(value) => Self::from_param(value),
            None => Err(ParamError::missing()),
        }
    }
}

/// Why a parameter was refused; the handler answers 400 with a message naming the parameter.
///
/// # Examples
/// ```
/// use house::ParamError;
///
/// let error = ParamError::invalid("a colour", "blue");
/// assert_eq!(error.message("colour"), "parameter `colour` must be a colour (got `blue`)");
/// assert_eq!(ParamError::missing().message("room"), "missing parameter `room`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The request has no value for the parameter.
    Missing,
    /// The value is not what the type expects.
    Invalid {
        expected: Cow<'static, str>,
        got: String,
    },
    /// Free text following the parameter's name: a broken rule.
    Detail(String),
}

impl ParamError {
    /// The request has no value for the parameter.
    pub fn missing() -> ParamError {
        ParamError {
            kind: Kind::Missing,
        }
    }

    /// The value `got` is not `expected` (a noun phrase: `"an integer"`, `"a colour"`).
    ///
    /// Long values are shortened in the message.
    pub fn invalid(expected: impl Into<Cow<'static, str>>, got: &str) -> ParamError {
        ParamError {
            kind: Kind::Invalid {
                expected: expected.into(),
                got: echo(got),
            },
        }
    }

    /// Any other refusal; `detail` follows the parameter's name (`"must be even"`).
    pub fn new(detail: impl Into<String>) -> ParamError {
        ParamError {
            kind: Kind::Detail(detail.into()),
        }
    }

    /// Whether the parameter was absent.
    pub fn is_missing(&self) -> bool {
        matches!(self.kind, Kind::Missing)
    }

    /// The message a client sees, naming parameter `name`.
    pub fn message(&self, name: &str) -> String {
        match self.kind {
            Kind::Missing => format!("missing parameter `{name}`"),
            _ => format!("parameter `{name}` {self}"),
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Missing => f.write_str("is missing"),
            Kind::Invalid { expected, got } => write!(f, "must be {expected} (got {got})"),
            Kind::Detail(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for ParamError {}

/// A client's value quoted for an error message, shortened when long.
fn echo(value: &str) -> String {
    if value.is_empty() {
        return "an empty value".to_owned();
    }
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        Some((end, _)) => format!("`{}…`", &value[..end]),
        None => format!("`{value}`"),
    }
}

/// A type the `min` and `max` rules can bound: a `String` by its length in characters, a
/// number by its value.
///
/// Implement it for your own [`FromParam`] type to use `min`/`max` on it.
///
/// # Examples
/// ```
/// use house::{Bounded, FromParam, ParamError};
///
/// struct Tags(Vec<String>);
///
/// impl FromParam for Tags {
///     fn from_param(value: &str) -> Result<Tags, ParamError> {
///         Ok(Tags(value.split(',').map(str::to_owned).collect()))
///     }
/// }
///
/// impl Bounded for Tags {
///     type Bound = usize;
///     fn measure(&self) -> usize {
///         self.0.len()
///     }
///     fn describe(bound: &usize) -> String {
///         format!("{bound} tags")
///     }
/// }
///
/// #[house::closing_handler]
/// fn tag(#[param(max = 3)] tags: Tags) -> String {
///     tags.0.join(" ")
/// }
/// # let _ = tag;
/// ```
#[diagnostic::on_unimplemented(
    message = "the `min` and `max` rules do not apply to `{Self}`",
    label = "`{Self}` has no length or value to bound",
    note = "`min` and `max` bound a `String`'s length in characters or a number's value; implement `house::Bounded` for your own type"
)]
pub trait Bounded {
    /// What a bound compares with: a length, or the number itself.
    type Bound: PartialOrd + fmt::Display;

    /// The length or value the bound is checked against.
    fn measure(&self) -> Self::Bound;

    /// A bound as messages say it: `"5 characters"`, `"18"`.
    fn describe(bound: &Self::Bound) -> String {
        bound.to_string()
    }
}

impl FromParam for String {
    fn from_param(value: &str) -> Result<String, ParamError> {
        Ok(value.to_owned())
    }
}

impl Bounded for String {
    type Bound = usize;

    /// Characters, not bytes: `"é"` has length 1.
    fn measure(&self) -> usize {
        self.chars().count()
    }

    fn describe(bound: &usize) -> String {
        plural(*bound, "character", "characters")
    }
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

macro_rules! integers {
    ($($ty:ty),*) => {$(
        impl FromParam for $ty {
            /// Decimal digits with an optional sign; anything else, or a value out of range, is
            /// refused (`"12abc"` is not 12).
            fn from_param(value: &str) -> Result<$ty, ParamError> {
                value.parse().map_err(|_| {
                    let expected = format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX);
                    ParamError::invalid(expected, value)
                })
            }
        }

        impl Bounded for $ty {
            type Bound = $ty;
            fn measure(&self) -> $ty {
                *self
            }
        }
    )*};
}

integers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

macro_rules! floats {
    ($($ty:ty),*) => {$(
        impl FromParam for $ty {
            /// A decimal number; `NaN` and infinities are refused, so `min`/`max` always apply.
            fn from_param(value: &str) -> Result<$ty, ParamError> {
                match value.parse::<$ty>() {
                    Ok(number) if number.is_finite() => Ok(number),
                    _ => Err(ParamError::invalid("a number", value)),
                }
            }
        }

        impl Bounded for $ty {
            type Bound = $ty;
            fn measure(&self) -> $ty {
                *self
            }
        }
    )*};
}

floats!(f32, f64);

impl FromParam for bool {
    /// `true`, `on` or `1` (an HTML checkbox sends `on`); `false`, `off` or `0`.
    fn from_param(value: &str) -> Result<bool, ParamError> {
        match value {
            "true" | "on" | "1" => Ok(true),
            "false" | "off" | "0" => Ok(false),
            _ => Err(ParamError::invalid("`true` or `false`", value)),
        }
    }
}

impl FromParam for char {
    fn from_param(value: &str) -> Result<char, ParamError> {
        let mut chars = value.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(ParamError::invalid("a single character", value)),
        }
    }
}

/// A parameter whose text is JSON: `?filter={"room":"lobby"}` for a `JsonParam<Filter>`.
///
/// For a JSON request *body*, use a `#[body]` [`Json<T>`](crate::Json) argument instead; the
/// two have different names so one is never mistaken for the other.
///
/// # Examples
/// ```
/// use house::{FromParam, JsonParam};
///
/// #[derive(serde::Deserialize)]
/// struct Filter {
///     room: String,
/// }
///
/// let JsonParam(filter) = JsonParam::<Filter>::from_param(r#"{"room": "lobby"}"#).unwrap();
/// assert_eq!(filter.room, "lobby");
/// assert_eq!(
///     JsonParam::<Filter>::from_param("lobby").err().unwrap().message("filter"),
///     "parameter `filter` must be JSON of the expected shape (expected value at line 1 column 1) (got `lobby`)"
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonParam<T>(pub T);

impl<T: DeserializeOwned> FromParam for JsonParam<T> {
    /// The value's text as JSON of `T`'s shape.
    fn from_param(value: &str) -> Result<JsonParam<T>, ParamError> {
        serde_json::from_str(value).map(JsonParam).map_err(|err| {
            ParamError::invalid(format!("JSON of the expected shape ({err})"), value)
        })
    }
}

impl<T: FromParam> FromParam for Option<T> {
    fn from_param(value: &str) -> Result<Option<T>, ParamError> {
        T::from_param(value).map(Some)
    }

    /// `None` when absent; otherwise `T` from the values.
    fn from_values<'a, I>(values: I) -> Result<Option<T>, ParamError>
    where
        I: Iterator<Item = &'a str>,
    {
        let mut values = values.peekable();
        match values.peek() {
            None => Ok(None),
            Some(_) => T::from_values(values).map(Some),
        }
    }
}

impl<T: FromParam> FromParam for Vec<T> {
    fn from_param(value: &str) -> Result<Vec<T>, ParamError> {
        T::from_param(value).map(|one| vec![one])
    }

    /// Every value (`?tag=a&tag=b`), in order; empty when absent.
    fn from_values<'a, I>(values: I) -> Result<Vec<T>, ParamError>
    where
        I: Iterator<Item = &'a str>,
    {
        values.map(T::from_param).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(i32::from_param("-12"), Ok(-12));
        assert_eq!(
            u8::from_param("12abc").unwrap_err().message("n"),
            "parameter `n` must be an integer from 0 to 255 (got `12abc`)"
        );
        assert!(u8::from_param("256").is_err());
        assert!(u8::from_param(" 1").is_err());
        assert_eq!(
            i64::from_param("").unwrap_err().to_string(),
            "must be an integer from -9223372036854775808 to 9223372036854775807 (got an empty value)"
        );
    }

    #[test]
    fn floats_refuse_non_finite() {
        assert_eq!(f64::from_param("2.5"), Ok(2.5));
        for text in ["NaN", "inf", "-infinity", "1e999", "x"] {
            assert!(f64::from_param(text).is_err(), "{text}");
        }
    }

    #[test]
    fn long_values_are_shortened() {
        let error = u8::from_param(&"é".repeat(40)).unwrap_err();
        assert!(error
            .to_string()
            .ends_with(&format!("(got `{}…`)", "é".repeat(32))));
    }

    #[test]
    fn option_and_vec_from_values() {
        assert_eq!(Option::<u8>::from_values([].into_iter()), Ok(None));
        assert_eq!(
            Option::<u8>::from_values(["3", "4"].into_iter()),
            Ok(Some(3))
        );
        assert_eq!(
            Vec::<u8>::from_values(["3", "4"].into_iter()),
            Ok(vec![3, 4])
        );
        assert!(u8::from_values([].into_iter()).unwrap_err().is_missing());
    }

    #[test]
    fn string_length_counts_chars() {
        assert_eq!("é".repeat(16).measure(), 16);
        assert_eq!(
            crate::__private::check_max(&"é".repeat(17), 16)
                .unwrap_err()
                .message("room"),
            "parameter `room` must be at most 16 characters (got 17)"
        );
        assert_eq!(
            crate::__private::check_min(&String::new(), 1)
                .unwrap_err()
                .to_string(),
            "must be at least 1 character (got 0)"
        );
    }
}
