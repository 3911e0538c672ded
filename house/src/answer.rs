//! A request's way through the app, without I/O: routing (and the catchers), the client's
//! session, the handler, and the 500 of a handler that panicked. The server's exchange stage
//! and the in-process test client share it, so what a test sees is what a socket gets.

use std::time::Instant;

use crate::hub::Hub;
use crate::printable::Printable;
use crate::request::Request;
use crate::response::{Response, Status};
use crate::route::{Ctx, Handler, Outcome, Resolved, Routes, Subscribe};
use crate::session::{Session, Sessions};
use crate::state::States;
use crate::stats::Stats;

/// What a request needs from the app to be answered.
pub(crate) struct App<'a> {
    pub(crate) routes: &'a Routes,
    pub(crate) hub: &'a mut Hub,
    pub(crate) sessions: &'a mut Sessions,
    pub(crate) states: &'a States,
    pub(crate) stats: &'a Stats,
    /// Whether the offload pool would take one more job.
    pub(crate) offload_room: bool,
    pub(crate) now: Instant,
}

/// What a request comes to.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response; `from_handler` when a handler returned it, so the events it published
    /// may hold it back until the broker has them.
    Respond {
        response: Response,
        from_handler: bool,
    },
    /// A stream to start on the connection.
    Stream(Subscribe),
}

impl App<'_> {
    /// Routes `request` (filling its path parameters), runs its handler with the client's
    /// session, and adds the session's cookie to the response. A panicking handler answers
    /// `500` (through its catcher), and a session it started is dropped.
    pub(crate) fn answer(self, request: &mut Request) -> Answer {
        let route = match self.routes.resolve(request) {
            Resolved::Answer(response) => {
                return Answer::Respond {
                    response,
                    from_handler: false,
                }
            }
            Resolved::Handler(route) => route,
        };
        let request: &Request = request;
        // Only a closing handler's response can carry a new session's cookie.
        let may_create = matches!(route.handler(), Handler::Closing(_));
        let session = Session::open(self.sessions, request, may_create, self.now);
        // Joins check the caller's session, and replay from the id it resumes from; a stream
        // opened by this request is bound to its session.
        let last_event_id = request
            .header("last-event-id")
            .or_else(|| request.param("last_event_id"))
            .map(str::trim);
        self.hub.set_caller(session.key(), last_event_id);
        let mut ctx = Ctx::new(request, self.hub)
            .with_stats(self.stats)
            .with_session(session)
            .with_state(self.states)
            .with_offload_room(self.offload_room);
        let outcome = route.run(&mut ctx);
        let cookie = ctx.session.close(!matches!(outcome, Outcome::Panicked));
        match outcome {
            Outcome::Respond(response) => Answer::Respond {
                response: match cookie {
                    Some(cookie) => response.append_header("Set-Cookie", cookie),
                    None => response,
                },
                from_handler: true,
            },
            // However the handler built it, a stream with no channel would never say anything.
            Outcome::Stream(subscribe)
                if subscribe.channels().is_empty() && subscribe.patterns().is_empty() =>
            {
                Answer::Respond {
                    response: Response::error(
                        Status::BAD_REQUEST,
                        "a stream needs at least one channel",
                    ),
                    from_handler: true,
                }
            }
            Outcome::Stream(subscribe) => match self.hub.pattern_refusal() {
                Some(why) if !subscribe.patterns().is_empty() => Answer::Respond {
                    response: Response::error(Status::NOT_IMPLEMENTED, why),
                    from_handler: true,
                },
                _ => Answer::Stream(subscribe),
            },
            Outcome::Panicked => {
                log::warn!("{}: the handler panicked", Printable(request.path()));
                let detail = "the handler failed";
                let default = Response::error(Status::INTERNAL_SERVER_ERROR, detail);
                Answer::Respond {
                    response: self.routes.catch(Some(request), detail.into(), default),
                    from_handler: false,
                }
            }
        }
    }
}
