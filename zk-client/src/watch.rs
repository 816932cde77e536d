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
///
/// It is a future: `.await` it, or block on it with
/// [`wait_timeout`](OneshotWatch::wait_timeout). It resolves with `Err` instead of
/// an event when the watch can no longer fire: [`Error::WatchRemoved`] after
/// `remove_watches`, [`Error::SessionExpired`] or [`Error::SessionClosed`] when
/// the session ended. A watch survives reconnections within one session (the
/// client sets it again on the new connection).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_client::{Error, EventType};
/// let (stat, watch) = zk.exists_watch("/ready").await?;
/// if stat.is_none() {
///     match watch.await {
///         Ok(e) if e.event_type == EventType::NodeCreated => println!("ready"),
///         Ok(e) => println!("{e:?}"),
///         Err(Error::SessionExpired) => println!("session gone: read and watch again"),
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok(()) }
/// ```
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
        // Only persistent watches overflow; a one-shot holds one event.
        Some(WatchMessage::Overflowed) => Err(Error::WatchRemoved),
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
            overflowed: false,
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
///
/// Made by [`Client::add_watch`](crate::Client::add_watch). Unlike a one-shot
/// watch it stays set after each event, so nothing is missed between events
/// while connected; changes made while the client was disconnected are not
/// replayed (read the node again after a reconnection if you need them).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_client::AddWatchMode;
/// let mut events = zk.add_watch("/app/config", AddWatchMode::Persistent).await?;
/// let first = events.next().await; // None once the session ended
/// drop(events); // removes the watch, on the server too
/// # let _ = first; Ok(()) }
/// ```
pub struct WatchStream {
    shared: Arc<Shared>,
    id: WatcherId,
    queue: Arc<Queue<WatchMessage>>,
    ended: bool,
    overflowed: bool,
}

impl WatchStream {
    /// The next event; `None` once the watch ended (session over, or removed).
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        if self.ended {
            return None;
        }
        let m = NextFuture(&self.queue).await;
        self.take(m)
    }

    fn take(&mut self, m: Option<WatchMessage>) -> Option<WatchedEvent> {
        match m {
            Some(WatchMessage::Event(e)) => Some(e),
            other => {
                self.overflowed |= other == Some(WatchMessage::Overflowed);
                self.ended = true;
                None
            }
        }
    }

    /// Whether the watch ended because its reader fell more than the client's
    /// [`watch_backlog`](crate::ClientBuilder::watch_backlog) behind: events after
    /// the ones it yielded were lost. Read the nodes again and add a new watch.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Blocks for the next event. `Err(Timeout)` when none came in time; `Ok(None)` once ended.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<WatchedEvent>> {
        if self.ended {
            return Ok(None);
        }
        match self.queue.wait_next(timeout) {
            Ok(m) => Ok(self.take(m)),
            Err(()) => Err(Error::Timeout),
        }
    }

    /// An event if one is already there.
    pub fn try_next(&mut self) -> Option<WatchedEvent> {
        match self.queue.try_next() {
            Some(m) => self.take(m),
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

/// Session state changes, starting with the current state. Made by
/// [`Client::state_stream`](crate::Client::state_stream); read it with `next().await` or,
/// from a thread, [`recv_timeout`](StateStream::recv_timeout).
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) {
/// use std::time::Duration;
/// let mut states = zk.state_stream();
/// while let Some(state) = states.recv_timeout(Some(Duration::from_secs(60))) {
///     println!("{state:?}");
/// }
/// # }
/// ```
pub struct StateStream {
    pub(crate) queue: Arc<Queue<SessionState>>,
}

/// A dropped stream lets go of its reader's waker (and of any state not read)
/// at once: the client drops its own reference to the queue only at its next
/// state change, and the waker would keep the reader's task alive until then.
impl Drop for StateStream {
    fn drop(&mut self) {
        drop(self.queue.close());
    }
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
