//! The connection hand-off: what each transport's writer takes from the
//! session, and the socket halves an adapter lends the core so that callers
//! write their own requests ([`TryWrite`]) and read their own replies (an async
//! reader, `reader.rs`; a [`BlockingRead`] for threads in `block_on`).
//!
//! This is the one part of the core that names [`Shared`]: the traits adapters
//! implement take it, to feed what they read into it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::ConnId;

use super::{lock, Inner, Shared};
use crate::id_map::IdMap;

/// A transport the core may write to without blocking, from whichever thread
/// submits a request (see [`Shared::lend_socket`]).
pub trait TryWrite: Send + Sync + 'static {
    /// Writes what the socket takes now: the count written, or `WouldBlock`.
    fn try_write(&self, buf: &[u8]) -> std::io::Result<usize>;
}

/// A connection's read side that a thread blocked in
/// [`block_on`](crate::blocking::block_on) may read itself while it waits for a
/// reply (lent with [`Shared::lend_blocking_reader`]).
pub trait BlockingRead: Send + Sync + 'static {
    /// Becomes the connection's reader, unless another thread is (or the
    /// connection is going, or should not be read from here now): then `false`,
    /// and the caller parks. As the reader: unless `done()` already (checked
    /// once no other read of the socket is under way), waits at most `timeout`
    /// for the socket to be readable, feeds what it reads into `shared`, and
    /// hands the socket back; `true`.
    ///
    /// Nothing but the socket wakes the reader: whatever else ends the wait
    /// (the connection dropped, the client closed) must close or shut the
    /// socket down, and `timeout` bounds the rest.
    fn lead(&self, shared: &Shared, timeout: Duration, done: &dyn Fn() -> bool) -> bool;
}

/// A connection's read side that an async caller waiting for its reply reads
/// itself (`reader.rs`'s `ConnReader`, lent with `Shared::lend_reader`).
pub(crate) trait CallerRead: Send + Sync + 'static {
    /// A caller waiting for a reply (its slot waker registered already) reads
    /// what is there and registers itself, as `token`, to be woken when there
    /// is more. Never blocks.
    fn poll_caller(&self, shared: &Shared, token: usize, cx: &mut Context<'_>);
    /// The caller `token` stops waiting.
    fn release(&self, token: usize);
}

/// Who may read the session's connection for a caller about to wait.
pub(crate) enum WaitReader {
    None,
    Async(Arc<dyn CallerRead>),
    Blocking(Arc<dyn BlockingRead>),
}

/// One transport's write side, and the read sides lent with it.
#[derive(Default)]
pub(super) struct Writer {
    pub(super) waker: Option<Waker>,
    /// Bytes for this transport that came out of the session while polling for another.
    pending: VecDeque<Bytes>,
    /// The socket itself, when the adapter lends it for writes from the caller's thread.
    direct: Option<Arc<dyn TryWrite>>,
    /// The writer task holds bytes it has not finished writing: nothing may be
    /// written past them.
    in_flight: bool,
    /// The socket's read side, when the adapter lends it: callers waiting for a
    /// reply read it themselves (see `reader.rs`).
    reader: Option<Arc<dyn CallerRead>>,
    /// The socket's read side for blocked callers (see [`BlockingRead`]).
    blocking: Option<Arc<dyn BlockingRead>>,
}

impl Writer {
    /// Bytes may go straight to the socket from the thread at hand.
    fn direct_idle(&self) -> bool {
        self.direct.is_some() && !self.in_flight && self.pending.is_empty()
    }
}

/// Bytes the writers hold, taken from the session and not yet written.
pub(super) fn queued_bytes(writers: &IdMap<ConnId, Writer>) -> usize {
    writers
        .values()
        .flat_map(|w| &w.pending)
        .map(Bytes::len)
        .sum()
}

impl Inner {
    /// After a drain: writes the session's bytes from the thread at hand if it
    /// may, and wakes the writers that have something to write.
    pub(super) fn hand_off_transmits(&mut self, now: Instant) {
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
}

impl Shared {
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

    /// Keeps `reader` as `conn`'s read side for async callers (see
    /// `Shared::lend_reader`).
    pub(crate) fn lend_caller_reader(&self, conn: ConnId, reader: Arc<dyn CallerRead>) {
        let mut g = lock(&self.inner);
        if let Some(w) = g.writers.get_mut(&conn) {
            w.reader = Some(reader);
        }
    }

    /// Lends the core `conn`'s read side for callers blocked in
    /// [`block_on`](crate::blocking::block_on): a thread waiting for its reply reads
    /// the socket itself instead of being woken by the thread that would read it
    /// (see [`BlockingRead`](crate::blocking::BlockingRead)). Call before
    /// [`connected`](Shared::connected).
    pub fn lend_blocking_reader(&self, conn: ConnId, reader: Arc<dyn BlockingRead>) {
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
}
