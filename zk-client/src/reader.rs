//! Reading a connection from whichever task waits on it.
//!
//! A reply read by the connection's own task must then wake the caller waiting for
//! it: on a multi-thread runtime that is a task run on a worker thread, a wake-up
//! of the caller's thread, and often a second worker woken by the scheduler, for
//! every reply. Instead, a caller whose reply has not come yet registers itself as
//! the socket's reader and reads the reply itself when the socket becomes readable:
//! the runtime's I/O driver then wakes only the caller.
//!
//! The socket's read registration always holds one waker, the reader's own
//! dispatch waker, which wakes whoever reads now: the caller that registered last,
//! or the connection task. Registering a new reader is then a pointer swap: the
//! runtime's registration is never replaced, so neither runtime wakes the waker it
//! would replace (async-io does) nor re-arms its poller for it. A caller that stops
//! waiting (its reply came, or its future was dropped) gives the socket back to the
//! connection task, which reads whenever no caller does (watch events, ping
//! replies, the end of the stream). Reads and the input they feed happen under one
//! lock, so the session sees the stream in order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use zk_proto::ConnId;

use crate::core::{Shared, WaitReader};

/// A socket the core may read from any task (see [`Shared::lend_reader`]).
pub trait LentRead: Send + Sync + 'static {
    /// Reads what the socket holds now, or registers `cx`'s waker for readability
    /// and returns `Pending`. `Ready(Ok(0))` is the end of the stream. (The core
    /// always passes the same waker.)
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>>;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Registered {
    /// The connection task's waker is (or is about to be) the socket's.
    Conn,
    /// A caller's, named by its token.
    Caller(usize),
    /// The stream ended (or failed): only the connection task reads, to see it.
    Ended,
}

struct State {
    registered: Registered,
    conn_waker: Option<Waker>,
}

/// The waker the socket holds: it wakes the current reader.
#[derive(Default)]
struct Dispatch {
    target: Mutex<Option<Waker>>,
}

impl Dispatch {
    fn set(&self, w: &Waker) {
        let mut t = self.target.lock().unwrap_or_else(|p| p.into_inner());
        match &*t {
            Some(old) if old.will_wake(w) => {}
            _ => *t = Some(w.clone()),
        }
    }
}

impl Wake for Dispatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock: the reader it wakes sets the next target at once.
        let w = self
            .target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// One connection's read side, shared by its connection task and the callers.
pub struct ConnReader {
    conn: ConnId,
    sock: Arc<dyn LentRead>,
    state: Mutex<State>,
    dispatch: Arc<Dispatch>,
    /// `dispatch` as a waker: the only one the socket ever gets.
    dispatch_waker: Waker,
}

impl std::fmt::Debug for ConnReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnReader")
            .field("conn", &self.conn)
            .finish()
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnReader {
    pub(crate) fn new(conn: ConnId, sock: Arc<dyn LentRead>) -> Arc<ConnReader> {
        let dispatch = Arc::new(Dispatch::default());
        Arc::new(ConnReader {
            conn,
            sock,
            dispatch_waker: Waker::from(dispatch.clone()),
            dispatch,
            state: Mutex::new(State {
                registered: Registered::Conn,
                conn_waker: None,
            }),
        })
    }

    /// The connection task's read loop, one poll: feeds what arrives to the core;
    /// `Ready(Ok(()))` at the end of the stream, `Ready(Err)` on a read error,
    /// `Pending` while the stream is open (also while a caller reads: it hands the
    /// socket back, or wakes this task, when it stops).
    pub fn poll_conn(&self, shared: &Shared, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut st = lock(&self.state);
        match &st.conn_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.conn_waker = Some(cx.waker().clone()),
        }
        if let Registered::Caller(_) = st.registered {
            return Poll::Pending;
        }
        self.dispatch.set(cx.waker());
        self.read_all(shared)
    }

    /// Reads and feeds in everything the socket holds (the caller holds `state`):
    /// `Pending` once it is empty (the dispatch waker registered), `Ready` at the
    /// end of the stream or on an error. The bytes go through a per-thread buffer,
    /// so an idle connection holds no read buffer.
    fn read_all(&self, shared: &Shared) -> Poll<std::io::Result<()>> {
        let mut dcx = Context::from_waker(&self.dispatch_waker);
        with_scratch(|buf| loop {
            match self.sock.poll_read(&mut dcx, buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(n)) => shared.input(self.conn, &buf[..n]),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        })
    }

    /// A caller waiting for a reply (its slot waker registered already) reads what
    /// is there and registers itself as the reader. Never blocks: if another
    /// reader is busy, that one feeds the reply in.
    pub(crate) fn poll_caller(&self, shared: &Shared, token: usize, cx: &mut Context<'_>) {
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        if st.registered == Registered::Ended {
            return;
        }
        st.registered = Registered::Caller(token);
        self.dispatch.set(cx.waker());
        if self.read_all(shared).is_ready() {
            // The end of the stream, or an error: the connection task reports it.
            st.registered = Registered::Ended;
            if let Some(w) = &st.conn_waker {
                w.wake_by_ref();
            }
        }
    }

    /// A caller stops waiting: if it is the registered reader, the connection
    /// task's waker goes back on the socket (reading what arrived meanwhile).
    pub(crate) fn release(&self, shared: &Shared, token: usize) {
        let mut st = lock(&self.state);
        if st.registered != Registered::Caller(token) {
            return;
        }
        st.registered = Registered::Conn;
        let Some(waker) = st.conn_waker.clone() else {
            return;
        };
        self.dispatch.set(&waker);
        if self.read_all(shared).is_ready() {
            // Let the connection task see the end itself.
            st.registered = Registered::Ended;
            waker.wake_by_ref();
        }
    }

    /// Gives the socket back to the connection task whoever holds it (a caller
    /// that stopped being polled without being dropped must not starve the
    /// connection): the task is woken and registers itself.
    pub(crate) fn reclaim(&self) {
        let mut st = lock(&self.state);
        if let Registered::Caller(_) = st.registered {
            st.registered = Registered::Conn;
            if let Some(w) = &st.conn_waker {
                self.dispatch.set(w);
                w.wake_by_ref();
            }
        }
    }
}

/// Runs `f` on this thread's read buffer (64 KiB, allocated on first use; a
/// fresh one if `f` runs inside another `f`).
fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    const SIZE: usize = 64 * 1024;
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut b) => {
            if b.is_empty() {
                b.resize(SIZE, 0);
            }
            f(&mut b)
        }
        Err(_) => f(&mut vec![0; SIZE]),
    })
}

/// A call's wait for its reply: reads the connection itself while it waits (see
/// the module docs), and gives the socket back when done or dropped.
pub(crate) struct ReplyWait {
    shared: Arc<Shared>,
    slot: Arc<crate::slot::Slot<crate::core::Reply>>,
    reading: Option<Arc<ConnReader>>,
}

impl ReplyWait {
    pub(crate) fn new(
        shared: Arc<Shared>,
        slot: Arc<crate::slot::Slot<crate::core::Reply>>,
    ) -> Self {
        ReplyWait {
            shared,
            slot,
            reading: None,
        }
    }

    fn token(&self) -> usize {
        Arc::as_ptr(&self.slot) as *const () as usize
    }

    fn release(&mut self) {
        if let Some(r) = self.reading.take() {
            r.release(&self.shared, self.token());
        }
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<crate::core::Reply> {
        if let Some(v) = self.slot.try_take() {
            self.release();
            return Poll::Ready(v);
        }
        let blocked = crate::blocking::in_block_on();
        let mut offer = None;
        match self.shared.before_wait(blocked) {
            WaitReader::Async(r) => {
                if let Some(old) = &self.reading {
                    if !Arc::ptr_eq(old, &r) {
                        self.release();
                    }
                }
                // The slot has no waker yet: a reply this read feeds in wakes nobody.
                r.poll_caller(&self.shared, self.token(), cx);
                self.reading = Some(r);
            }
            WaitReader::Blocking(b) => offer = Some(b),
            WaitReader::None => {}
        }
        match self.slot.poll_take(cx) {
            Poll::Ready(v) => {
                self.release();
                Poll::Ready(v)
            }
            Poll::Pending => {
                if let Some(b) = offer {
                    // The thread's `block_on` reads the socket instead of parking.
                    crate::blocking::offer(self.shared.clone(), b, self.slot.clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for ReplyWait {
    fn drop(&mut self) {
        self.release();
    }
}
