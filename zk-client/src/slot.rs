//! Hand-off points between the I/O driver and callers that work for both kinds of
//! caller: an async task (woken through its `Waker`) and a blocked thread (woken
//! through a `Condvar`). This is what lets one client core serve tokio, smol and
//! plain threads.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct SlotState<V> {
    value: Option<V>,
    waker: Option<Waker>,
}

/// A value delivered once, awaited through a waker (blocking callers use
/// `block_on`, whose waker unparks the thread).
pub(crate) struct Slot<V> {
    state: Mutex<SlotState<V>>,
}

impl<V> Slot<V> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Slot {
            state: Mutex::new(SlotState {
                value: None,
                waker: None,
            }),
        })
    }

    /// Delivers the value; returns the waker to wake once no lock is held.
    pub(crate) fn fill(&self, v: V) -> Option<Waker> {
        let mut s = lock(&self.state);
        s.value = Some(v);
        s.waker.take()
    }

    /// A value is there (not taken yet).
    pub(crate) fn is_filled(&self) -> bool {
        lock(&self.state).value.is_some()
    }

    /// The value if it is there, registering nothing.
    pub(crate) fn try_take(&self) -> Option<V> {
        lock(&self.state).value.take()
    }

    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<V> {
        let mut s = lock(&self.state);
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct QueueState<V> {
    items: VecDeque<V>,
    /// Most items kept; the oldest go first past it (`usize::MAX`: no bound).
    cap: usize,
    closed: bool,
    waker: Option<Waker>,
    /// Threads blocked in `wait_next`: the condvar is only signalled for them
    /// (a notify costs a system call even when nobody waits).
    blocked: usize,
}

/// A sequence of values ending with a close (watch events, state changes).
pub(crate) struct Queue<V> {
    state: Mutex<QueueState<V>>,
    cond: Condvar,
}

impl<V> Queue<V> {
    pub(crate) fn new() -> Arc<Self> {
        Queue::bounded(usize::MAX)
    }

    /// A queue that keeps only the newest `cap` items, for values where the latest
    /// matters more than the history (session states): an unread stream stays small.
    pub(crate) fn bounded(cap: usize) -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                cap: cap.max(1),
                closed: false,
                waker: None,
                blocked: 0,
            }),
            cond: Condvar::new(),
        })
    }

    /// Values queued and not yet taken.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    pub(crate) fn push(&self, v: V) -> Option<Waker> {
        let mut s = lock(&self.state);
        if s.closed {
            return None;
        }
        if s.items.len() >= s.cap {
            s.items.pop_front();
        }
        s.items.push_back(v);
        if s.blocked > 0 {
            self.cond.notify_all();
        }
        s.waker.take()
    }

    pub(crate) fn close(&self) -> Option<Waker> {
        let mut s = lock(&self.state);
        s.closed = true;
        if s.blocked > 0 {
            self.cond.notify_all();
        }
        s.waker.take()
    }

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<V>> {
        let mut s = lock(&self.state);
        if let Some(v) = s.items.pop_front() {
            return Poll::Ready(Some(v));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) fn try_next(&self) -> Option<Option<V>> {
        let mut s = lock(&self.state);
        match s.items.pop_front() {
            Some(v) => Some(Some(v)),
            None if s.closed => Some(None),
            None => None,
        }
    }

    /// Blocks for the next value; `Err(())` on timeout, `Ok(None)` once closed and empty.
    pub(crate) fn wait_next(&self, timeout: Option<Duration>) -> Result<Option<V>, ()> {
        #[allow(clippy::disallowed_methods)]
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let mut s = lock(&self.state);
        loop {
            if let Some(v) = s.items.pop_front() {
                return Ok(Some(v));
            }
            if s.closed {
                return Ok(None);
            }
            s.blocked += 1;
            match deadline {
                None => s = self.cond.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    #[allow(clippy::disallowed_methods)]
                    let now = std::time::Instant::now();
                    if now >= d {
                        s.blocked -= 1;
                        return Err(());
                    }
                    s = self
                        .cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            s.blocked -= 1;
        }
    }
}

/// Resolves with the next item of a queue.
pub(crate) struct NextFuture<'a, V>(pub(crate) &'a Queue<V>);

impl<V> Future for NextFuture<'_, V> {
    type Output = Option<V>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
        self.0.poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bounded queue nobody reads keeps only the newest items (state streams).
    #[test]
    fn a_bounded_queue_keeps_the_newest() {
        let q = Queue::bounded(64);
        for i in 0..1000 {
            q.push(i);
        }
        let mut got = Vec::new();
        while let Some(Some(v)) = q.try_next() {
            got.push(v);
        }
        assert_eq!(got, (936..1000).collect::<Vec<_>>());
        let unbounded = Queue::new();
        for i in 0..1000 {
            unbounded.push(i);
        }
        let mut n = 0;
        while let Some(Some(_)) = unbounded.try_next() {
            n += 1;
        }
        assert_eq!(n, 1000);
    }
}
