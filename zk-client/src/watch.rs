//! Watch handles and state streams: what a caller holds while waiting for events.
//! Each owns its registration in the core, so dropping it is what removes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use zk_proto::{SessionState, WatchedEvent, WatcherId};

use crate::core::{Shared, WatchMessage};
use crate::error::{Error, Result};
use crate::slot::{NextFuture, Queue};

/// A one-shot watch: resolves with the event that fired it. Dropping it removes it locally.
pub struct OneshotWatch {
    shared: Arc<Shared>,
    id: WatcherId,
    queue: Arc<Queue<WatchMessage>>,
    done: bool,
}

impl OneshotWatch {
    /// Waits (blocking the thread) for the event; `Err(Timeout)` after `timeout`.
    pub fn wait_timeout(mut self, timeout: Option<Duration>) -> Result<WatchedEvent> {
        match self.queue.wait_next(timeout) {
            Ok(m) => {
                self.done = true;
                watch_result(m)
            }
            Err(()) => Err(Error::Timeout),
        }
    }

    /// The registration id.
    pub fn id(&self) -> WatcherId {
        self.id
    }
}

fn watch_result(m: Option<WatchMessage>) -> Result<WatchedEvent> {
    match m {
        Some(WatchMessage::Event(e)) => Ok(e),
        Some(WatchMessage::Removed(r)) => Err(match r {
            zk_proto::RemovalReason::SessionEnded(e) | zk_proto::RemovalReason::NotSet(e) => {
                e.into()
            }
            zk_proto::RemovalReason::Removed => Error::WatchRemoved,
            _ => Error::WatchRemoved,
        }),
        None => Err(Error::SessionClosed),
    }
}

/// Owns a watch registration until a watch handle takes it; dropping it first
/// removes the registration (locally, and on the server when it was the last).
pub(crate) struct WatchGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: WatcherId,
    pub(crate) queue: Option<Arc<Queue<WatchMessage>>>,
}

impl WatchGuard {
    pub(crate) fn oneshot(mut self) -> OneshotWatch {
        OneshotWatch {
            shared: self.shared.clone(),
            id: self.id,
            queue: self.queue.take().unwrap_or_else(Queue::new),
            done: false,
        }
    }

    pub(crate) fn stream(mut self) -> WatchStream {
        WatchStream {
            shared: self.shared.clone(),
            id: self.id,
            queue: self.queue.take().unwrap_or_else(Queue::new),
            ended: false,
        }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if self.queue.is_some() {
            self.shared.remove_watcher(self.id);
        }
    }
}

impl Future for OneshotWatch {
    type Output = Result<WatchedEvent>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.queue.poll_next(cx) {
            Poll::Ready(m) => {
                self.done = true;
                Poll::Ready(watch_result(m))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for OneshotWatch {
    fn drop(&mut self) {
        if !self.done {
            self.shared.remove_watcher(self.id);
        }
    }
}

/// A persistent watch: a stream of events until dropped (which removes it) or the session ends.
pub struct WatchStream {
    shared: Arc<Shared>,
    id: WatcherId,
    queue: Arc<Queue<WatchMessage>>,
    ended: bool,
}

impl WatchStream {
    /// The next event; `None` once the watch ended (session over, or removed).
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        if self.ended {
            return None;
        }
        match NextFuture(&self.queue).await {
            Some(WatchMessage::Event(e)) => Some(e),
            _ => {
                self.ended = true;
                None
            }
        }
    }

    /// Blocks for the next event. `Err(Timeout)` when none came in time; `Ok(None)` once ended.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<WatchedEvent>> {
        if self.ended {
            return Ok(None);
        }
        match self.queue.wait_next(timeout) {
            Ok(Some(WatchMessage::Event(e))) => Ok(Some(e)),
            Ok(_) => {
                self.ended = true;
                Ok(None)
            }
            Err(()) => Err(Error::Timeout),
        }
    }

    /// An event if one is already there.
    pub fn try_next(&mut self) -> Option<WatchedEvent> {
        match self.queue.try_next() {
            Some(Some(WatchMessage::Event(e))) => Some(e),
            Some(_) => {
                self.ended = true;
                None
            }
            None => None,
        }
    }

    /// The registration id.
    pub fn id(&self) -> WatcherId {
        self.id
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.remove_watcher(self.id);
        }
    }
}

/// Session state changes, starting with the current state.
pub struct StateStream {
    pub(crate) queue: Arc<Queue<SessionState>>,
}

impl StateStream {
    /// The next state; `None` once the stream ended (after `Closed`, or once the
    /// client is dropped and its driver finished).
    pub async fn next(&mut self) -> Option<SessionState> {
        NextFuture(&self.queue).await
    }

    /// Blocks for the next state; `None` on timeout or once the stream ended.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Option<SessionState> {
        self.queue.wait_next(timeout).ok().flatten()
    }

    /// Blocks for the next state: `Ok(None)` once the stream ended (it ends with
    /// `Closed`, and when the client is dropped), `Err(Timeout)` if nothing came.
    pub fn wait_next(&mut self, timeout: Option<Duration>) -> Result<Option<SessionState>> {
        self.queue.wait_next(timeout).map_err(|()| Error::Timeout)
    }

    /// Waits until `pred` holds for a state.
    pub async fn wait_for(&mut self, pred: impl Fn(SessionState) -> bool) -> Option<SessionState> {
        loop {
            let s = self.next().await?;
            if pred(s) {
                return Some(s);
            }
        }
    }
}
