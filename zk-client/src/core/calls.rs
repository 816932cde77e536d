//! The call table: each submitted call's reply slot and each watch
//! registration's queue, filled as the session completes calls and fires,
//! removes or overflows watches.

use std::sync::Arc;
use std::task::Waker;

use zk_proto::{RemovalReason, RequestId, Response, WatchedEvent, WatcherId, ZkError};

use crate::id_map::IdMap;
use crate::slot::{Queue, Slot};
use crate::telemetry::Telemetry;

/// A call's outcome, as its slot holds it.
pub(crate) type Reply = Result<Response, ZkError>;

/// Default events a persistent watch keeps unread (`ClientBuilder::watch_backlog`).
pub(crate) const DEFAULT_WATCH_BACKLOG: usize = 65_536;

/// A submitted call's reply slot, and its watch registration if it asked for one.
pub(crate) type Registered = (
    Arc<Slot<Reply>>,
    Option<(WatcherId, Arc<Queue<WatchMessage>>)>,
);

/// What a watch registration delivers: events, then an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    /// The watch fired.
    Event(WatchedEvent),
    /// The registration ended without (more) events.
    Removed(RemovalReason),
    /// A persistent watch's reader fell more than the backlog behind: the watch
    /// was removed, and events after the ones queued were not kept.
    Overflowed,
}

/// A watch registration's queue, as the core routes to it.
struct WatchEntry {
    queue: Arc<Queue<WatchMessage>>,
    /// One-shot registrations end with their first event.
    oneshot: bool,
}

/// The calls waiting for a reply and the watch registrations with a queue.
pub(crate) struct Calls {
    calls: IdMap<RequestId, Arc<Slot<Reply>>>,
    watchers: IdMap<WatcherId, WatchEntry>,
    /// See [`DEFAULT_WATCH_BACKLOG`].
    watch_backlog: usize,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            calls: IdMap::default(),
            watchers: IdMap::default(),
            watch_backlog: DEFAULT_WATCH_BACKLOG,
        }
    }
}

impl Calls {
    /// A slot for call `id`, and a queue for its watch registration if it made one.
    pub(crate) fn register(
        &mut self,
        id: RequestId,
        watcher: Option<WatcherId>,
        oneshot: bool,
    ) -> Registered {
        let slot = self.register_call(id);
        let q = watcher.map(|w| {
            let queue = Queue::new();
            self.watchers.insert(
                w,
                WatchEntry {
                    queue: queue.clone(),
                    oneshot,
                },
            );
            (w, queue)
        });
        (slot, q)
    }

    /// A slot for call `id` (one that registers no watch).
    pub(crate) fn register_call(&mut self, id: RequestId) -> Arc<Slot<Reply>> {
        let slot = Slot::new();
        self.calls.insert(id, slot.clone());
        slot
    }

    pub(crate) fn set_watch_backlog(&mut self, events: usize) {
        self.watch_backlog = events.max(1);
    }

    pub(crate) fn watch_backlog(&self) -> usize {
        self.watch_backlog
    }

    /// Call `id` completed: fills its slot; gives the result back if no call of
    /// the client's waits for it (the core's own reads).
    pub(crate) fn complete(
        &mut self,
        id: RequestId,
        result: Reply,
        wakers: &mut Vec<Waker>,
    ) -> Option<Reply> {
        match self.calls.remove(&id) {
            Some(slot) => {
                wakers.extend(slot.fill(result));
                None
            }
            None => Some(result),
        }
    }

    /// A watch fired: queued for its registration (which a one-shot watch ends).
    /// `true` if the registration overflowed instead: it is ended here, and the
    /// session must forget the watch.
    pub(crate) fn fire(
        &mut self,
        watcher: WatcherId,
        event: WatchedEvent,
        tele: &Telemetry,
        wakers: &mut Vec<Waker>,
    ) -> bool {
        let (end, overflow) = match self.watchers.get(&watcher) {
            Some(w) if !w.oneshot && w.queue.len() >= self.watch_backlog => {
                wakers.extend(w.queue.push(WatchMessage::Overflowed));
                (true, true)
            }
            Some(w) => {
                tele.watch_delivered();
                wakers.extend(w.queue.push(WatchMessage::Event(event)));
                (w.oneshot, false)
            }
            None => (false, false),
        };
        if end {
            if let Some(w) = self.watchers.remove(&watcher) {
                wakers.extend(w.queue.close());
            }
        }
        overflow
    }

    /// The session removed a watch registration: its queue gets the reason, then its end.
    pub(crate) fn removed(
        &mut self,
        watcher: WatcherId,
        reason: RemovalReason,
        wakers: &mut Vec<Waker>,
    ) {
        if let Some(w) = self.watchers.remove(&watcher) {
            wakers.extend(w.queue.push(WatchMessage::Removed(reason)));
            wakers.extend(w.queue.close());
        }
    }

    /// The registration's holder is gone: its queue is dropped without an end.
    pub(crate) fn forget_watcher(&mut self, watcher: WatcherId) {
        self.watchers.remove(&watcher);
    }

    /// Calls waiting for a reply.
    pub(crate) fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Watch registrations with a queue.
    pub(crate) fn watch_queues(&self) -> usize {
        self.watchers.len()
    }
}
