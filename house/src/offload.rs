//! Blocking work off the loop: a closing handler returns a [`Deferred`] job, a small bounded
//! pool of worker threads runs it, and its result becomes the response. The loop never waits:
//! the connection is parked (like a response waiting for Redis's acknowledgements) until the
//! worker hands the result back through the loop's waker.

use std::fmt;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use mio::{Token, Waker};

use crate::config::Config;
use crate::response::{IntoResponse, Job, Response};
use crate::route::Ctx;

/// A job to run off the event loop, whose result is the response: what a closing handler
/// returns for a database query, a slow HTTP call, anything that blocks.
///
/// The job runs on one of the server's worker threads (see
/// [`OFFLOAD_WORKERS`](crate::limits::OFFLOAD_WORKERS)), so every stream keeps flowing
/// meanwhile; the connection answers nothing else until it is done, and pipelined requests
/// are answered after it, in order. A job may publish through a [`Handle`](crate::Handle)
/// (put one in the application state); those events go out before its response.
///
/// - The queue is full ([`OFFLOAD_QUEUE`](crate::limits::OFFLOAD_QUEUE) jobs wait): `503
///   Service Unavailable` with `Retry-After: 1`, and the job never runs.
/// - The job takes longer than [`OFFLOAD_DEADLINE`](crate::limits::OFFLOAD_DEADLINE): `504
///   Gateway Timeout`; the job runs on (a thread cannot be stopped) and its result is dropped.
/// - The job panics: `500 Internal Server Error`; the worker lives on.
///
/// Headers added on the way out (a new session's cookie) are added to the job's response.
/// The [test client](crate::test::Client) runs jobs inline.
///
/// # Examples
/// ```
/// use house::{Deferred, Route};
///
/// let report = Route::closing("/report", |ctx| {
///     let who = ctx.request.param("who").unwrap_or("nobody").to_owned();
///     // The closure owns what it needs: it runs later, on another thread.
///     ctx.offload(move || {
///         std::thread::sleep(std::time::Duration::from_millis(10)); // a slow query
///         format!("report for {who}")
///     })
/// });
/// let health = Route::closing("/health", |_| Deferred::new(|| "ok"));
/// # let _ = (report, health);
/// ```
pub struct Deferred {
    job: Job,
}

impl Deferred {
    /// A job whose result (anything [`IntoResponse`]) answers the request.
    pub fn new<R, F>(job: F) -> Deferred
    where
        R: IntoResponse,
        F: FnOnce() -> R + Send + 'static,
    {
        Deferred {
            job: Job::new(Box::new(move || job().into_response())),
        }
    }

    /// Runs the job here; `None` if it panicked.
    #[cfg(test)]
    fn run(self) -> Option<Response> {
        self.job.run()
    }
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Deferred")
    }
}

impl IntoResponse for Deferred {
    fn into_response(self) -> Response {
        Response::from_deferred(self.job)
    }
}

impl Ctx<'_> {
    /// `job` as a [`Deferred`] response: return it from a closing handler to run `job` off
    /// the event loop. The same as [`Deferred::new`].
    pub fn offload<R, F>(&self, job: F) -> Deferred
    where
        R: IntoResponse,
        F: FnOnce() -> R + Send + 'static,
    {
        Deferred::new(job)
    }
}

/// A job on its way to a worker.
struct Task {
    token: Token,
    ticket: u64,
    job: Job,
}

/// A job's result on its way back to the loop.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) token: Token,
    pub(crate) ticket: u64,
    /// The response, or `None` if the job panicked.
    pub(crate) response: Option<Response>,
}

/// The pool is full: the job was not taken.
#[derive(Debug)]
pub(crate) struct Full;

/// The worker threads and the channels to and from them. Workers start with the first job.
pub(crate) struct Pool {
    workers: usize,
    capacity: usize,
    waker: Arc<Waker>,
    tasks: Option<Sender<Task>>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    /// Jobs handed out whose result the loop has not taken back: queued, running, or run
    /// past their deadline.
    pending: usize,
    next_ticket: u64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(config: &Config, waker: Arc<Waker>) -> Pool {
        let workers = config.offload_workers().max(1);
        let (done_tx, done_rx) = mpsc::channel();
        Pool {
            workers,
            capacity: workers.saturating_add(config.offload_queue()),
            waker,
            tasks: None,
            done_tx,
            done_rx,
            pending: 0,
            next_ticket: 0,
        }
    }

    /// Whether [`submit`](Self::submit) would take one more job (unless no worker thread
    /// can be started at all).
    pub(crate) fn has_room(&self) -> bool {
        self.pending < self.capacity
    }

    /// Hands `job` to a worker for `token`; its ticket names the result. A job that a worker
    /// could not take at once, with the queue full (or no worker thread to be had), is refused.
    pub(crate) fn submit(&mut self, token: Token, job: Job) -> Result<u64, Full> {
        if self.pending >= self.capacity {
            return Err(Full);
        }
        let tasks = match &self.tasks {
            Some(tasks) => tasks,
            None => match self.start() {
                Ok(tasks) => self.tasks.insert(tasks),
                Err(err) => {
                    log::warn!("no offload worker could start: {err}");
                    return Err(Full);
                }
            },
        };
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        tasks.send(Task { token, ticket, job }).map_err(|_| Full)?;
        self.pending += 1;
        Ok(ticket)
    }

    /// A result a worker handed back, if any.
    pub(crate) fn try_recv(&mut self) -> Option<Done> {
        let done = self.done_rx.try_recv().ok()?;
        self.pending = self.pending.saturating_sub(1);
        Some(done)
    }

    /// Starts the workers; at least one must start.
    fn start(&self) -> io::Result<Sender<Task>> {
        let (tasks, inbox) = mpsc::channel::<Task>();
        let inbox = Arc::new(Mutex::new(inbox));
        let mut started = 0;
        let mut last_err = None;
        for n in 0..self.workers {
            let inbox = inbox.clone();
            let done = self.done_tx.clone();
            let waker = self.waker.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("house-offload-{n}"))
                .spawn(move || work(&inbox, &done, &waker));
            match spawned {
                Ok(_) => started += 1,
                Err(err) => last_err = Some(err),
            }
        }
        match (started, last_err) {
            (0, Some(err)) => Err(err),
            _ => Ok(tasks),
        }
    }
}

/// A worker: takes jobs until the server (the sender) is gone, runs each, hands its result
/// back and wakes the loop.
fn work(inbox: &Mutex<Receiver<Task>>, done: &Sender<Done>, waker: &Waker) {
    loop {
        // The lock is held only while waiting for a task, never while running one.
        let task = inbox.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Task { token, ticket, job }) = task else {
            return;
        };
        let response = job.run();
        if done
            .send(Done {
                token,
                ticket,
                response,
            })
            .is_err()
        {
            return;
        }
        let _ = waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Status;

    #[test]
    fn a_job_runs_and_a_panic_is_caught() {
        let response = Deferred::new(|| (Status::CREATED, "made")).run();
        assert_eq!(response.map(|r| r.status()), Some(Status::CREATED));
        let panicked = Deferred::new(|| -> &str { panic!("boom") }).run();
        assert!(panicked.is_none());
    }
}
