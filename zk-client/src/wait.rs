//! A call's wait for its reply. While it waits, the caller reads the
//! connection itself when the adapter lent the core a read side: an async
//! caller through the connection's `ConnReader` (`reader.rs`), a thread in
//! `block_on` through the socket's `BlockingRead` (`blocking.rs`).

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::blocking;
use crate::core::{CallerRead, Reply, Shared, WaitReader};
use crate::slot::Slot;

/// A call's wait for its reply: reads the connection itself while it waits (see
/// the module docs), and gives the socket back when done or dropped.
pub(crate) struct ReplyWait {
    shared: Arc<Shared>,
    slot: Arc<Slot<Reply>>,
    reading: Option<Arc<dyn CallerRead>>,
}

impl ReplyWait {
    pub(crate) fn new(shared: Arc<Shared>, slot: Arc<Slot<Reply>>) -> Self {
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
            r.release(self.token());
        }
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Reply> {
        if let Some(v) = self.slot.try_take() {
            self.release();
            return Poll::Ready(v);
        }
        let blocked = blocking::in_block_on();
        let mut offer = None;
        match self.shared.before_wait(blocked) {
            WaitReader::Async(r) => {
                if let Some(old) = &self.reading {
                    if !same_reader(old, &r) {
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
                    blocking::offer(self.shared.clone(), b, self.slot.clone());
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

/// The same reader (compared by address alone: a vtable pointer may differ
/// between two references to one object).
fn same_reader(a: &Arc<dyn CallerRead>, b: &Arc<dyn CallerRead>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
