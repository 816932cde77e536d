//! How other threads reach the I/O thread: its inbox (new clients, new
//! connections, work, sleeps) and the wake-up of its `mio` poll.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;
use std::time::Instant;

use mio::Token;
use zk_client::{HostAddr, Shared};
use zk_proto::ConnId;

use super::lock;
use super::sleep::Sleep;
use crate::Connector;

/// The mio token of the thread's own wake-up.
pub(super) const WAKE: Token = Token(usize::MAX);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Work {
    /// A client's driver was woken.
    Client(usize),
    /// A connection's writer was woken.
    Write(usize),
    /// A caller reading a connection saw it end: this thread reads it again and
    /// reports the end.
    Read(usize),
}

#[derive(Default)]
pub(super) struct Inbox {
    pub(super) clients: Vec<(Arc<Shared>, Arc<dyn Connector>)>,
    pub(super) conns: Vec<(usize, ConnId, HostAddr, TcpStream)>,
    pub(super) work: Vec<Work>,
    pub(super) sleeps: Vec<(Instant, Arc<Sleep>)>,
}

/// What other threads hand the I/O thread.
pub(super) struct Handle {
    pub(super) inbox: Mutex<Inbox>,
    pub(super) waker: mio::Waker,
    /// The epoll set's registry, for callers that take a socket out of it while
    /// they read it themselves.
    pub(super) registry: mio::Registry,
    /// The thread was told of new work and has not looked yet.
    pub(super) notified: AtomicBool,
}

thread_local! {
    static ON_IO_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as the I/O thread (whose own pushes need no wake-up).
pub(super) fn mark_io_thread() {
    ON_IO_THREAD.with(|t| t.set(true));
}

impl Handle {
    pub(super) fn push(&self, f: impl FnOnce(&mut Inbox)) {
        f(&mut lock(&self.inbox));
        // The thread looks at its inbox before it waits again.
        if ON_IO_THREAD.with(|t| t.get()) {
            return;
        }
        if !self.notified.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}

/// Wakes the I/O thread to do `work` (a client's driver or a connection's writer).
pub(super) struct WorkWaker {
    pub(super) handle: Arc<Handle>,
    pub(super) work: Work,
}

impl Wake for WorkWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let w = self.work;
        self.handle.push(|i| i.work.push(w));
    }
}
