//! Stage: one request's way from the socket to its answer. Reads what a connection sent,
//! takes each complete request in order, finds its route, runs its handler, and queues the
//! response (or parks it until the broker has the handler's events, or hands the connection
//! to the streams stage).

use mio::Token;

use super::Server;
use crate::answer::{Answer, App};
use crate::conn::{Exchange, FileBody, Parked, Taken};
use crate::cors::is_preflight;
use crate::hub::PublishError;
use crate::offload::Done;
use crate::printable::Printable;
use crate::request::{Method, Version};
use crate::response::{Body, IntoResponse, Response, Status};
use crate::stats::DropReason;

impl Server {
    /// Reads until `WouldBlock` (or the end), then acts on it; for calls not prompted by a
    /// readiness event, where a hang-up may be waiting unannounced.
    pub(super) fn read(&mut self, token: Token) {
        self.read_some(token, true);
    }

    /// Reads what the socket has (see [`Conn::receive`](crate::conn::Conn::receive)), answers the requests it completes,
    /// and closes the connection if the client hung up and nothing more is owed.
    pub(super) fn read_some(&mut self, token: Token, to_the_end: bool) {
        let max_size = self.config.max_request_size();
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let hung_up = match conn.receive(&mut self.scratch, max_size, to_the_end, now) {
            Ok(hung_up) => hung_up,
            Err(err) => {
                log::debug!("{}: read failed: {err}", conn.peer());
                self.close(token, DropReason::HangUp);
                return;
            }
        };
        self.process_requests(token);
        if hung_up
            && self
                .conns
                .get_mut(&token)
                .is_some_and(|conn| conn.hang_up())
        {
            self.close(token, DropReason::HangUp);
        }
    }

    /// Answers every complete request in the connection's input, in order, while it is ready
    /// for one.
    pub(super) fn process_requests(&mut self, token: Token) {
        let max_size = self.config.max_request_size();
        let max_headers = self.config.max_headers();
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            match conn.take_request(max_size, max_headers, self.now) {
                None => return,
                Some(Err((err, started))) => {
                    log::debug!("{}: bad request: {err}", conn.peer());
                    let response = self.routes.refuse(&err, None);
                    self.respond(token, response, Exchange::unparsed(started));
                    return;
                }
                Some(Ok(taken)) => self.dispatch(token, taken),
            }
        }
    }

    /// Routes the request, runs its handler and queues its answer.
    fn dispatch(&mut self, token: Token, taken: Taken) {
        let Taken {
            mut request,
            keep_alive,
            started,
        } = taken;
        // Once shutting down, every answer closes its connection.
        let keep_alive = keep_alive && self.shutdown_deadline.is_none();
        // A browser's preflight is the server's to answer, before any handler.
        if let Some(cors) = self.config.cors().filter(|_| is_preflight(&request)) {
            if let Some(methods) = self.routes.methods_at(&request) {
                let response = cors.preflight(&request, methods);
                self.respond(token, response, Exchange::of(&request, keep_alive, started));
                return;
            }
        }
        self.refresh_gauges();
        let app = App {
            routes: &self.routes,
            hub: &mut self.hub,
            sessions: &mut self.sessions,
            states: &self.states,
            stats: &self.stats,
            offload_room: self.offload.has_room(),
            now: self.now,
        };
        let answer = app.answer(&mut request);
        // The handler's joins and leaves take effect before its response goes out.
        self.apply_changes();
        let exchange = Exchange::of(&request, keep_alive, started);
        match answer {
            Answer::Respond {
                mut response,
                from_handler: true,
            } => {
                let job = match response.take_deferred() {
                    Some(deferred) => match self.offload.submit(token, deferred) {
                        Ok(ticket) => Some(ticket),
                        Err(_) => {
                            self.stats.offload_refused += 1;
                            response = Response::error(
                                Status::SERVICE_UNAVAILABLE,
                                "too many jobs are waiting for a worker",
                            )
                            .with_header("Retry-After", "1");
                            None
                        }
                    },
                    None => None,
                };
                match (self.hub.await_acks(Some(token)), job) {
                    (0, None) => self.respond(token, response, exchange),
                    (awaiting, job) => self.park(token, response, exchange, awaiting, job),
                }
            }
            Answer::Respond { response, .. } => {
                // A handler that panicked may have published: nothing waits for those.
                self.hub.await_acks(None);
                self.respond(token, response, exchange);
            }
            Answer::Stream(subscribe) => {
                self.hub.await_acks(None);
                self.start_stream(token, &request, subscribe, exchange);
            }
        }
    }

    /// Queues a response; unless the exchange keeps the connection alive, the connection
    /// closes once it is written.
    pub(super) fn respond(&mut self, token: Token, response: Response, exchange: Exchange<'_>) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        // Every answer the server writes gets its CORS headers here, in one place.
        let response = match self.config.cors() {
            Some(cors) => cors.apply(response, exchange.origin.as_deref()),
            None => response,
        };
        let close = !exchange.keep_alive || !conn.takes_requests();
        let response = if !close && exchange.version == Version::Http10 {
            response.with_header("Connection", "keep-alive")
        } else {
            response
        };
        let status = response.status();
        let mut head = Vec::with_capacity(256);
        response.write_head(&mut head, close);
        let send_body = exchange.method != Some(Method::Head) && status.allows_body();
        let mut bytes = head.len() as u64;
        match response.into_body() {
            Body::Bytes(body) if send_body => {
                bytes += body.len() as u64;
                head.extend_from_slice(&body);
                conn.queue(head, now);
            }
            Body::File { file, len } if send_body => {
                bytes += len;
                conn.queue(head, now);
                conn.queue_file(FileBody::new(file, len));
            }
            _ => conn.queue(head, now),
        }
        if close {
            conn.close_after_flush();
        }
        self.dirty.mark(token, conn);
        self.stats.count_response(status);
        if log::log_enabled!(log::Level::Info) {
            log::info!(
                "{} {} {} {}B {:?}",
                exchange.method.map_or("-", Method::as_str),
                Printable(&exchange.path),
                status.code(),
                bytes,
                exchange.started.elapsed()
            );
        }
    }

    /// Holds a response until the broker acknowledges the `awaiting` publishes its handler
    /// made, and its offloaded `job` (if any) is done; the connection answers nothing else
    /// meanwhile.
    fn park(
        &mut self,
        token: Token,
        response: Response,
        exchange: Exchange<'_>,
        awaiting: usize,
        job: Option<u64>,
    ) {
        let now = self.now;
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.park(Parked {
                response,
                exchange: exchange.into_owned(),
                since: now,
                awaiting,
                failed: false,
                job,
            });
        }
    }

    /// The broker took (or refused) one of the publishes `token`'s parked response waits for.
    pub(super) fn acknowledge(&mut self, token: Token, ok: bool) {
        let Some(parked) = self
            .conns
            .get_mut(&token)
            .and_then(|conn| conn.parked_mut())
        else {
            return;
        };
        parked.failed |= !ok;
        parked.awaiting = parked.awaiting.saturating_sub(1);
        if parked.awaiting == 0 && parked.job.is_none() {
            self.release(token, false);
        }
    }

    /// A worker finished an offloaded job: its result becomes the parked response. A result
    /// for a connection gone, or answered already (504), is dropped.
    pub(super) fn finish_job(&mut self, done: Done) {
        let Some(parked) = self
            .conns
            .get_mut(&done.token)
            .and_then(|conn| conn.parked_mut())
            .filter(|parked| parked.job == Some(done.ticket))
        else {
            log::debug!("the result of a job nobody waits for is dropped");
            return;
        };
        parked.job = None;
        let placeholder = std::mem::replace(&mut parked.response, Response::new(Status::OK));
        parked.response = match done.response {
            Some(response) => {
                self.stats.offload_done += 1;
                response.with_headers_of(placeholder)
            }
            None => {
                self.stats.offload_panicked += 1;
                log::warn!(
                    "{}: an offloaded job panicked",
                    Printable(&parked.exchange.path)
                );
                Response::error(Status::INTERNAL_SERVER_ERROR, "the job failed")
            }
        };
        if parked.awaiting == 0 {
            self.release(done.token, false);
        }
    }

    /// Sends a parked response, a 504 if its offloaded job is `late`, a 503 if a publish failed
    /// or the acknowledgements are `late`,
    /// and goes on with pipelined requests.
    pub(super) fn release(&mut self, token: Token, late: bool) {
        let Some(parked) = self
            .conns
            .get_mut(&token)
            .and_then(|conn| conn.take_parked())
        else {
            return;
        };
        if late {
            // Acknowledgements that come after this must not count for a later response.
            self.hub.forget_acks(token);
        }
        let response = if late && parked.job.is_some() {
            self.stats.offload_timed_out += 1;
            Response::error(Status::GATEWAY_TIMEOUT, "the job took too long")
        } else if parked.failed || late {
            // Not confirmed is not "not published": a Redis that hangs (rather than refusing)
            // may still run the `XADD` when it resumes, and its subscribers then get the event.
            PublishError::Unavailable(
                "Redis did not confirm the event in time (if Redis took it, it is still delivered)"
                    .into(),
            )
            .into_response()
        } else {
            parked.response
        };
        self.respond(token, response, parked.exchange);
        self.process_requests(token);
    }

    /// Copies the gauges that are cheap to read into the stats.
    pub(super) fn refresh_gauges(&mut self) {
        self.stats.connections = self.conns.len() as u64;
        self.stats.channels = self.hub.channel_count() as u64;
        self.stats.history_bytes = self.hub.history_bytes() as u64;
        self.stats.history_evictions = self.hub.history_evictions();
        self.stats.subscribers = self.hub.subscriptions() as u64;
        self.stats.events_published = self.hub.published();
        self.stats.sessions = self.sessions.len() as u64;
        self.stats.rate_limits_refused = self.sessions.refused();
    }
}
