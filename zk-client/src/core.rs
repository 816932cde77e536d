//! The client core every adapter drives: a [`Session`] behind a mutex, plus the
//! routing of its events to callers. Adapters only move bytes and time through
//! the [`Driver`] methods; every decision stays in `zk-proto`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use zk_proto::{
    Action, ConnId, Event, RemovalReason, Request, RequestId, Response, Session, SessionState,
    Submitted, Transmit, UsageError, WatchedEvent, WatcherId, ZkError,
};

use crate::slot::{Queue, Slot};

pub(crate) type Reply = Result<Response, ZkError>;
pub(crate) type WatchSlot = (WatcherId, Arc<Queue<WatchMessage>>);

/// What a watch registration delivers: events, then an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    /// The watch fired.
    Event(WatchedEvent),
    /// The registration ended without (more) events.
    Removed(RemovalReason),
}

type Listener = Arc<dyn Fn(SessionState) + Send + Sync>;

struct Inner {
    session: Session,
    calls: HashMap<RequestId, Arc<Slot<Reply>>>,
    watchers: HashMap<WatcherId, Arc<Queue<WatchMessage>>>,
    state_queues: Vec<Arc<Queue<SessionState>>>,
    listeners: Vec<(u64, Listener)>,
    next_listener: u64,
    io: VecDeque<Io>,
    io_waker: Option<Waker>,
    detached: bool,
    wakers: Vec<Waker>,
    notify: bool,
    listener_queue: Arc<ListenerQueue>,
}

/// Transport work for the adapter, in order.
#[derive(Debug)]
pub enum Io {
    /// Open a connection and report back.
    Connect(Action),
    /// Close a connection.
    Disconnect(ConnId),
    /// Write these bytes on a connection.
    Write(Transmit),
}

/// The shared state between the adapter's I/O driver and the client handles.
pub struct Shared {
    inner: Mutex<Inner>,
}

/// Work collected while the lock was held, done after it is released.
struct After {
    wakers: Vec<Waker>,
    notify: bool,
}

/// State changes for listeners, in the order the session made them. Whichever
/// thread finds the dispatcher flag free delivers them all; a listener that calls
/// back into the client only queues more, so nothing deadlocks or reorders.
#[derive(Default)]
struct ListenerQueue {
    pending: Mutex<VecDeque<(Listener, SessionState)>>,
    busy: AtomicBool,
}

impl ListenerQueue {
    fn dispatch(&self) {
        loop {
            if self.busy.swap(true, Ordering::Acquire) {
                return;
            }
            loop {
                let next = self
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop_front();
                let Some((l, s)) = next else { break };
                // A panicking listener must not take the I/O driver down with it.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(s))).is_err() {
                    tracing::error!(state = ?s, "state listener panicked");
                }
            }
            self.busy.store(false, Ordering::Release);
            if self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
            {
                return;
            }
        }
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Drains every output of the session, routing events and queueing I/O.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.session.poll_action() {
                progressed = true;
                match a {
                    Action::Disconnect { conn } => self.io.push_back(Io::Disconnect(conn)),
                    other => self.io.push_back(Io::Connect(other)),
                }
            }
            while let Some(e) = self.session.poll_event() {
                progressed = true;
                self.route(e);
            }
            if !progressed {
                break;
            }
        }
        let _ = now;
        // Bytes stay in the session until the driver takes them, so everything
        // submitted meanwhile goes out in one write.
        if !self.io.is_empty() || self.session.wants_transmit() {
            if let Some(w) = self.io_waker.take() {
                self.wakers.push(w);
            }
        }
    }

    fn route(&mut self, e: Event) {
        match e {
            Event::Completed { id, result } => {
                if let Some(slot) = self.calls.remove(&id) {
                    self.wakers.extend(slot.fill(result));
                }
            }
            Event::Watch { watcher, event } => {
                if let Some(q) = self.watchers.get(&watcher) {
                    self.wakers.extend(q.push(WatchMessage::Event(event)));
                }
            }
            Event::WatcherRemoved { watcher, reason } => {
                if let Some(q) = self.watchers.remove(&watcher) {
                    self.wakers.extend(q.push(WatchMessage::Removed(reason)));
                    self.wakers.extend(q.close());
                }
            }
            Event::StateChanged { to, .. } => {
                tracing::debug!(state = ?to, "session state");
                for q in &self.state_queues {
                    self.wakers.extend(q.push(to));
                }
                if !self.listeners.is_empty() {
                    let mut q = self
                        .listener_queue
                        .pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    for (_, l) in &self.listeners {
                        q.push_back((l.clone(), to));
                    }
                    self.notify = true;
                }
            }
            Event::Disconnected { conn, reason } => {
                tracing::info!(conn = conn.0, ?reason, "connection dropped");
            }
            _ => {}
        }
    }

    fn after(&mut self) -> (After, Arc<ListenerQueue>) {
        (
            After {
                wakers: std::mem::take(&mut self.wakers),
                notify: std::mem::take(&mut self.notify),
            },
            self.listener_queue.clone(),
        )
    }
}

impl Shared {
    /// A core around a new session.
    pub fn new(session: Session) -> Arc<Shared> {
        let s = Arc::new(Shared {
            inner: Mutex::new(Inner {
                session,
                calls: HashMap::new(),
                watchers: HashMap::new(),
                state_queues: Vec::new(),
                listeners: Vec::new(),
                next_listener: 0,
                io: VecDeque::new(),
                io_waker: None,
                detached: false,
                wakers: Vec::new(),
                notify: false,
                listener_queue: Arc::default(),
            }),
        });
        s.with(|_, _| {});
        s
    }

    #[allow(clippy::disallowed_methods)]
    fn with<R>(&self, f: impl FnOnce(&mut Inner, Instant) -> R) -> R {
        let mut g = lock(&self.inner);
        // Read the clock under the lock: the session's time then never goes backwards,
        // however the threads calling in are scheduled.
        let now = Instant::now();
        let r = f(&mut g, now);
        g.drain(now);
        let (after, listeners) = g.after();
        drop(g);
        for w in after.wakers {
            w.wake();
        }
        if after.notify {
            listeners.dispatch();
        }
        r
    }

    // ----------------------------------------------------- driver side

    /// Takes the transport work queued so far; when there is none, registers
    /// `waker` to be woken when some appears. Returns the session's next deadline.
    pub fn take_io(&self, out: &mut Vec<Io>, waker: Option<&Waker>) -> Option<Instant> {
        self.with(|g, now| {
            out.extend(g.io.drain(..));
            while let Some(t) = g.session.poll_transmit(now) {
                out.push(Io::Write(t));
            }
            if out.is_empty() {
                g.io_waker = waker.cloned();
            }
            g.session.poll_timeout()
        })
    }

    /// Resolves once transport work is queued, moving it into `io`. Adapters
    /// await it beside their socket and timer futures.
    pub fn io_ready<'a>(&'a self, io: &'a mut Vec<Io>) -> IoReady<'a> {
        IoReady { shared: self, io }
    }

    /// The transport connected.
    pub fn connected(&self, conn: ConnId) {
        self.with(|g, now| g.session.handle_connected(conn, now))
    }

    /// The transport could not connect.
    pub fn connect_failed(&self, conn: ConnId) {
        self.with(|g, now| g.session.handle_connect_failed(conn, now))
    }

    /// Bytes arrived.
    pub fn input(&self, conn: ConnId, data: &[u8]) {
        self.with(|g, now| g.session.handle_input(conn, data, now))
    }

    /// The connection closed.
    pub fn disconnected(&self, conn: ConnId) {
        self.with(|g, now| g.session.handle_disconnected(conn, now))
    }

    /// The deadline passed.
    pub fn timeout(&self) {
        self.with(|g, now| g.session.handle_timeout(now))
    }

    /// Whether the driver may stop: every handle is gone and the session is over.
    pub fn finished(&self) -> bool {
        let g = lock(&self.inner);
        g.detached
            && g.session.state().is_terminal()
            && g.io.is_empty()
            && !g.session.wants_transmit()
    }

    // ----------------------------------------------------- client side

    pub(crate) fn submit(
        &self,
        req: Request,
    ) -> Result<(Arc<Slot<Reply>>, Option<WatchSlot>), UsageError> {
        self.with(|g, now| {
            let Submitted { id, watcher } = g.session.submit(req, now)?;
            let slot = Slot::new();
            g.calls.insert(id, slot.clone());
            let q = watcher.map(|w| {
                let q = Queue::new();
                g.watchers.insert(w, q.clone());
                (w, q)
            });
            Ok((slot, q))
        })
    }

    pub(crate) fn add_auth(
        &self,
        scheme: &str,
        auth: Bytes,
    ) -> Result<Arc<Slot<Reply>>, UsageError> {
        self.with(|g, now| {
            let id = g.session.add_auth(scheme, auth, now)?;
            let slot = Slot::new();
            g.calls.insert(id, slot.clone());
            Ok(slot)
        })
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
        self.with(|g, now| g.session.restart(now))
    }

    pub(crate) fn detach(&self) {
        self.with(|g, now| {
            g.detached = true;
            g.session.close(now);
        })
    }

    pub(crate) fn state(&self) -> SessionState {
        lock(&self.inner).session.state()
    }

    pub(crate) fn session_info(&self) -> (Option<(i64, Bytes)>, Option<std::time::Duration>, i64) {
        let g = lock(&self.inner);
        (
            g.session.credentials(),
            g.session.negotiated_timeout(),
            g.session.last_zxid(),
        )
    }

    pub(crate) fn current_host(&self) -> Option<zk_proto::HostAddr> {
        lock(&self.inner).session.current_host().cloned()
    }

    pub(crate) fn hosts(&self) -> Vec<zk_proto::HostAddr> {
        lock(&self.inner).session.config().hosts.clone()
    }

    pub(crate) fn state_queue(&self) -> Arc<Queue<SessionState>> {
        let mut g = lock(&self.inner);
        let q = Queue::new();
        q.push(g.session.state());
        g.state_queues.retain(|q| Arc::strong_count(q) > 1);
        g.state_queues.push(q.clone());
        q
    }

    pub(crate) fn add_listener(&self, l: Listener) -> u64 {
        let mut g = lock(&self.inner);
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

/// See [`Shared::io_ready`].
pub struct IoReady<'a> {
    shared: &'a Shared,
    io: &'a mut Vec<Io>,
}

impl std::future::Future for IoReady<'_> {
    type Output = Option<Instant>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Instant>> {
        let this = &mut *self;
        let deadline = this.shared.take_io(this.io, Some(cx.waker()));
        if this.io.is_empty() {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(deadline)
        }
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
