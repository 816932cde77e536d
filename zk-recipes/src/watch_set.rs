//! Many one-shot watches polled as one: only the watches whose waker fired are
//! polled again, so ten thousand armed watches cost nothing while quiet.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use zk_client::{OneshotWatch, Result, WatchedEvent};

use crate::mailbox::lock;

#[derive(Default)]
struct Ready {
    ids: Vec<u64>,
    parent: Option<Waker>,
}

struct IdWaker {
    id: u64,
    ready: Arc<Mutex<Ready>>,
}

impl Wake for IdWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let mut r = lock(&self.ready);
        r.ids.push(self.id);
        let w = r.parent.clone();
        drop(r);
        if let Some(w) = w {
            w.wake();
        }
    }
}

struct Entry<K> {
    key: K,
    watch: OneshotWatch,
    waker: Waker,
}

/// One watch per key; a new one for a key replaces (drops) the old.
pub(crate) struct WatchSet<K> {
    entries: HashMap<u64, Entry<K>>,
    by_key: HashMap<K, u64>,
    ready: Arc<Mutex<Ready>>,
    next: u64,
}

impl<K: Clone + Eq + Hash> WatchSet<K> {
    pub(crate) fn new() -> Self {
        WatchSet {
            entries: HashMap::new(),
            by_key: HashMap::new(),
            ready: Arc::new(Mutex::new(Ready::default())),
            next: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds `watch` under `key`; the watch it replaces is dropped after the new
    /// one is in place (so the server's watch on the path stays).
    pub(crate) fn insert(&mut self, key: K, watch: OneshotWatch) {
        let id = self.next;
        self.next += 1;
        let waker = Waker::from(Arc::new(IdWaker {
            id,
            ready: self.ready.clone(),
        }));
        self.entries.insert(
            id,
            Entry {
                key: key.clone(),
                watch,
                waker,
            },
        );
        if let Some(old) = self.by_key.insert(key, id) {
            self.entries.remove(&old);
        }
        // Polled once, so it registers its own waker.
        lock(&self.ready).ids.push(id);
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(id) = self.by_key.remove(key) {
            self.entries.remove(&id);
        }
    }

    /// The next watch that fired (removed from the set), with its key.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<(K, Result<WatchedEvent>)> {
        loop {
            let ids = {
                let mut r = lock(&self.ready);
                match &r.parent {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => r.parent = Some(cx.waker().clone()),
                }
                std::mem::take(&mut r.ids)
            };
            if ids.is_empty() {
                return Poll::Pending;
            }
            let mut fired = None;
            let mut rest = Vec::new();
            for id in ids {
                if fired.is_some() {
                    rest.push(id);
                    continue;
                }
                let Some(e) = self.entries.get_mut(&id) else {
                    continue;
                };
                let mut wcx = Context::from_waker(&e.waker);
                if let Poll::Ready(r) = Pin::new(&mut e.watch).poll(&mut wcx) {
                    let e = self.entries.remove(&id).expect("entry just polled");
                    if self.by_key.get(&e.key) == Some(&id) {
                        self.by_key.remove(&e.key);
                    }
                    fired = Some((e.key, r));
                }
            }
            if !rest.is_empty() {
                lock(&self.ready).ids.extend(rest);
            }
            if let Some(f) = fired {
                return Poll::Ready(f);
            }
        }
    }
}
