//! Application state: values of any type the program hands the server once, which handlers
//! borrow by type.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::io;

/// The server's application state: at most one value per type, found by its type.
///
/// Programs add values with [`Server::with_state`]; handlers read them through
/// [`Ctx::state`], or (with the macros) by taking a `&T` argument whose type is not one of
/// house's own context types. A route that needs a state type the server was not given is
/// refused when [`Server::run`] starts, so a missing state is never a surprise per request.
///
/// # Examples
/// ```
/// use house::States;
///
/// struct Rooms(Vec<String>);
///
/// let mut states = States::new();
/// states.insert(Rooms(vec!["lobby".into()]));
/// states.insert(42_u32);
/// assert_eq!(states.get::<Rooms>().map(|r| r.0.len()), Some(1));
/// assert_eq!(states.get::<u32>(), Some(&42));
/// assert!(states.get::<String>().is_none());
/// ```
///
/// [`Server::with_state`]: crate::Server::with_state
/// [`Server::run`]: crate::Server::run
/// [`Ctx::state`]: crate::Ctx::state
#[derive(Default)]
pub struct States {
    values: BTreeMap<TypeId, Entry>,
}

/// One value and its type's name, for messages.
struct Entry {
    value: Box<dyn Any + Send + Sync>,
    name: &'static str,
}

/// The state of contexts built outside a server: nothing.
pub(crate) static NO_STATES: States = States::new();

impl States {
    /// No state.
    pub const fn new() -> States {
        States {
            values: BTreeMap::new(),
        }
    }

    /// Adds `value`; a value of the same type that was there is replaced and returned.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        let entry = Entry {
            value: Box::new(value),
            name: std::any::type_name::<T>(),
        };
        let old = self.values.insert(TypeId::of::<T>(), entry)?;
        old.value.downcast::<T>().ok().map(|old| *old)
    }

    /// The value of type `T`, if there is one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|entry| entry.value.downcast_ref::<T>())
    }

    /// Whether there is a value of type `T`.
    pub fn contains<T: 'static>(&self) -> bool {
        self.values.contains_key(&TypeId::of::<T>())
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Refuses the first need (`(route name, type, type name)`) that has no value: the server
    /// must not start with a handler that would fail on every request.
    pub(crate) fn check<'a>(
        &self,
        needs: impl IntoIterator<Item = (&'a str, TypeId, &'static str)>,
    ) -> io::Result<()> {
        for (route, id, name) in needs {
            if !self.values.contains_key(&id) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "handler `{route}` needs state `{name}`; add it with `Server::with_state`"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.values.values().map(|entry| entry.name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_value_of_a_type_replaces_the_first() {
        let mut states = States::new();
        assert_eq!(states.insert(1_u8), None);
        assert_eq!(states.insert(2_u8), Some(1));
        states.insert("text");
        assert_eq!(states.get::<u8>(), Some(&2));
        assert_eq!(states.get::<&str>(), Some(&"text"));
        assert_eq!(states.len(), 2);
        let debug = format!("{states:?}");
        assert!(
            debug.contains("\"u8\"") && debug.contains("\"&str\""),
            "{debug}"
        );
    }

    #[test]
    fn check_names_the_handler_and_the_type() {
        let mut states = States::new();
        states.insert(1_u8);
        let ok = [("a", TypeId::of::<u8>(), "u8")];
        assert!(states.check(ok).is_ok());
        let missing = [
            ("a", TypeId::of::<u8>(), "u8"),
            ("rooms", TypeId::of::<String>(), "alloc::string::String"),
        ];
        let err = states.check(missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "handler `rooms` needs state `alloc::string::String`; add it with `Server::with_state`"
        );
    }
}
