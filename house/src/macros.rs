//! `routes!`: the handler table from a list of `#[closing_handler]`/`#[stream_handler]` fns.

/// The routes of handlers declared with [`closing_handler`](crate::closing_handler) or
/// [`stream_handler`](crate::stream_handler), as a `Vec<Route>`.
///
/// Each name is the handler fn's path (`index`, `chat::send_message`). A path taken twice for
/// one method is refused when the table is built ([`Routes::new`](crate::Routes::new) or
/// `Server::bind`) with a [`RouteError`](crate::RouteError) naming both handlers.
///
/// # Examples
/// ```
/// use house::{closing_handler, routes, Routes};
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
/// #[closing_handler("/index")]
/// fn other_index() -> &'static str {
///     "again"
/// }
///
/// let routes = routes![index, home];
/// assert_eq!(routes[0].path(), "/index");
/// assert_eq!(Routes::new(routes).unwrap().len(), 2);
///
/// let clash = Routes::new(routes![index, other_index]).unwrap_err();
/// assert_eq!(
///     clash.to_string(),
///     "path `/index` is registered twice: by `index` and by `other_index`"
/// );
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
