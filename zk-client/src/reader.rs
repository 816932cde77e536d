//! Reading a connection from whichever task waits on it.
//!
//! A reply read by the connection's own task must then wake the caller waiting for
//! it: on a multi-thread runtime that is a task run on a worker thread, a wake-up
//! of the caller's thread, and often a second worker woken by the scheduler, for
//! every reply. So a caller whose reply has not come yet registers itself as a
//! reader, and when the socket becomes readable it may read the reply itself.
//!
//! # No caller waits on another
//!
//! A caller can stop being polled at any moment and stay so: a future polled once
//! and kept (the `select!` / soft-timeout pattern), or a task busy elsewhere. If
//! the socket's readiness went only to such a caller, nobody would read, and every
//! other caller's reply, the watch events and the pings would wait for it. So the
//! connection task is the **reader of last resort**: every readiness of the socket
//! wakes it, whoever else it wakes. The socket's registration holds one waker, the
//! reader's dispatch waker, which wakes both the connection task and the caller
//! that registered last (whichever of the two runs first reads; the other finds
//! the socket empty). A reply therefore never depends on any particular caller
//! being polled: the connection task, which only this client drives, reads it.
//!
//! Registering a new caller is a pointer swap: the runtime's registration is never
//! replaced, so neither runtime wakes the waker it would replace (async-io does)
//! nor re-arms its poller for it. Reads and the input they feed happen under one
//! lock, so the session sees the stream in order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use zk_proto::ConnId;

use crate::core::{CallerRead, Shared};

impl Shared {
    /// Lends the core `conn`'s read side: a caller waiting for a reply then reads
    /// it itself, and the runtime wakes only that caller (see [`ConnReader`]). The
    /// adapter's connection task reads through the returned reader
    /// ([`ConnReader::poll_conn`]) instead of the socket. Call before
    /// [`connected`](Shared::connected).
    pub fn lend_reader(&self, conn: ConnId, sock: Arc<dyn LentRead>) -> Arc<ConnReader> {
        let reader = ConnReader::new(conn, sock);
        self.lend_caller_reader(conn, reader.clone());
        reader
    }
}

/// A socket the core may read from any task (see [`Shared::lend_reader`]).
pub trait LentRead: Send + Sync + 'static {
    /// Reads what the socket holds now, or registers `cx`'s waker for readability
    /// and returns `Pending`. `Ready(Ok(0))` is the end of the stream. (The core
    /// always passes the same waker.)
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>>;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Registered {
    /// No caller waits: only the connection task reads.
    Conn,
    /// A caller, named by its token, is woken with the connection task.
    Caller(usize),
    /// The stream ended (or failed): only the connection task reads, to see it.
    Ended,
}

/// Who the socket's readiness wakes.
#[derive(Default)]
struct Targets {
    /// The connection task: always, once it has been polled.
    conn: Option<Waker>,
    /// The caller that registered last, if any still waits.
    caller: Option<Waker>,
}

/// The waker the socket holds: it wakes the current readers.
#[derive(Default)]
struct Dispatch {
    targets: Mutex<Targets>,
}

fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

impl Dispatch {
    fn targets(&self) -> MutexGuard<'_, Targets> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Wake for Dispatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock: a reader it wakes may register at once.
        let (conn, caller) = {
            let t = self.targets();
            (t.conn.clone(), t.caller.clone())
        };
        if let Some(w) = caller {
            w.wake();
        }
        if let Some(w) = conn {
            w.wake();
        }
    }
}

/// One connection's read side, shared by its connection task and the callers.
pub struct ConnReader {
    conn: ConnId,
    sock: Arc<dyn LentRead>,
    state: Mutex<Registered>,
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

fn lock(m: &Mutex<Registered>) -> MutexGuard<'_, Registered> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnReader {
    fn new(conn: ConnId, sock: Arc<dyn LentRead>) -> Arc<ConnReader> {
        let dispatch = Arc::new(Dispatch::default());
        Arc::new(ConnReader {
            conn,
            sock,
            dispatch_waker: Waker::from(dispatch.clone()),
            dispatch,
            state: Mutex::new(Registered::Conn),
        })
    }

    /// The connection task's read loop, one poll: feeds what arrives to the core;
    /// `Ready(Ok(()))` at the end of the stream, `Ready(Err)` on a read error,
    /// `Pending` while the stream is open. Every readiness of the socket wakes this
    /// task, whether or not a caller reads too (see the module docs).
    pub fn poll_conn(&self, shared: &Shared, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        set_waker(&mut self.dispatch.targets().conn, cx.waker());
        // Waits for a caller that reads now (briefly: until the socket is empty):
        // skipping instead could leave bytes nobody reads, if the lock's holder
        // was a caller letting go rather than reading.
        let _st = lock(&self.state);
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
}

impl CallerRead for ConnReader {
    /// A caller waiting for a reply (its slot waker registered already) reads what
    /// is there and registers itself to be woken with the connection task. Never
    /// blocks: if another reader is busy, that one feeds the reply in.
    fn poll_caller(&self, shared: &Shared, token: usize, cx: &mut Context<'_>) {
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        if *st == Registered::Ended {
            return;
        }
        *st = Registered::Caller(token);
        set_waker(&mut self.dispatch.targets().caller, cx.waker());
        if self.read_all(shared).is_ready() {
            // The end of the stream, or an error: the connection task reports it.
            *st = Registered::Ended;
            let conn = {
                let mut t = self.dispatch.targets();
                t.caller = None;
                t.conn.clone()
            };
            if let Some(w) = conn {
                w.wake();
            }
        }
    }

    /// A caller stops waiting: if it is the registered one, readiness no longer
    /// wakes it (the connection task reads as always).
    fn release(&self, token: usize) {
        let mut st = lock(&self.state);
        if *st != Registered::Caller(token) {
            return;
        }
        *st = Registered::Conn;
        self.dispatch.targets().caller = None;
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
