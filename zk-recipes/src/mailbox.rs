//! Where a watcher's loop leaves what it found for the application: a hand-off
//! that an async task awaits (through its waker) and a thread blocks on (through a
//! condvar), so the same watcher serves every runtime and none.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a mailbox bounds what the reader has not taken yet.
pub(crate) enum Bound<T> {
    /// Keep only the newest value (coalesce).
    Latest,
    /// Keep up to `cap` values; past that, drop new ones and, once there is room
    /// again (or the reader has caught up), queue `overflow(dropped)` in their place.
    Queue { cap: usize, overflow: fn(u64) -> T },
}

struct State<T> {
    items: VecDeque<T>,
    dropped: u64,
    closed: bool,
    waker: Option<Waker>,
    blocked: usize,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
    bound: Bound<T>,
}

/// One producer (the watcher's loop) and one consumer (the handle).
pub(crate) struct Mailbox<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Mailbox<T> {
    fn clone(&self) -> Self {
        Mailbox {
            inner: self.inner.clone(),
        }
    }
}

/// `recv_timeout` found nothing in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

impl<T> Mailbox<T> {
    pub(crate) fn new(bound: Bound<T>) -> Mailbox<T> {
        Mailbox {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    items: VecDeque::new(),
                    dropped: 0,
                    closed: false,
                    waker: None,
                    blocked: 0,
                }),
                cond: Condvar::new(),
                bound,
            }),
        }
    }

    fn wake(&self, mut s: MutexGuard<'_, State<T>>) {
        if s.blocked > 0 {
            self.inner.cond.notify_all();
        }
        let w = s.waker.take();
        drop(s);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Leaves `v` for the reader (replacing an untaken one, or counting it as
    /// dropped when the queue is full). Nothing happens once closed.
    pub(crate) fn push(&self, v: T) {
        let mut s = lock(&self.inner.state);
        if s.closed {
            return;
        }
        match &self.inner.bound {
            Bound::Latest => {
                s.items.clear();
                s.items.push_back(v);
            }
            Bound::Queue { cap, overflow } => {
                if s.items.len() >= *cap {
                    s.dropped += 1;
                    return;
                }
                if s.dropped > 0 {
                    let n = std::mem::take(&mut s.dropped);
                    s.items.push_back(overflow(n));
                }
                s.items.push_back(v);
            }
        }
        self.wake(s);
    }

    /// No more values: the reader gets what is queued, then the end.
    pub(crate) fn close(&self) {
        let mut s = lock(&self.inner.state);
        s.closed = true;
        self.wake(s);
    }

    fn take(&self, s: &mut State<T>) -> Option<T> {
        if let Some(v) = s.items.pop_front() {
            return Some(v);
        }
        if s.dropped > 0 {
            if let Bound::Queue { overflow, .. } = &self.inner.bound {
                let n = std::mem::take(&mut s.dropped);
                return Some(overflow(n));
            }
        }
        None
    }

    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.inner.state);
        if let Some(v) = self.take(&mut s) {
            return Poll::Ready(Some(v));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// `Some(Some(v))`: a value; `Some(None)`: closed and empty; `None`: nothing yet.
    pub(crate) fn try_recv(&self) -> Option<Option<T>> {
        let mut s = lock(&self.inner.state);
        match self.take(&mut s) {
            Some(v) => Some(Some(v)),
            None if s.closed => Some(None),
            None => None,
        }
    }

    /// Blocks the thread for the next value; `Ok(None)` once closed and empty.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn recv_timeout(&self, timeout: Option<Duration>) -> Result<Option<T>, TimedOut> {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let mut s = lock(&self.inner.state);
        loop {
            if let Some(v) = self.take(&mut s) {
                return Ok(Some(v));
            }
            if s.closed {
                return Ok(None);
            }
            s.blocked += 1;
            s = match deadline {
                None => self.inner.cond.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        s.blocked -= 1;
                        return Err(TimedOut);
                    }
                    self.inner
                        .cond
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            s.blocked -= 1;
        }
    }

    /// Values waiting to be taken (an overflow marker counts as one).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        let s = lock(&self.inner.state);
        s.items.len() + usize::from(s.dropped > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_keeps_only_the_newest() {
        let m = Mailbox::new(Bound::Latest);
        m.push(1);
        m.push(2);
        m.push(3);
        assert_eq!(m.pending(), 1);
        assert_eq!(m.try_recv(), Some(Some(3)));
        assert_eq!(m.try_recv(), None);
        m.push(4);
        m.close();
        m.push(5);
        assert_eq!(m.recv_timeout(Some(Duration::ZERO)), Ok(Some(4)));
        assert_eq!(m.recv_timeout(None), Ok(None));
    }

    #[test]
    fn queue_marks_where_it_dropped() {
        let m = Mailbox::new(Bound::Queue {
            cap: 2,
            overflow: |n| -(n as i64),
        });
        for i in 1..=5 {
            m.push(i);
        }
        // 1 and 2 kept, 3..=5 dropped.
        assert_eq!(m.try_recv(), Some(Some(1)));
        m.push(6);
        assert_eq!(m.try_recv(), Some(Some(2)));
        assert_eq!(m.try_recv(), Some(Some(-3)));
        assert_eq!(m.try_recv(), Some(Some(6)));
        assert_eq!(m.try_recv(), None);
        // A reader that catches up sees the marker even with nothing after it.
        m.push(7);
        m.push(8);
        m.push(9);
        assert_eq!(m.try_recv(), Some(Some(7)));
        assert_eq!(m.try_recv(), Some(Some(8)));
        assert_eq!(m.try_recv(), Some(Some(-1)));
        assert_eq!(
            m.recv_timeout(Some(Duration::from_millis(1))),
            Err(TimedOut)
        );
    }

    #[test]
    fn a_blocked_reader_is_woken() {
        let m = Mailbox::new(Bound::Latest);
        let m2 = m.clone();
        let t = std::thread::spawn(move || m2.recv_timeout(Some(Duration::from_secs(10))));
        std::thread::sleep(Duration::from_millis(20));
        m.push("x");
        assert_eq!(t.join().unwrap(), Ok(Some("x")));
    }
}
