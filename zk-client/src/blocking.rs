//! Runs the client's futures on the calling thread, for the blocking adapter.
//! The futures only wait on the core's slots, so parking the thread until a
//! slot wakes it is all an executor needs to do here.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

struct ThreadWaker(Thread);

/// A waker that unparks `thread` (for a blocking driver loop).
pub fn thread_waker(thread: Thread) -> Waker {
    Waker::from(Arc::new(ThreadWaker(thread)))
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `f` to completion on this thread; `None` if `timeout` passes first
/// (the future is dropped, which removes any watch it registered).
#[allow(clippy::disallowed_methods)]
pub fn block_on<F: Future>(f: F, timeout: Option<Duration>) -> Option<F::Output> {
    // A timeout too large to represent (Duration::MAX) means no timeout.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                std::thread::park_timeout(d - now);
            }
        }
    }
}
