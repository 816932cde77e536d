//! The client core every adapter drives: a [`Session`] behind a mutex, plus the
//! routing of its outputs. Adapters move bytes and time through the methods
//! below; every protocol decision stays in `zk-proto`.
//!
//! # The driver contract
//!
//! An adapter runs three kinds of I/O, none of which may wait on another:
//!
//! * **the driver** loops on [`Shared::poll_driver`]: it opens and closes
//!   transports as told, and sleeps until the returned deadline *or* until its
//!   waker is woken. The core wakes it whenever the session's next deadline moves
//!   earlier than the one the driver sleeps on (after any input, command or
//!   timeout), when there is transport work, and when the client is finished.
//!   Timeouts are handled inside `poll_driver`, so a driver never calls the
//!   session's clock logic itself.
//! * **a reader** per transport feeds [`Shared::input`] and reports the end with
//!   [`Shared::disconnected`].
//! * **a writer** per transport takes bytes with [`Shared::poll_write`] and writes
//!   them. A stuck write blocks only that writer: reads, timers, pings, request
//!   timeouts and close keep running, and the session drops the connection at its
//!   read timeout. Bytes not yet taken stay in the session, which bounds them
//!   (`Config::max_outbound`) and coalesces everything submitted meanwhile into one
//!   write.
//!
//! # Where things are
//!
//! This file holds [`Shared`], the session behind its lock, the drain that
//! routes the session's outputs after every call, and the driver's side. Its
//! parts: `calls.rs` (the call table: reply slots and watch queues),
//! `states.rs` (state streams and listeners), `tracker.rs` (following the
//! ensemble's config), `attempts.rs` (why connecting failed), `commands.rs`
//! (what the client handles ask of the core) and `handoff.rs` (each
//! transport's writer, and the socket halves adapters lend the core). The
//! first four know nothing of `Shared`; `commands.rs` and `handoff.rs` add
//! methods to it. Above the core, never used by it: `reader.rs` and
//! `blocking.rs` (callers reading their own replies) and `wait.rs` (a call's
//! wait for its reply).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use zk_proto::{Action, ConnId, Event, HostAddr, Session, UsageError};

use crate::clock::Clock;
use crate::id_map::IdMap;
use crate::telemetry::Telemetry;

mod attempts;
mod calls;
mod commands;
mod handoff;
mod states;
#[cfg(test)]
mod tests;
mod tracker;

use attempts::Attempts;
use calls::Calls;
pub use calls::WatchMessage;
pub(crate) use calls::{Registered, Reply, DEFAULT_WATCH_BACKLOG};
use handoff::Writer;
pub use handoff::{BlockingRead, TryWrite};
pub(crate) use handoff::{CallerRead, WaitReader};
use states::States;
use tracker::Tracker;

struct Inner {
    session: Session,
    /// Reply slots and watch queues.
    calls: Calls,
    /// State streams and listeners.
    states: States,
    io: VecDeque<Io>,
    writers: IdMap<ConnId, Writer>,
    driver_waker: Option<Waker>,
    /// The deadline the driver sleeps until (`None`: no timer).
    driver_deadline: Option<Instant>,
    detached: bool,
    wakers: Vec<Waker>,
    /// Following the ensemble's own config (Curator's EnsembleTracker), when asked.
    tracker: Option<Tracker>,
    /// The latest connection attempts, and why the latest failed.
    attempts: Attempts,
    /// The drain runs after a submit (whose bytes may wait, see `drain`).
    submitting: bool,
    /// Spans and metrics (see `telemetry.rs`).
    tele: Telemetry,
}

/// Transport work for the adapter's driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Open a transport to `host`, then report [`Shared::connected`] or
    /// [`Shared::connect_failed`]; run a reader and a writer on it.
    Connect {
        /// The id to report with.
        conn: ConnId,
        /// Where (the adapter resolves the name, trying every address).
        host: HostAddr,
        /// How long one attempt may take (the session gives up after this anyway).
        timeout: Duration,
    },
    /// Close this transport now; nothing more may be read or written on it.
    Disconnect(ConnId),
}

/// What [`Shared::poll_driver`] tells the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverPoll {
    /// Keep going; wake at `deadline` (or when the waker is woken).
    Run {
        /// The next deadline, `None` for none.
        deadline: Option<Instant>,
    },
    /// Every handle is gone and the session is over: close all transports and exit.
    Finished,
}

/// Live objects of one client, for leak checks: every count returns to zero
/// once the client is closed and dropped and its driver has exited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    /// Requests submitted and not yet completed.
    pub calls: usize,
    /// Watch registrations with a queue in the core.
    pub watch_queues: usize,
    /// Watch registrations the session holds (restored on every reconnect).
    pub session_watches: usize,
    /// State streams still referenced by a reader.
    pub state_queues: usize,
    /// Transports the core expects a writer for.
    pub writers: usize,
    /// Transports (sockets) the adapter holds open.
    pub transports: usize,
    /// Running drivers (0 or 1).
    pub drivers: usize,
}

/// The shared state between the adapter's I/O and the client handles.
pub struct Shared {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    transports: AtomicUsize,
    drivers: AtomicUsize,
    /// What the adapter keeps with the client (its connector, for four-letter words).
    adapter_data: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
    runtime: std::sync::OnceLock<Arc<dyn crate::runtime::Runtime>>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Leaves the core: releases the lock, then ends the spans that finished and wakes
/// the tasks waiting on what changed. Both happen outside the lock, so a woken task
/// or a span's subscriber may call straight back in; spans end before their callers
/// wake (see `Telemetry::ended`).
fn unlock_and_wake(mut g: MutexGuard<'_, Inner>) {
    let wakers = std::mem::take(&mut g.wakers);
    let ended = g.tele.take_ended();
    drop(g);
    drop(ended);
    for w in wakers {
        w.wake();
    }
}

impl Inner {
    /// Handles every deadline of the session that has passed by `now`.
    fn run_due(&mut self, now: Instant) {
        // A timeout can schedule another that is already due (an attempt that
        // fails at once); a few rounds settle it, a stuck one is retried next poll.
        for _ in 0..8 {
            match self.session.poll_timeout() {
                Some(t) if t <= now => {
                    self.session.handle_timeout(now);
                    self.drain(now);
                }
                _ => break,
            }
        }
    }

    /// Drains every output of the session except transmits (the writers pull
    /// those), then wakes whoever must act on what changed.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.session.poll_action() {
                progressed = true;
                match a {
                    Action::Connect { conn, host } => {
                        self.tele.connecting(conn, &host);
                        self.writers.insert(conn, Writer::default());
                        self.attempts.connecting(conn, &host);
                        let timeout = self.session.connect_timeout();
                        self.io.push_back(Io::Connect {
                            conn,
                            host,
                            timeout,
                        });
                    }
                    Action::Disconnect { conn } => {
                        if let Some(w) = self.writers.remove(&conn) {
                            self.wakers.extend(w.waker);
                        }
                        self.io.push_back(Io::Disconnect(conn));
                    }
                    _ => {}
                }
            }
            while let Some(e) = self.session.poll_event() {
                progressed = true;
                self.route(e, now);
            }
            if !progressed {
                break;
            }
        }
        if self.session.outstanding() == 0 {
            self.session.shrink_idle();
        }
        let writers = &self.writers;
        self.tele
            .sample(&self.session, || handoff::queued_bytes(writers));
        self.hand_off_transmits(now);
        let wake_driver = !self.io.is_empty()
            || self.finished()
            || match (self.session.poll_timeout(), self.driver_deadline) {
                (Some(t), Some(sleeping)) => t < sleeping,
                (Some(_), None) => true,
                (None, _) => false,
            };
        if wake_driver {
            if let Some(w) = self.driver_waker.take() {
                self.wakers.push(w);
            }
        }
    }

    fn finished(&self) -> bool {
        self.detached && self.session.state().is_terminal() && self.io.is_empty()
    }

    fn route(&mut self, e: Event, now: Instant) {
        match e {
            Event::RequestTraced {
                id,
                xid,
                request_bytes,
                response_bytes,
            } => self
                .tele
                .traced(&self.session, id, xid, request_bytes, response_bytes),
            Event::Completed { id, result } => {
                self.tele.completed(&self.session, id, &result, now);
                if let Some(result) = self.calls.complete(id, result, &mut self.wakers) {
                    // No caller waits for it: the tracker's read, if any.
                    if let Some(t) = self.tracker.as_mut().filter(|t| t.owns_call(id)) {
                        t.reply(&mut self.session, result, now);
                    }
                }
            }
            Event::Watch { watcher, .. }
                if self.tracker.as_ref().is_some_and(|t| t.owns_watch(watcher)) =>
            {
                // The config changed: read it again (with a new watch).
                if let Some(t) = &mut self.tracker {
                    t.watch_ended(&mut self.session, now);
                }
            }
            Event::WatcherRemoved { watcher, .. }
                if self.tracker.as_ref().is_some_and(|t| t.owns_watch(watcher)) =>
            {
                if let Some(t) = &mut self.tracker {
                    t.watch_ended(&mut self.session, now);
                }
            }
            Event::Watch { watcher, event } => {
                let overflowed = self
                    .calls
                    .fire(watcher, event, &self.tele, &mut self.wakers);
                if overflowed {
                    tracing::warn!(
                        watcher = ?watcher,
                        backlog = self.calls.watch_backlog(),
                        "a persistent watch's reader fell behind its backlog; the watch is removed"
                    );
                    self.session.remove_watcher(watcher, now);
                }
            }
            Event::WatcherRemoved { watcher, reason } => {
                self.calls.removed(watcher, reason, &mut self.wakers);
            }
            Event::StateChanged { from, to } => {
                tracing::debug!(state = ?to, "session state");
                self.tele.state_changed(&self.session, from, to);
                if to.is_connected() {
                    self.attempts.connected();
                    if let Some(t) = &mut self.tracker {
                        t.read(&mut self.session, now);
                    }
                }
                self.states.changed(to, &mut self.wakers);
            }
            Event::Disconnected { conn, reason } => {
                tracing::info!(conn = conn.0, ?reason, "connection dropped");
                self.tele.disconnected(conn, &reason);
                self.attempts.ended(conn, &reason, &self.session);
            }
            Event::SaslFailed { reason } => {
                tracing::warn!(%reason, "SASL authentication failed");
                // The session's reason names the host already (it has let go of it by now).
                self.attempts.sasl_failed(&reason);
            }
            Event::RestoreFailed { code } => {
                // Its watchers were told one by one (WatcherRemoved, NotSet).
                tracing::warn!(%code, "the server rejected the watch restore after a reconnect");
            }
            _ => {}
        }
    }

    fn on_finish(&mut self) {
        // Nothing can reach these any more: end them so their readers see the end.
        self.states.finish(&mut self.wakers);
        self.tele.finish();
    }
}

impl Shared {
    /// A core around a new session, on `clock`.
    pub fn new(session: Session, clock: Arc<dyn Clock>) -> Arc<Shared> {
        let s = Arc::new(Shared {
            inner: Mutex::new(Inner {
                session,
                calls: Calls::default(),
                states: States::default(),
                io: VecDeque::new(),
                writers: IdMap::default(),
                driver_waker: None,
                driver_deadline: None,
                detached: false,
                wakers: Vec::new(),
                tracker: None,
                attempts: Attempts::default(),
                submitting: false,
                tele: Telemetry::default(),
            }),
            clock,
            transports: AtomicUsize::new(0),
            drivers: AtomicUsize::new(0),
            adapter_data: std::sync::OnceLock::new(),
            runtime: std::sync::OnceLock::new(),
        });
        s.with(|_, _| {});
        s
    }

    /// Follows the ensemble's configuration: reads `/zookeeper/config` with a watch
    /// whenever connected and after each change, and applies each new member list
    /// like [`set_hosts`](Shared::set_hosts).
    pub fn follow_ensemble(&self) {
        self.with(|g, now| {
            let t = g.tracker.get_or_insert_with(Tracker::default);
            t.read(&mut g.session, now);
        })
    }

    /// Replaces the host list (the Java client's `updateServerList`): a share of
    /// clients moves to new members so the load spreads (see `Session::update_hosts`).
    pub fn set_hosts(&self, hosts: Vec<HostAddr>) -> Result<(), UsageError> {
        self.with(|g, now| g.session.update_hosts(hosts, now))
    }

    /// Keeps a value of the adapter's with the client, once (later calls are
    /// ignored): zk-tokio and zk-smol keep their connector here, so that
    /// four-letter words go over the same transport (TLS) as the session.
    pub fn set_adapter_data(&self, data: Arc<dyn std::any::Any + Send + Sync>) {
        let _ = self.adapter_data.set(data);
    }

    /// The adapter's timer and four-letter words for this client (see
    /// [`Runtime`](crate::runtime::Runtime)); the first registration stays.
    pub fn set_runtime(&self, rt: Arc<dyn crate::runtime::Runtime>) {
        let _ = self.runtime.set(rt);
    }

    /// What [`set_runtime`](Shared::set_runtime) registered.
    pub fn runtime(&self) -> Option<Arc<dyn crate::runtime::Runtime>> {
        self.runtime.get().cloned()
    }

    /// What [`set_adapter_data`](Shared::set_adapter_data) kept.
    pub fn adapter_data(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        self.adapter_data.get().cloned()
    }

    /// The clock the core runs on (drivers sleep against it).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner, Instant) -> R) -> R {
        let mut g = lock(&self.inner);
        // Read the clock under the lock: the session's time then never goes backwards,
        // however the threads calling in are scheduled.
        let now = self.clock.now();
        let r = f(&mut g, now);
        g.drain(now);
        unlock_and_wake(g);
        r
    }

    // ----------------------------------------------------- driver side

    /// The driver's one entry point: handles any deadline that has passed, moves
    /// the transport work queued so far into `io`, and registers `waker` to be
    /// woken when there is more, when the next deadline moves earlier than the
    /// one returned, or when the client is finished.
    pub fn poll_driver(&self, io: &mut Vec<Io>, waker: &Waker) -> DriverPoll {
        let mut g = lock(&self.inner);
        let now = self.clock.now();
        g.run_due(now);
        g.drain(now);
        io.extend(std::mem::take(&mut g.io));
        let finished = g.finished();
        let poll = if finished {
            g.on_finish();
            g.driver_waker = None;
            DriverPoll::Finished
        } else {
            let deadline = g.session.poll_timeout();
            g.driver_deadline = deadline;
            match &g.driver_waker {
                Some(w) if w.will_wake(waker) => {}
                _ => g.driver_waker = Some(waker.clone()),
            }
            DriverPoll::Run { deadline }
        };
        unlock_and_wake(g);
        poll
    }

    /// The transport connected.
    pub fn connected(&self, conn: ConnId) {
        self.with(|g, now| g.session.handle_connected(conn, now))
    }

    /// Why the transport `conn` failed (a refused connect, a TLS handshake error
    /// or alert, a timeout, a read error). Kept as
    /// [`Client::last_connect_error`](crate::Client::last_connect_error) if `conn`
    /// is an attempt that has not reached a session (errors of an established
    /// connection, or of an attempt the session already gave up on, are ignored),
    /// so adapters may report every transport error. Call before
    /// [`connect_failed`](Shared::connect_failed) or
    /// [`disconnected`](Shared::disconnected). Name the host in `cause`; never put
    /// a secret in it.
    pub fn report_connect_error(&self, conn: ConnId, cause: String) {
        lock(&self.inner).attempts.report(conn, cause);
    }

    /// The cause of the latest failed connection attempt (see
    /// [`report_connect_error`](Shared::report_connect_error)).
    pub fn last_connect_error(&self) -> Option<String> {
        lock(&self.inner).attempts.last_error()
    }

    /// The transport could not connect.
    pub fn connect_failed(&self, conn: ConnId) {
        self.with(|g, now| {
            g.writers.remove(&conn);
            g.session.handle_connect_failed(conn, now)
        })
    }

    /// Bytes arrived.
    pub fn input(&self, conn: ConnId, data: &[u8]) {
        self.with(|g, now| {
            g.tele.received(data.len());
            g.session.handle_input(conn, data, now)
        })
    }

    /// The transport closed (EOF or error, reading or writing).
    pub fn disconnected(&self, conn: ConnId) {
        self.with(|g, now| {
            if let Some(w) = g.writers.remove(&conn) {
                g.wakers.extend(w.waker);
            }
            g.session.handle_disconnected(conn, now)
        })
    }

    /// A guard the adapter holds for each open transport (leak accounting).
    pub fn transport_guard(self: &Arc<Self>) -> CountGuard {
        self.transports.fetch_add(1, Ordering::SeqCst);
        CountGuard {
            shared: self.clone(),
            which: Counter::Transport,
        }
    }

    /// A guard the driver holds while it runs (leak accounting).
    pub fn driver_guard(self: &Arc<Self>) -> CountGuard {
        self.drivers.fetch_add(1, Ordering::SeqCst);
        CountGuard {
            shared: self.clone(),
            which: Counter::Driver,
        }
    }

    /// When the live connection last brought bytes (see [`Session::last_received`]).
    pub fn last_received(&self) -> Option<Instant> {
        lock(&self.inner).session.last_received()
    }

    /// Counts of live objects (see [`LiveCounts`]).
    pub fn live_counts(&self) -> LiveCounts {
        let g = lock(&self.inner);
        LiveCounts {
            calls: g.calls.calls(),
            watch_queues: g.calls.watch_queues(),
            session_watches: g.session.watch_count(),
            state_queues: g.states.live_streams(),
            writers: g.writers.len(),
            transports: self.transports.load(Ordering::SeqCst),
            drivers: self.drivers.load(Ordering::SeqCst),
        }
    }
}

enum Counter {
    Transport,
    Driver,
}

/// Decrements its count when dropped (see [`Shared::transport_guard`]).
pub struct CountGuard {
    shared: Arc<Shared>,
    which: Counter,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        let c = match self.which {
            Counter::Transport => &self.shared.transports,
            Counter::Driver => &self.shared.drivers,
        };
        c.fetch_sub(1, Ordering::SeqCst);
    }
}
