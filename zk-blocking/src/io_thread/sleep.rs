//! A sleep on the I/O thread's timers (the blocking runtime's `sleep`, for
//! retries and `connect`'s deadline): its state, which the thread completes,
//! and its future.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::lock;

/// A sleep on the I/O thread's timers ([`sleep`](super::sleep)): done, dropped,
/// and who to wake.
#[derive(Default)]
pub(super) struct Sleep {
    pub(super) done: AtomicBool,
    /// Its future was dropped: the entry is let go without a wake-up.
    pub(super) cancelled: AtomicBool,
    pub(super) waker: Mutex<Option<Waker>>,
}

/// The future of [`sleep`](super::sleep); dropping it cancels the sleep.
pub(super) struct SleepFuture {
    pub(super) state: Arc<Sleep>,
    /// The I/O thread has the sleep among its timers (otherwise it never ends).
    pub(super) queued: bool,
}

impl Future for SleepFuture {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.queued {
            return Poll::Pending;
        }
        *lock(&self.state.waker) = Some(cx.waker().clone());
        if self.state.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for SleepFuture {
    fn drop(&mut self) {
        self.state.cancelled.store(true, Ordering::Release);
    }
}
