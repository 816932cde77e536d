//! Who hears of the session's state changes: state streams (queues their
//! readers drain) and listeners (called in order on a thread of their own).

use std::sync::mpsc;
use std::sync::Arc;
use std::task::Waker;

use zk_proto::SessionState;

use crate::slot::Queue;

/// States a `StateStream` keeps unread before it drops the oldest: a stream held
/// but never read stays small however long the connection flaps.
const STATE_QUEUE_CAP: usize = 64;
/// State changes queued for the listener thread at most: past it (a listener that
/// never returns), further changes are dropped with a warning.
const LISTENER_BACKLOG: usize = 1024;

pub(crate) type Listener = Arc<dyn Fn(SessionState) + Send + Sync>;

/// The state streams and listeners of one client.
#[derive(Default)]
pub(crate) struct States {
    queues: Vec<Arc<Queue<SessionState>>>,
    listeners: Vec<(u64, Listener)>,
    next_listener: u64,
    /// Listener calls run on their own thread, so a listener may call the client
    /// (even blocking calls) without stalling the reader that would answer it.
    listener_tx: Option<mpsc::SyncSender<(Listener, SessionState)>>,
}

impl States {
    /// The session went to state `to`: every stream still held and every
    /// listener hears of it.
    pub(crate) fn changed(&mut self, to: SessionState, wakers: &mut Vec<Waker>) {
        // A stream nobody holds any more is dropped here, not fed.
        self.queues.retain(|q| Arc::strong_count(q) > 1);
        for q in &self.queues {
            wakers.extend(q.push(to));
            if to == SessionState::Closed {
                wakers.extend(q.close());
            }
        }
        if to == SessionState::Closed {
            self.queues.clear();
        }
        if let Some(tx) = &self.listener_tx {
            for (_, l) in &self.listeners {
                if let Err(mpsc::TrySendError::Full(_)) = tx.try_send((l.clone(), to)) {
                    // A listener that never returns must not grow memory.
                    tracing::warn!(
                        state = ?to,
                        backlog = LISTENER_BACKLOG,
                        "state listeners are this far behind (one is stuck?): change dropped"
                    );
                }
            }
        }
    }

    /// A new stream, starting with the state now (`st`); already ended if the
    /// session is closed or the client `finished`.
    pub(crate) fn stream(&mut self, st: SessionState, finished: bool) -> Arc<Queue<SessionState>> {
        let q = Queue::bounded(STATE_QUEUE_CAP);
        q.push(st);
        self.queues.retain(|q| Arc::strong_count(q) > 1);
        if st == SessionState::Closed || finished {
            q.close();
        } else {
            self.queues.push(q.clone());
        }
        q
    }

    /// Streams still referenced by a reader.
    pub(crate) fn live_streams(&self) -> usize {
        self.queues
            .iter()
            .filter(|q| Arc::strong_count(q) > 1)
            .count()
    }

    pub(crate) fn add_listener(&mut self, l: Listener) -> u64 {
        if self.listener_tx.is_none() {
            self.listener_tx = spawn_listener_thread();
        }
        self.next_listener += 1;
        let id = self.next_listener;
        self.listeners.push((id, l));
        id
    }

    pub(crate) fn remove_listener(&mut self, id: u64) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|(i, _)| *i != id);
        before != self.listeners.len()
    }

    /// The client is finished: nothing can reach the streams any more, so they
    /// end (their readers see the end), and the listener thread ends.
    pub(crate) fn finish(&mut self, wakers: &mut Vec<Waker>) {
        for q in self.queues.drain(..) {
            wakers.extend(q.close());
        }
        self.listeners.clear();
        self.listener_tx = None;
    }
}

/// The listener thread: calls listeners in the order the session changed state,
/// off every I/O thread, and ends when the core drops its sender.
fn spawn_listener_thread() -> Option<mpsc::SyncSender<(Listener, SessionState)>> {
    let (tx, rx) = mpsc::sync_channel::<(Listener, SessionState)>(LISTENER_BACKLOG);
    let spawned = std::thread::Builder::new()
        .name("zk-listeners".into())
        .spawn(move || {
            for (l, s) in rx {
                // A panicking listener must not stop the others.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(s))).is_err() {
                    tracing::error!(state = ?s, "state listener panicked");
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!(error = %e, "could not start the listener thread");
            None
        }
    }
}
