//! One acquisition of a lock: its contender node (made, or found again by its
//! prefix after a create whose answer was lost), its place among the
//! contenders, and the wait on the one ahead of it; and the guard that removes
//! its node if it ends without the lock.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use zk_client::{CreateMode, CreateOptions, Error, ErrorCode, Result, Stat};

use super::cleanup::{CreateFuture, Leftover};
use super::core::{Flavor, LockCore, Wait};
use super::guard::LockGuard;
use super::order::{curator_seq, curator_sorted, own_seq, sorted_contenders};
use crate::common::{cancellable, either, join, retryable, settle, uuid_hex, wait_connected};
use crate::mailbox::lock;
use crate::runtime::Spawner;

impl LockCore {
    pub(crate) fn acquire(
        self: &Arc<Self>,
        wait: Wait,
    ) -> impl Future<Output = Result<Option<LockGuard>>> + Send + 'static {
        let prefix = match self.flavor {
            Flavor::Kazoo => format!("{}{}", uuid_hex(), self.node_name),
            _ => format!("{}{}", crate::curator::protected_prefix(), self.node_name),
        };
        let attempt = Arc::new(Attempt {
            core: self.clone(),
            prefix,
            st: Mutex::new(AttemptState::default()),
        });
        let since = self.cancel.generation();
        async move {
            let guard = AttemptGuard(Some(attempt.clone()));
            let cancel = attempt.core.cancel.wait(since);
            let result = cancellable(attempt.run(wait), cancel, wait.limit()).await;
            match result {
                Ok(Some(held)) => Ok(Some(guard.into_lock_guard(held))),
                // Not acquired: remove our node before answering, if that can be
                // done at once (otherwise it goes on in the background).
                other => {
                    guard.cleanup_now().await;
                    other.map(|_| None)
                }
            }
        }
    }
}

#[derive(Default)]
struct AttemptState {
    /// Our contender node's name (not path), once known, and its czxid.
    node: Option<(String, Option<Made>)>,
    /// A create was sent whose outcome is not known: the node may exist.
    create_tried: bool,
    /// The create in flight, so that a cleanup can wait for its answer.
    pending: Option<CreateFuture>,
}

/// One acquisition: its own uuid prefix, the node once created, and the create
/// in flight. Shared with whatever cleans up after it.
struct Attempt {
    core: Arc<LockCore>,
    prefix: String,
    st: Mutex<AttemptState>,
}

/// Who made our node: its creation zxid (the fencing token) and the session
/// that owns it (its `ephemeralOwner`).
#[derive(Clone, Copy)]
struct Made {
    czxid: i64,
    owner: i64,
}

/// What was leased when the lock was acquired.
struct Held {
    node: String,
    seq: i64,
    czxid: i64,
    session: i64,
}

/// Whether the step went through, or needs the loop to start over.
enum Step<T> {
    Done(T),
    Again,
}

impl Attempt {
    fn set_node(&self, node: Option<(String, Option<Made>)>) {
        let mut s = lock(&self.st);
        s.create_tried = false;
        s.node = node;
    }

    /// Sends the create now and waits for it, keeping the future where a cleanup
    /// can take it over if this acquisition is dropped meanwhile.
    async fn create(&self) -> Result<(String, Stat)> {
        let core = &self.core;
        let f = core.client.create_with(
            &join(&core.path, &self.prefix),
            core.data.as_slice(),
            &CreateOptions::mode(CreateMode::EphemeralSequential),
        );
        {
            let mut s = lock(&self.st);
            s.create_tried = true;
            s.pending = Some(Box::pin(f));
        }
        let r = std::future::poll_fn(|cx| {
            let mut s = lock(&self.st);
            match s.pending.as_mut() {
                Some(f) => f.as_mut().poll(cx),
                None => Poll::Ready(Err(Error::ConnectionLoss)),
            }
        })
        .await;
        lock(&self.st).pending = None;
        r
    }

    /// Our node: the known one, one found by our prefix after a create whose
    /// outcome was unknown, or a new one.
    async fn own_node(&self, ensured: &mut bool) -> Result<Step<(String, Option<Made>)>> {
        let core = &self.core;
        let (known, tried) = {
            let s = lock(&self.st);
            (s.node.clone(), s.create_tried)
        };
        if let Some(n) = known {
            return Ok(Step::Done(n));
        }
        if tried {
            // kazoo's _find_node (Curator's protection): the create may have
            // been applied though its answer was lost.
            match core.client.get_children(&core.path).await {
                Ok(kids) => {
                    if let Some(k) = kids.into_iter().find(|k| k.starts_with(&self.prefix)) {
                        let n = (k, None);
                        self.set_node(Some(n.clone()));
                        return Ok(Step::Done(n));
                    }
                    lock(&self.st).create_tried = false;
                }
                Err(Error::Server(ErrorCode::NoNode)) => {
                    *ensured = false;
                    lock(&self.st).create_tried = false;
                }
                Err(e) => return Err(e),
            }
        }
        if !*ensured && !core.assured.load(Ordering::SeqCst) {
            if core.flavor == Flavor::Kazoo {
                core.client.ensure_path(&core.path).await?;
            } else {
                crate::curator::ensure_containers(&core.client, &core.path).await?;
            }
            core.assured.store(true, Ordering::SeqCst);
            *ensured = true;
        }
        match self.create().await {
            Ok((path, stat)) => {
                let name = path.rsplit('/').next().unwrap_or_default().to_string();
                let n = (
                    name,
                    Some(Made {
                        czxid: stat.czxid,
                        owner: stat.ephemeral_owner,
                    }),
                );
                self.set_node(Some(n.clone()));
                Ok(Step::Done(n))
            }
            // The parent went (a container, or deleted): make it again.
            Err(Error::Server(ErrorCode::NoNode)) => {
                *ensured = false;
                core.assured.store(false, Ordering::SeqCst);
                lock(&self.st).create_tried = false;
                Ok(Step::Again)
            }
            Err(e) => Err(e),
        }
    }

    async fn run(&self, wait: Wait) -> Result<Option<Held>> {
        let mut ensured = false;
        loop {
            match self.step(wait, &mut ensured).await {
                Ok(Step::Done(r)) => return Ok(r),
                Ok(Step::Again) => {}
                Err(e) if retryable(&e) => settle(&self.core.client, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// One pass of kazoo's `_inner_acquire`: our node, the children, and either
    /// the lock, a refusal (not waiting), or a wait on the predecessor.
    async fn step(&self, wait: Wait, ensured: &mut bool) -> Result<Step<Option<Held>>> {
        let core = &self.core;
        let c = &core.client;
        wait_connected(c).await?;
        let (node, made) = match self.own_node(ensured).await? {
            Step::Done(n) => n,
            Step::Again => return Ok(Step::Again),
        };
        // Subscribed before the reads, so no state change after them is missed.
        let mut states = c.state_stream();
        let _ = states.next().await; // the current state
        let kids = match c.get_children(&core.path).await {
            Err(Error::Server(ErrorCode::NoNode)) => Vec::new(),
            r => r?,
        };
        if !kids.contains(&node) {
            // Our node is gone (the session that made it ended): queue again.
            self.set_node(None);
            *ensured = false;
            return Ok(Step::Again);
        }
        let (own_seq, pred) = match core.flavor {
            Flavor::Kazoo => {
                let own_seq = own_seq(&node, &self.prefix)?;
                let pred = sorted_contenders(kids, &core.waits_for)
                    .into_iter()
                    .rfind(|(s, _)| *s < own_seq)
                    .map(|p| p.1);
                (own_seq, pred)
            }
            flavor => {
                let sorted = curator_sorted(kids, core.sort_names);
                let Some(ours) = sorted.iter().position(|k| *k == node) else {
                    return Ok(Step::Again);
                };
                let pred = match flavor {
                    Flavor::Curator { max_leases } => {
                        ours.checked_sub(max_leases).map(|i| sorted[i].clone())
                    }
                    _ => sorted[..ours]
                        .iter()
                        .find(|k| k.contains(crate::curator::WRITE_LOCK_NAME))
                        .cloned(),
                };
                (curator_seq(&node), pred)
            }
        };
        let Some(pred) = pred else {
            let made = match made {
                Some(m) => m,
                None => match c.exists(&join(&core.path, &node)).await? {
                    Some(s) => Made {
                        czxid: s.czxid,
                        owner: s.ephemeral_owner,
                    },
                    None => {
                        self.set_node(None);
                        return Ok(Step::Again);
                    }
                },
            };
            // The node's owner, not the client's session now: if the session
            // changed since the node was made, the lock is not held by this
            // one, and the guard must say so.
            return Ok(Step::Done(Some(Held {
                node,
                seq: own_seq,
                czxid: made.czxid,
                session: made.owner,
            })));
        };
        if wait == Wait::No {
            return Ok(Step::Done(None));
        }
        // Watch only the immediate predecessor, with a data watch (nothing is
        // left behind if it is already gone), and wake on any state change.
        let watch = match c.get_data_watch(&join(&core.path, &pred)).await {
            Err(Error::Server(ErrorCode::NoNode)) => return Ok(Step::Again),
            r => r?.2,
        };
        either(watch, states.next()).await;
        Ok(Step::Again)
    }
}

/// Owns an acquisition until it becomes a [`LockGuard`]: dropped before that
/// (the acquire future dropped, a timeout, a refusal), it removes the node.
struct AttemptGuard(Option<Arc<Attempt>>);

impl AttemptGuard {
    fn leftover(&mut self) -> Option<(Leftover, Spawner)> {
        let a = self.0.take()?;
        let mut s = lock(&a.st);
        let l = Leftover {
            client: a.core.client.clone(),
            path: a.core.path.clone(),
            prefix: a.prefix.clone(),
            node: s.node.take().map(|n| n.0),
            pending: s.pending.take(),
            search: s.create_tried,
        };
        Some((l, a.core.spawner.clone()))
    }

    async fn cleanup_now(mut self) {
        if let Some((l, spawner)) = self.leftover() {
            if let Some(rest) = l.run(false).await {
                rest.spawn(&spawner);
            }
        }
    }

    fn into_lock_guard(mut self, held: Held) -> LockGuard {
        let a = self.0.take().expect("an attempt owns its guard until here");
        LockGuard::new(
            a.core.clone(),
            held.node,
            held.seq,
            held.czxid,
            held.session,
        )
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some((l, spawner)) = self.leftover() {
            if l.node.is_some() || l.pending.is_some() || l.search {
                l.spawn(&spawner);
            }
        }
    }
}
