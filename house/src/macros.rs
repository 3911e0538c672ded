//! `routes!`: the handler table from a list of `#[closing_handler]`/`#[stream_handler]` fns.

/// The routes of handlers declared with [`closing_handler`](crate::closing_handler),
/// [`stream_handler`](crate::stream_handler) or [`catcher`](crate::catcher), as a
/// `Vec<Route>`.
///
/// Each name is the handler fn's path (`index`, `chat::send_message`). Two handlers whose
/// templates can never be told apart (the same path once parameter names are ignored, like
/// `/rooms/{name}` and `/rooms/{id}`, with overlapping methods), or two catchers of one
/// status, are a compile error on the `routes!` call naming both. Routes written by hand are
/// checked when the table is built ([`Routes::new`](crate::Routes::new) or `Server::bind`),
/// with a [`RouteError`](crate::RouteError) naming both.
///
/// # Examples
/// ```
/// use house::{closing_handler, routes, Route, Routes};
///
/// #[closing_handler]
/// fn index() -> &'static str {
///     "<h1>hello</h1>"
/// }
///
/// #[closing_handler("/")]
/// fn home() -> &'static str {
///     "home"
/// }
///
/// // One template, disjoint methods: two routes.
/// #[closing_handler("/items/{id}", methods = [GET])]
/// fn item(id: u32) -> String {
///     id.to_string()
/// }
///
/// #[closing_handler("/items/{item}", methods = [DELETE])]
/// fn delete_item(item: u32) -> String {
///     format!("deleted {item}")
/// }
///
/// let routes = routes![index, home, item, delete_item];
/// assert_eq!(routes[0].path(), "/index");
/// assert_eq!(Routes::new(routes).unwrap().len(), 4);
///
/// // Hand-written routes are checked at start-up.
/// let mut routes = routes![index];
/// routes.push(Route::closing("/index", |_| "again").with_name("again"));
/// assert!(Routes::new(routes).is_err());
/// ```
///
/// Two handlers on one path with overlapping methods do not compile:
/// ```compile_fail
/// #[house::closing_handler("/rooms/{name}")]
/// fn room(name: String) -> String {
///     name
/// }
///
/// #[house::closing_handler("/rooms/{id}")]
/// fn room_by_id(id: u32) -> String {
///     id.to_string()
/// }
///
/// let _ = house::routes![room, room_by_id];
/// // error: `routes![..]`: `room` and `room_by_id` can never be told apart: both match
/// // `/rooms/{}` (parameter names do not count) with overlapping methods; …
/// ```
#[macro_export]
macro_rules! routes {
    ($($handler:path),* $(,)?) => {{
        // Two templates that can never be told apart are a compile error here, not a start-up
        // error.
        const _: () = $crate::__private::check_clashes(&[$((
            ::core::stringify!($handler),
            <$handler as $crate::__private::HandlerRoute>::SHAPE,
        )),*]);
        ::std::vec![$(<$handler as $crate::__private::HandlerRoute>::route()),*]
    }};
}
