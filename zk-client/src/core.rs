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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::{
    Action, ConnId, Event, HostAddr, RemovalReason, Request, RequestId, Response, Session,
    SessionState, Submitted, UsageError, WatchedEvent, WatcherId, ZkError,
};

use crate::clock::Clock;
use crate::reader::{ConnReader, LentRead};
use crate::slot::{Queue, Slot};
use crate::telemetry::{self, Telemetry};

pub(crate) type Reply = Result<Response, ZkError>;

/// States a `StateStream` keeps unread before it drops the oldest: a stream held
/// but never read stays small however long the connection flaps.
const STATE_QUEUE_CAP: usize = 64;
/// State changes queued for the listener thread at most: past it (a listener that
/// never returns), further changes are dropped with a warning.
pub(crate) const LISTENER_BACKLOG: usize = 1024;
/// Default events a persistent watch keeps unread (`ClientBuilder::watch_backlog`).
pub(crate) const DEFAULT_WATCH_BACKLOG: usize = 65_536;
/// A submitted call's reply slot, and its watch registration if it asked for one.
pub(crate) type Registered = (
    Arc<Slot<Reply>>,
    Option<(WatcherId, Arc<Queue<WatchMessage>>)>,
);

/// What a watch registration delivers: events, then an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    /// The watch fired.
    Event(WatchedEvent),
    /// The registration ended without (more) events.
    Removed(RemovalReason),
    /// A persistent watch's reader fell more than the backlog behind: the watch
    /// was removed, and events after the ones queued were not kept.
    Overflowed,
}

type Listener = Arc<dyn Fn(SessionState) + Send + Sync>;

/// A watch registration's queue, as the core routes to it.
pub(crate) struct WatchEntry {
    pub(crate) queue: Arc<Queue<WatchMessage>>,
    /// One-shot registrations end with their first event.
    oneshot: bool,
}

#[derive(Default)]
struct Writer {
    waker: Option<Waker>,
    /// Bytes for this transport that came out of the session while polling for another.
    pending: VecDeque<Bytes>,
    /// The socket itself, when the adapter lends it for writes from the caller's thread.
    direct: Option<Arc<dyn TryWrite>>,
    /// The writer task holds bytes it has not finished writing: nothing may be
    /// written past them.
    in_flight: bool,
    /// The socket's read side, when the adapter lends it: callers waiting for a
    /// reply read it themselves (see `reader.rs`).
    reader: Option<Arc<ConnReader>>,
    /// The socket's read side for blocked callers (see [`crate::blocking::BlockingRead`]).
    blocking: Option<Arc<dyn crate::blocking::BlockingRead>>,
}

impl Writer {
    /// Bytes may go straight to the socket from the thread at hand.
    fn direct_idle(&self) -> bool {
        self.direct.is_some() && !self.in_flight && self.pending.is_empty()
    }
}

/// Who may read the session's connection for a caller about to wait.
pub(crate) enum WaitReader {
    None,
    Async(Arc<ConnReader>),
    Blocking(Arc<dyn crate::blocking::BlockingRead>),
}

/// A transport the core may write to without blocking, from whichever thread
/// submits a request (see [`Shared::lend_socket`]).
pub trait TryWrite: Send + Sync + 'static {
    /// Writes what the socket takes now: the count written, or `WouldBlock`.
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize>;
}

struct Inner {
    session: Session,
    calls: IdMap<RequestId, Arc<Slot<Reply>>>,
    watchers: IdMap<WatcherId, WatchEntry>,
    state_queues: Vec<Arc<Queue<SessionState>>>,
    listeners: Vec<(u64, Listener)>,
    next_listener: u64,
    /// Listener calls run on their own thread, so a listener may call the client
    /// (even blocking calls) without stalling the reader that would answer it.
    listener_tx: Option<mpsc::SyncSender<(Listener, SessionState)>>,
    io: VecDeque<Io>,
    writers: IdMap<ConnId, Writer>,
    driver_waker: Option<Waker>,
    /// The deadline the driver sleeps until (`None`: no timer).
    driver_deadline: Option<Instant>,
    detached: bool,
    wakers: Vec<Waker>,
    /// Following the ensemble's own config (Curator's EnsembleTracker), when asked.
    tracker: Option<Tracker>,
    /// See [`DEFAULT_WATCH_BACKLOG`].
    watch_backlog: usize,
    /// The hosts of the latest connection attempts not yet connected (a few; for
    /// naming the host in a failed attempt's cause).
    attempts: VecDeque<(ConnId, HostAddr)>,
    /// The cause of the latest failed connection attempt, and which attempt.
    last_connect_error: Option<(ConnId, String)>,
    /// Why SASL was refused (host and reason), until the next restart: what
    /// `connect()` reports for an AuthFailed session.
    sasl_failure: Option<String>,
    /// The drain runs after a submit (whose bytes may wait, see `drain`).
    submitting: bool,
    /// Spans and metrics (see `telemetry.rs`).
    tele: Telemetry,
}

/// A map keyed by the session's own counters (request, watcher and connection
/// ids: never chosen by a peer), hashed with one multiply instead of SipHash, which
/// every call paid for twice (insert and remove) and every wait once.
pub(crate) type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// How many attempts' hosts the core remembers.
const ATTEMPTS_KEPT: usize = 8;

/// The ensemble tracker's one outstanding read and its watch.
#[derive(Default)]
struct Tracker {
    call: Option<RequestId>,
    watcher: Option<WatcherId>,
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
                        if self.attempts.len() >= ATTEMPTS_KEPT {
                            self.attempts.pop_front();
                        }
                        self.attempts.push_back((conn, host.clone()));
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
        self.tele.sample(&self.session, || {
            writers
                .values()
                .flat_map(|w| &w.pending)
                .map(Bytes::len)
                .sum()
        });
        let submitting = std::mem::take(&mut self.submitting);
        let mut deferred = false;
        if self.session.wants_transmit() {
            // Bytes are written from the thread at hand when the socket is lent and
            // its writer idle, saving the hand-off to the writer. A request made
            // while two or more others are in flight on such a socket waits
            // instead: whoever reads the next reply writes it (the server is still
            // busy with the other meanwhile), so a burst of requests goes out in
            // one write, with no wake-up at all.
            let up = self.session.connection();
            let direct = up
                .and_then(|c| self.writers.get(&c))
                .is_some_and(Writer::direct_idle);
            if submitting && direct && self.session.outstanding() > 2 {
                deferred = true;
            } else {
                self.write_direct(now);
            }
        }
        if deferred {
        } else if self.session.wants_transmit() {
            for w in self.writers.values_mut() {
                self.wakers.extend(w.waker.take());
            }
        } else {
            for w in self.writers.values_mut() {
                if !w.pending.is_empty() {
                    self.wakers.extend(w.waker.take());
                }
            }
        }
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
                if let Some(slot) = self.calls.remove(&id) {
                    self.wakers.extend(slot.fill(result));
                } else if self.tracker.as_ref().is_some_and(|t| t.call == Some(id)) {
                    self.tracker_reply(result, now);
                }
            }
            Event::Watch { watcher, .. }
                if self
                    .tracker
                    .as_ref()
                    .is_some_and(|t| t.watcher == Some(watcher)) =>
            {
                // The config changed: read it again (with a new watch).
                if let Some(t) = &mut self.tracker {
                    t.watcher = None;
                }
                self.tracker_read(now);
            }
            Event::WatcherRemoved { watcher, .. }
                if self
                    .tracker
                    .as_ref()
                    .is_some_and(|t| t.watcher == Some(watcher)) =>
            {
                if let Some(t) = &mut self.tracker {
                    t.watcher = None;
                }
                self.tracker_read(now);
            }
            Event::Watch { watcher, event } => {
                let (end, overflow) = match self.watchers.get(&watcher) {
                    Some(w) if !w.oneshot && w.queue.len() >= self.watch_backlog => {
                        self.wakers.extend(w.queue.push(WatchMessage::Overflowed));
                        (true, true)
                    }
                    Some(w) => {
                        self.tele.watch_delivered();
                        self.wakers.extend(w.queue.push(WatchMessage::Event(event)));
                        (w.oneshot, false)
                    }
                    None => (false, false),
                };
                if end {
                    if let Some(w) = self.watchers.remove(&watcher) {
                        self.wakers.extend(w.queue.close());
                    }
                }
                if overflow {
                    tracing::warn!(
                        watcher = ?watcher,
                        backlog = self.watch_backlog,
                        "a persistent watch's reader fell behind its backlog; the watch is removed"
                    );
                    self.session.remove_watcher(watcher, now);
                }
            }
            Event::WatcherRemoved { watcher, reason } => {
                if let Some(w) = self.watchers.remove(&watcher) {
                    self.wakers
                        .extend(w.queue.push(WatchMessage::Removed(reason)));
                    self.wakers.extend(w.queue.close());
                }
            }
            Event::StateChanged { from, to } => {
                tracing::debug!(state = ?to, "session state");
                self.tele.state_changed(&self.session, from, to);
                if to.is_connected() {
                    // The attempt that got here succeeded; older ones are over.
                    // (Its memory too: an idle client keeps none.)
                    self.attempts = VecDeque::new();
                    self.tracker_read(now);
                }
                // A stream nobody holds any more is dropped here, not fed.
                self.state_queues.retain(|q| Arc::strong_count(q) > 1);
                for q in &self.state_queues {
                    self.wakers.extend(q.push(to));
                    if to == SessionState::Closed {
                        self.wakers.extend(q.close());
                    }
                }
                if to == SessionState::Closed {
                    self.state_queues.clear();
                }
                if let Some(tx) = &self.listener_tx {
                    for (_, l) in &self.listeners {
                        if let Err(mpsc::TrySendError::Full(_)) = tx.try_send((l.clone(), to)) {
                            // A listener that never returns must not grow memory.
                            tracing::warn!(
                                state = ?to,
                                backlog = LISTENER_BACKLOG,
                                "state listeners are this far behind (one is stuck?): change dropped"
                            );
                        }
                    }
                }
            }
            Event::Disconnected { conn, reason } => {
                tracing::info!(conn = conn.0, ?reason, "connection dropped");
                self.tele.disconnected(conn, &reason);
                self.attempt_ended(conn, &reason);
            }
            Event::SaslFailed { reason } => {
                tracing::warn!(%reason, "SASL authentication failed");
                // The session's reason names the host already (it has let go of it by now).
                let cause = reason.clone();
                self.sasl_failure = Some(cause.clone());
                self.last_connect_error = Some((ConnId(u64::MAX), cause));
            }
            Event::RestoreFailed { code } => {
                // Its watchers were told one by one (WatcherRemoved, NotSet).
                tracing::warn!(%code, "the server rejected the watch restore after a reconnect");
            }
            _ => {}
        }
    }

    /// Reads the ensemble's config with a watch, unless a read or a watch is already
    /// out (or the client does not follow the ensemble).
    fn tracker_read(&mut self, now: Instant) {
        let Some(t) = &self.tracker else { return };
        if t.call.is_some() || t.watcher.is_some() || !self.session.state().is_connected() {
            return;
        }
        match self.session.submit_get_config(true, now) {
            Ok(Submitted { id, watcher }) => {
                if let Some(t) = &mut self.tracker {
                    t.call = Some(id);
                    t.watcher = watcher;
                }
            }
            Err(e) => tracing::debug!(error = %e, "ensemble tracker: cannot read the config"),
        }
    }

    fn tracker_reply(&mut self, result: Reply, now: Instant) {
        if let Some(t) = &mut self.tracker {
            t.call = None;
        }
        let data = match result {
            Ok(Response::GetData(d)) => d.data.unwrap_or_default(),
            Ok(_) => return,
            Err(e) => {
                // The watch went with the failed read; the next Connected reads again.
                tracing::debug!(error = %e, "ensemble tracker: config read failed");
                return;
            }
        };
        let hosts = crate::ensemble::client_hosts(&String::from_utf8_lossy(&data));
        if hosts.is_empty() {
            return;
        }
        let mut current = self.session.hosts().to_vec();
        let mut new = hosts.clone();
        current.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        new.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        if current != new {
            tracing::info!(?hosts, "ensemble tracker: new member list");
            if let Err(e) = self.session.update_hosts(hosts, now) {
                tracing::warn!(error = %e, "ensemble tracker: cannot apply the member list");
            }
        }
    }

    /// Moves transmits out of the session into the writers' queues.
    fn pull_transmits(&mut self, now: Instant) {
        while let Some(t) = self.session.poll_transmit(now) {
            self.tele.sent(t.data.len());
            if let Some(w) = self.writers.get_mut(&t.conn) {
                w.pending.push_back(t.data);
                self.wakers.extend(w.waker.take());
            }
        }
    }

    /// Writes the session's bytes straight to a lent socket whose writer is idle;
    /// what the socket does not take now stays queued for the writer.
    fn write_direct(&mut self, now: Instant) {
        if !self.writers.values().any(Writer::direct_idle) {
            return;
        }
        while let Some(t) = self.session.poll_transmit(now) {
            self.tele.sent(t.data.len());
            if let Some(w) = self.writers.get_mut(&t.conn) {
                w.pending.push_back(t.data);
            }
        }
        for w in self.writers.values_mut() {
            let Some(sock) = w.direct.clone() else {
                continue;
            };
            if w.in_flight {
                continue;
            }
            while let Some(chunk) = w.pending.front_mut() {
                match sock.try_write(chunk) {
                    Ok(n) if n == chunk.len() => {
                        w.pending.pop_front();
                    }
                    Ok(n) => {
                        // The socket is full: the writer finishes this when it can.
                        bytes::Buf::advance(chunk, n);
                        break;
                    }
                    // WouldBlock, or an error the writer will meet and report.
                    Err(_) => break,
                }
            }
        }
    }

    fn on_finish(&mut self) {
        // Nothing can reach these any more: end them so their readers see the end.
        for q in self.state_queues.drain(..) {
            self.wakers.extend(q.close());
        }
        self.listeners.clear();
        self.listener_tx = None;
        self.tele.finish();
    }

    /// A connection ended: if it was an attempt that never reached a session, its
    /// cause becomes the last connect error, unless the adapter already named a
    /// more precise one for it (a TLS or socket error).
    fn attempt_ended(&mut self, conn: ConnId, reason: &zk_proto::DisconnectReason) {
        use zk_proto::DisconnectReason as R;
        let Some(i) = self.attempts.iter().position(|(c, _)| *c == conn) else {
            return;
        };
        let Some((_, host)) = self.attempts.remove(i) else {
            return;
        };
        if self
            .last_connect_error
            .as_ref()
            .is_some_and(|(c, _)| *c == conn)
        {
            return;
        }
        let why = match reason {
            R::Rebalance => return,
            R::Closed => "the server closed the connection before the ZooKeeper handshake \
                          completed (a plain client on a TLS port? a server refusing sessions?)"
                .to_string(),
            R::ConnectTimeout => format!(
                "no ZooKeeper handshake within the connect timeout of {:?} (a plain client on a \
                 TLS port, a TLS client on a plain port, or a server that does not answer?)",
                self.session.connect_timeout()
            ),
            R::HandshakeTimeout => format!(
                "the server took the connection but did not answer the ZooKeeper handshake in \
                 time (a server still starting, a plain client on a TLS port, a TLS client on a \
                 plain port?); the next handshake may take {:?}",
                self.session.handshake_wait()
            ),
            R::Malformed(e) => format!(
                "the server's handshake reply is not ZooKeeper's protocol ({e}; a plain client on \
                 a TLS port?)"
            ),
            other => format!("{other:?}"),
        };
        self.last_connect_error = Some((conn, format!("{host}: {why}")));
    }
}

impl Shared {
    /// A core around a new session, on `clock`.
    pub fn new(session: Session, clock: Arc<dyn Clock>) -> Arc<Shared> {
        let s = Arc::new(Shared {
            inner: Mutex::new(Inner {
                session,
                calls: IdMap::default(),
                watchers: IdMap::default(),
                state_queues: Vec::new(),
                listeners: Vec::new(),
                next_listener: 0,
                listener_tx: None,
                io: VecDeque::new(),
                writers: IdMap::default(),
                driver_waker: None,
                driver_deadline: None,
                detached: false,
                wakers: Vec::new(),
                tracker: None,
                watch_backlog: DEFAULT_WATCH_BACKLOG,
                attempts: VecDeque::new(),
                last_connect_error: None,
                sasl_failure: None,
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
            if g.tracker.is_none() {
                g.tracker = Some(Tracker::default());
            }
            g.tracker_read(now);
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
        let wakers = std::mem::take(&mut g.wakers);
        let ended = g.tele.take_ended();
        drop(g);
        // Spans end outside the lock, before their callers wake (see `Telemetry::ended`).
        drop(ended);
        for w in wakers {
            w.wake();
        }
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
        let wakers = std::mem::take(&mut g.wakers);
        let ended = g.tele.take_ended();
        drop(g);
        drop(ended);
        for w in wakers {
            w.wake();
        }
        poll
    }

    /// The writer's entry point for `conn`: the next bytes to write, `Ready(None)`
    /// once the transport is to be closed, `Pending` (with the waker registered)
    /// when there is nothing to write yet.
    pub fn poll_write(&self, conn: ConnId, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.with(|g, now| {
            g.pull_transmits(now);
            let Some(w) = g.writers.get_mut(&conn) else {
                return Poll::Ready(None);
            };
            // Asking again means the previous bytes are written.
            w.in_flight = !w.pending.is_empty();
            match w.pending.len() {
                0 => {
                    w.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                1 => Poll::Ready(w.pending.pop_front()),
                _ => {
                    let mut b = BytesMut::new();
                    for chunk in w.pending.drain(..) {
                        b.extend_from_slice(&chunk);
                    }
                    Poll::Ready(Some(b.freeze()))
                }
            }
        })
    }

    /// Lends the core a non-blocking handle on `conn`'s socket, so a request made
    /// while the writer is idle is written from the caller's thread, with no
    /// hand-off (writes stay in order: nothing is written past bytes the writer
    /// holds). Call before [`connected`](Shared::connected).
    pub fn lend_socket(&self, conn: ConnId, sock: Arc<dyn TryWrite>) {
        let mut g = lock(&self.inner);
        if let Some(w) = g.writers.get_mut(&conn) {
            w.direct = Some(sock);
        }
    }

    /// Lends the core `conn`'s read side: a caller waiting for a reply then reads
    /// it itself, and the runtime wakes only that caller (see [`ConnReader`]). The
    /// adapter's connection task reads through the returned reader
    /// ([`ConnReader::poll_conn`]) instead of the socket. Call before
    /// [`connected`](Shared::connected).
    pub fn lend_reader(&self, conn: ConnId, sock: Arc<dyn LentRead>) -> Arc<ConnReader> {
        let reader = ConnReader::new(conn, sock);
        let mut g = lock(&self.inner);
        if let Some(w) = g.writers.get_mut(&conn) {
            w.reader = Some(reader.clone());
        }
        reader
    }

    /// Lends the core `conn`'s read side for callers blocked in
    /// [`block_on`](crate::blocking::block_on): a thread waiting for its reply reads
    /// the socket itself instead of being woken by the thread that would read it
    /// (see [`BlockingRead`](crate::blocking::BlockingRead)). Call before
    /// [`connected`](Shared::connected).
    pub fn lend_blocking_reader(
        &self,
        conn: ConnId,
        reader: Arc<dyn crate::blocking::BlockingRead>,
    ) {
        let mut g = lock(&self.inner);
        if let Some(w) = g.writers.get_mut(&conn) {
            w.blocking = Some(reader);
        }
    }

    /// The reader of the session's connection, if lent (for a caller about to
    /// wait for its reply): the async one, else (`blocked`: the caller is a thread
    /// in `block_on`) the blocking one.
    pub(crate) fn before_wait(&self, blocked: bool) -> WaitReader {
        let g = lock(&self.inner);
        let Some(w) = g.session.connection().and_then(|c| g.writers.get(&c)) else {
            return WaitReader::None;
        };
        match (&w.reader, &w.blocking) {
            (Some(r), _) => WaitReader::Async(r.clone()),
            (None, Some(b)) if blocked => WaitReader::Blocking(b.clone()),
            _ => WaitReader::None,
        }
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
        let mut g = lock(&self.inner);
        if g.attempts.iter().any(|(c, _)| *c == conn) {
            tracing::debug!(conn = conn.0, %cause, "connection attempt failed");
            g.last_connect_error = Some((conn, cause));
        }
    }

    /// The cause of the latest failed connection attempt (see
    /// [`report_connect_error`](Shared::report_connect_error)).
    pub fn last_connect_error(&self) -> Option<String> {
        lock(&self.inner)
            .last_connect_error
            .as_ref()
            .map(|(_, s)| s.clone())
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

    /// Counts of live objects (see [`LiveCounts`]).
    pub fn live_counts(&self) -> LiveCounts {
        let g = lock(&self.inner);
        LiveCounts {
            calls: g.calls.len(),
            watch_queues: g.watchers.len(),
            session_watches: g.session.watch_count(),
            state_queues: g
                .state_queues
                .iter()
                .filter(|q| Arc::strong_count(q) > 1)
                .count(),
            writers: g.writers.len(),
            transports: self.transports.load(Ordering::SeqCst),
            drivers: self.drivers.load(Ordering::SeqCst),
        }
    }

    // ----------------------------------------------------- client side

    pub(crate) fn submit(&self, req: Request) -> Result<Registered, UsageError> {
        let oneshot = !matches!(req, Request::AddWatch(_));
        let traced = telemetry::start(&req);
        self.with(|g, now| {
            g.submitting = true;
            let r = g.session.submit(req, now);
            g.tele
                .submit_result(&mut g.session, r.as_ref().map(|s| s.id), traced, now);
            let Submitted { id, watcher } = r?;
            Ok(g.register(id, watcher, oneshot))
        })
    }

    pub(crate) fn submit_config(&self) -> Result<Registered, UsageError> {
        let traced = telemetry::start_config();
        self.with(|g, now| {
            g.submitting = true;
            let r = g.session.submit_get_config(false, now);
            g.tele
                .submit_result(&mut g.session, r.as_ref().map(|s| s.id), traced, now);
            let Submitted { id, watcher } = r?;
            Ok(g.register(id, watcher, true))
        })
    }

    /// A request whose paths are server paths (outside the chroot), e.g. to create
    /// the chroot itself.
    pub(crate) fn submit_unchrooted(&self, req: Request) -> Result<Registered, UsageError> {
        let traced = telemetry::start(&req);
        self.with(|g, now| {
            g.submitting = true;
            let r = g.session.submit_unchrooted(req, now);
            g.tele
                .submit_result(&mut g.session, r.as_ref().map(|s| s.id), traced, now);
            let Submitted { id, watcher } = r?;
            Ok(g.register(id, watcher, true))
        })
    }

    pub(crate) fn add_auth(
        &self,
        scheme: &str,
        auth: Bytes,
    ) -> Result<Arc<Slot<Reply>>, UsageError> {
        let traced = telemetry::start_auth();
        self.with(|g, now| {
            let r = g.session.add_auth(scheme, auth, now);
            g.tele
                .submit_result(&mut g.session, r.as_ref().copied(), traced, now);
            let id = r?;
            let slot = Slot::new();
            g.calls.insert(id, slot.clone());
            Ok(slot)
        })
    }

    /// Removes a registration (its holder is gone or no longer interested).
    pub(crate) fn set_watch_backlog(&self, events: usize) {
        lock(&self.inner).watch_backlog = events.max(1);
    }

    pub(crate) fn remove_watcher(&self, w: WatcherId) {
        self.with(|g, now| {
            g.watchers.remove(&w);
            g.session.remove_watcher(w, now);
        })
    }

    pub(crate) fn close(&self) {
        self.with(|g, now| g.session.close(now))
    }

    pub(crate) fn abandon(&self) {
        self.with(|g, now| g.session.abandon(now))
    }

    pub(crate) fn restart(&self) {
        self.with(|g, now| {
            g.sasl_failure = None;
            g.session.restart(now)
        })
    }

    /// Why SASL authentication was refused, if that is how the session ended.
    pub(crate) fn sasl_failure(&self) -> Option<String> {
        lock(&self.inner).sasl_failure.clone()
    }

    pub(crate) fn detach(&self) {
        self.with(|g, now| {
            g.detached = true;
            g.session.close(now);
        })
    }

    /// The session's state as of now. A deadline that passed while the driver could not
    /// run (the process was stopped, as in a long GC pause, or the runtime starved) is
    /// handled first: a connection silent past its read timeout is reported `Suspended`
    /// at once, not once the driver wakes. Otherwise a lock holder asking right after a
    /// pause longer than the session timeout was told its session was still connected,
    /// though the servers had expired it (the Jepsen campaign's `PauseClientProcess`).
    pub(crate) fn state(&self) -> SessionState {
        self.with(|g, now| {
            g.run_due(now);
            g.session.state()
        })
    }

    pub(crate) fn session_info(&self) -> (Option<(i64, Bytes)>, Option<Duration>, i64) {
        let g = lock(&self.inner);
        (
            g.session.credentials(),
            g.session.negotiated_timeout(),
            g.session.last_zxid(),
        )
    }

    pub(crate) fn current_host(&self) -> Option<HostAddr> {
        lock(&self.inner).session.current_host().cloned()
    }

    pub(crate) fn hosts(&self) -> Vec<HostAddr> {
        lock(&self.inner).session.hosts().to_vec()
    }

    pub(crate) fn expiry_policy(&self) -> zk_proto::ExpiryPolicy {
        lock(&self.inner).session.config().expiry_policy
    }

    pub(crate) fn chroot(&self) -> Option<String> {
        lock(&self.inner)
            .session
            .config()
            .chroot
            .root()
            .map(str::to_owned)
    }

    pub(crate) fn state_queue(&self) -> Arc<Queue<SessionState>> {
        let mut g = lock(&self.inner);
        let q = Queue::bounded(STATE_QUEUE_CAP);
        let st = g.session.state();
        q.push(st);
        g.state_queues.retain(|q| Arc::strong_count(q) > 1);
        if st == SessionState::Closed || g.finished() {
            q.close();
        } else {
            g.state_queues.push(q.clone());
        }
        q
    }

    pub(crate) fn add_listener(&self, l: Listener) -> u64 {
        let mut g = lock(&self.inner);
        if g.listener_tx.is_none() {
            g.listener_tx = spawn_listener_thread();
        }
        g.next_listener += 1;
        let id = g.next_listener;
        g.listeners.push((id, l));
        id
    }

    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        let mut g = lock(&self.inner);
        let before = g.listeners.len();
        g.listeners.retain(|(i, _)| *i != id);
        before != g.listeners.len()
    }
}

impl Inner {
    fn register(&mut self, id: RequestId, watcher: Option<WatcherId>, oneshot: bool) -> Registered {
        let slot = Slot::new();
        self.calls.insert(id, slot.clone());
        let q = watcher.map(|w| {
            let queue = Queue::new();
            self.watchers.insert(
                w,
                WatchEntry {
                    queue: queue.clone(),
                    oneshot,
                },
            );
            (w, queue)
        });
        (slot, q)
    }
}

/// The listener thread: calls listeners in the order the session changed state,
/// off every I/O thread, and ends when the core drops its sender.
fn spawn_listener_thread() -> Option<mpsc::SyncSender<(Listener, SessionState)>> {
    let (tx, rx) = mpsc::sync_channel::<(Listener, SessionState)>(LISTENER_BACKLOG);
    let spawned = std::thread::Builder::new()
        .name("zk-listeners".into())
        .spawn(move || {
            for (l, s) in rx {
                // A panicking listener must not stop the others.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(s))).is_err() {
                    tracing::error!(state = ?s, "state listener panicked");
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!(error = %e, "could not start the listener thread");
            None
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

/// The adapters' socket read buffer: it starts small, so an idle session costs
/// little memory, and doubles (up to 64 KiB) while reads keep filling it.
#[derive(Debug)]
pub struct ReadBuf {
    buf: Vec<u8>,
}

impl Default for ReadBuf {
    fn default() -> Self {
        ReadBuf { buf: vec![0; 2048] }
    }
}

impl ReadBuf {
    const MAX: usize = 64 * 1024;

    /// The space to read into.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// After a read of `n` bytes (already handed to the core): grow if it was full.
    pub fn after_read(&mut self, n: usize) {
        if n == self.buf.len() && self.buf.len() < Self::MAX {
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use zk_proto::jute::Encode;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn connect_response(timeout_ms: i32) -> Vec<u8> {
        let mut b = BytesMut::new();
        zk_proto::frame::write_frame(&mut b, |b| {
            zk_proto::ConnectResponse {
                protocol_version: 0,
                timeout: timeout_ms,
                session_id: 7,
                passwd: Bytes::from_static(&[1; 16]),
                read_only: Some(false),
            }
            .encode(b)
        });
        b.to_vec()
    }

    /// Defect 1 of issue 10 at its root: the handshake reply arrives on the reader
    /// while the driver sleeps until the handshake's deadline (1 s for a first
    /// handshake); the core must wake the driver when the session's deadline (the
    /// first ping, 400 ms away with a 1.2 s session) moved earlier.
    #[test]
    fn handshake_reply_wakes_the_driver_with_an_earlier_deadline() {
        let clock = ManualClock::new(Instant::now());
        let (_client, shared) = crate::ClientBuilder::new("h:1")
            .session_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(9))
            .build_on(Arc::new(clock.clone()))
            .unwrap();
        let count = Arc::new(CountingWaker::default());
        let waker = Waker::from(count.clone());
        let mut io = Vec::new();
        let DriverPoll::Run {
            deadline: Some(connect_deadline),
        } = shared.poll_driver(&mut io, &waker)
        else {
            panic!("no deadline while connecting");
        };
        // The session's own connect timeout reaches the adapter.
        let [Io::Connect { conn, timeout, .. }] = io.as_slice() else {
            panic!("expected one connect, got {io:?}");
        };
        assert_eq!(*timeout, Duration::from_secs(9));
        assert_eq!(connect_deadline, clock.now() + Duration::from_secs(9));
        let conn = *conn;
        shared.connected(conn);
        // The writer takes the ConnectRequest.
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            shared.poll_write(conn, &mut cx),
            Poll::Ready(Some(_))
        ));
        // Woken by the handshake's deadline (earlier than the connect's), the
        // driver polls again and sleeps until it.
        io.clear();
        let DriverPoll::Run {
            deadline: Some(handshake_deadline),
        } = shared.poll_driver(&mut io, &waker)
        else {
            panic!("no deadline while handshaking");
        };
        assert_eq!(handshake_deadline, clock.now() + Duration::from_secs(1));
        let woken_before = count.0.load(Ordering::SeqCst);
        clock.advance(Duration::from_millis(10));
        shared.input(conn, &connect_response(1200));
        assert_eq!(shared.state(), SessionState::Connected);
        assert!(
            count.0.load(Ordering::SeqCst) > woken_before,
            "the driver was not woken although its deadline moved from the connect timeout to the first ping"
        );
        let DriverPoll::Run { deadline: Some(d) } = shared.poll_driver(&mut io, &waker) else {
            panic!("no deadline once connected");
        };
        // Ping after read_timeout / 2 = 400 ms of silence.
        assert_eq!(d, clock.now() + Duration::from_millis(400));
        // Later inputs only move the deadline later: no wake-up per reply.
        let woken = count.0.load(Ordering::SeqCst);
        shared.input(conn, &[]);
        assert_eq!(count.0.load(Ordering::SeqCst), woken);
    }

    /// Defect 3: once detached and terminal, the driver is woken to see it is finished.
    #[test]
    fn finished_wakes_the_driver() {
        let clock = ManualClock::new(Instant::now());
        let (client, shared) = crate::ClientBuilder::new("h:1")
            .build_on(Arc::new(clock.clone()))
            .unwrap();
        let count = Arc::new(CountingWaker::default());
        let waker = Waker::from(count.clone());
        let mut io = Vec::new();
        assert!(matches!(
            shared.poll_driver(&mut io, &waker),
            DriverPoll::Run { .. }
        ));
        client.abandon();
        let woken = count.0.load(Ordering::SeqCst);
        assert!(matches!(
            shared.poll_driver(&mut io, &waker),
            DriverPoll::Run { .. }
        ));
        drop(client);
        assert!(
            count.0.load(Ordering::SeqCst) > woken,
            "dropping the last handle did not wake the driver"
        );
        assert_eq!(shared.poll_driver(&mut io, &waker), DriverPoll::Finished);
    }
}
