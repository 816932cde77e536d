//! Runs the client's futures on the calling thread, for the blocking adapter.
//! The futures only wait on the core's slots, so parking the thread until a
//! slot wakes it is all an executor needs to do here.
//!
//! A thread waiting for a reply is better off reading the socket itself than
//! being woken by the thread that read it: one wake-up by the kernel instead of
//! two context switches and a futex pair per reply. An adapter that lends the
//! core a [`BlockingRead`] gets that: the reply wait offers it to `block_on`,
//! which waits on the socket instead of parking.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

pub use crate::core::BlockingRead;
use crate::core::{Reply, Shared};
use crate::slot::Slot;

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

/// The longest a thread waits on a socket before it looks at its call again
/// (a completion that does not come through the socket, which is rare, is seen
/// at the latest this late).
const LEAD_WAIT: Duration = Duration::from_millis(100);

type Offer = (Arc<Shared>, Arc<dyn BlockingRead>, Arc<Slot<Reply>>);

thread_local! {
    static IN_BLOCK_ON: Cell<bool> = const { Cell::new(false) };
    static OFFER: RefCell<Option<Offer>> = const { RefCell::new(None) };
}

/// The future being polled runs inside [`block_on`] on this thread.
pub(crate) fn in_block_on() -> bool {
    IN_BLOCK_ON.with(Cell::get)
}

/// A reply wait inside [`block_on`] offers the socket its reply comes on.
pub(crate) fn offer(shared: Arc<Shared>, reader: Arc<dyn BlockingRead>, slot: Arc<Slot<Reply>>) {
    OFFER.with(|o| *o.borrow_mut() = Some((shared, reader, slot)));
}

fn take_offer() -> Option<Offer> {
    OFFER.with(|o| o.borrow_mut().take())
}

/// Polls `f` to completion on this thread; `None` if `timeout` passes first
/// (the future is dropped, which removes any watch it registered).
#[allow(clippy::disallowed_methods)]
pub fn block_on<F: Future>(f: F, timeout: Option<Duration>) -> Option<F::Output> {
    // A timeout too large to represent (Duration::MAX) means no timeout.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    thread_local! {
        // One waker per thread, made once: a call allocates none.
        static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    }
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        let outer = IN_BLOCK_ON.with(|b| b.replace(true));
        let polled = f.as_mut().poll(&mut cx);
        IN_BLOCK_ON.with(|b| b.set(outer));
        let offer = take_offer();
        if let Poll::Ready(v) = polled {
            return Some(v);
        }
        let left = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                Some(d - now)
            }
        };
        if let Some((shared, reader, slot)) = offer {
            let wait = left.map_or(LEAD_WAIT, |l| l.min(LEAD_WAIT));
            if reader.lead(&shared, wait, &|| slot.is_filled()) {
                continue;
            }
        }
        match left {
            None => std::thread::park(),
            Some(l) => std::thread::park_timeout(l),
        }
    }
}
