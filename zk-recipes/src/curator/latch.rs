//! [`LeaderLatch`]: Curator's leader latch on Curator's layout.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use zk_client::{Client, Error, Result};

use crate::common::{
    children_data, children_or_none, data_text, retryable, retrying, settle, Cancel, Delay,
};
use crate::curator::state::{Claim, ConnectionRules};
use crate::lock::{curator_sorted, Flavor, LockCore, Wait};
use crate::mailbox::lock;
use crate::runtime::Spawner;

/// The lock name of a latch's nodes.
pub(crate) const LATCH_NAME: &str = "latch-";

/// Options of a [`LeaderLatch`].
#[derive(Clone, Debug, Default)]
pub struct LatchOptions {
    /// When leadership ends (Curator's connection-state rules).
    pub rules: ConnectionRules,
    /// Where the latch's loop runs. Default: a thread of its own.
    pub spawner: Spawner,
}

/// A participant as Java's `LeaderLatch.getParticipants` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// The participant's id (its node's data, UTF-8).
    pub id: String,
    /// Whether it is the leader (the first node in order).
    pub is_leader: bool,
}

struct State {
    leader: Option<Arc<Claim>>,
    started: bool,
    closed: bool,
}

struct Inner {
    core: Arc<LockCore>,
    id: String,
    rules: ConnectionRules,
    spawner: Spawner,
    st: Mutex<State>,
    /// Bumped on every change of leadership (and on close).
    changed: Cancel,
    closing: Cancel,
}

/// Curator's `LeaderLatch`: every participant keeps a node on the latch path;
/// the first in order leads until it closes or loses its claim. A Java
/// `LeaderLatch` and this one on the same path are participants of one
/// election, and Java's `getParticipants` reads this one's id.
///
/// # Layout (Curator 5)
///
/// Each participant creates an EPHEMERAL_SEQUENTIAL, protected node
/// `<path>/_c_<uuid>-latch-<seq>` whose data is its id in UTF-8 (empty for
/// ""). Parents are containers. Every child is sorted by the text after the
/// last `latch-`; the first leads; the others each watch their predecessor
/// with a data watch.
///
/// # Loss
///
/// Leadership follows [Curator's connection-state rules](ConnectionRules): by
/// default a SUSPENDED connection ends it at once (as Java's latch does with
/// the standard error policy); then the latch deletes its node, and makes a
/// new one (at the back of the queue) once connected, as Java's `reset()` on
/// RECONNECTED. [`has_leadership`](LeaderLatch::has_leadership) is false from
/// that moment. [`leadership`](LeaderLatch::leadership) gives the tenure's
/// fencing token and a future that resolves when it ends.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::curator::LeaderLatch;
/// let latch = LeaderLatch::new(&zk, "/app/leader", "rust-1")?;
/// latch.start();
/// if latch.await_leadership(Some(Duration::from_secs(10))).await {
///     let l = latch.leadership().expect("leading");
///     println!("leading with token {}", l.fencing_token());
/// }
/// println!("{:?}", latch.participants().await?);
/// latch.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LeaderLatch {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LeaderLatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLatch")
            .field("path", &self.inner.core.path)
            .field("id", &self.inner.id)
            .finish()
    }
}

/// A tenure of a [`LeaderLatch`]'s leadership.
#[derive(Clone)]
pub struct LatchLeadership {
    claim: Arc<Claim>,
}

impl std::fmt::Debug for LatchLeadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatchLeadership")
            .field("fencing_token", &self.fencing_token())
            .finish()
    }
}

impl LatchLeadership {
    claim_accessors!(claim);
}

impl LeaderLatch {
    /// A participant on `path` with this id (not started).
    pub fn new(client: &Client, path: &str, id: &str) -> Result<LeaderLatch> {
        LeaderLatch::with_options(client, path, id, LatchOptions::default())
    }

    /// A participant with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        id: &str,
        opts: LatchOptions,
    ) -> Result<LeaderLatch> {
        let core = LockCore::curator(
            client,
            path,
            id.as_bytes().to_vec(),
            LATCH_NAME,
            &[LATCH_NAME],
            Flavor::Curator { max_leases: 1 },
            opts.spawner.clone(),
        )?;
        Ok(LeaderLatch {
            inner: Arc::new(Inner {
                core,
                id: id.to_owned(),
                rules: opts.rules,
                spawner: opts.spawner,
                st: Mutex::new(State {
                    leader: None,
                    started: false,
                    closed: false,
                }),
                changed: Cancel::default(),
                closing: Cancel::default(),
            }),
        })
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Joins the election (Java's `start()`): the latch's loop runs on the
    /// spawner until [`close`](LeaderLatch::close). Starting twice is harmless.
    pub fn start(&self) {
        {
            let mut s = lock(&self.inner.st);
            if s.started || s.closed {
                return;
            }
            s.started = true;
        }
        let inner = self.inner.clone();
        self.inner.spawner.spawn(
            "zk-curator-latch",
            Box::pin(async move { inner.run().await }),
        );
    }

    /// Whether this participant leads now, by the rules (Java's `hasLeadership`).
    pub fn has_leadership(&self) -> bool {
        self.leadership().is_some()
    }

    /// The current tenure, if leading.
    pub fn leadership(&self) -> Option<LatchLeadership> {
        let claim = lock(&self.inner.st).leader.clone()?;
        claim.is_held().then_some(LatchLeadership { claim })
    }

    /// Waits until leading (Java's `await`); false when `timeout` passed or
    /// the latch closed first.
    pub fn await_leadership(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = bool> + Send + 'static {
        let this = self.clone();
        let deadline = Delay::new_opt(timeout);
        async move {
            let mut deadline = pin!(deadline);
            loop {
                let gen = this.inner.changed.generation();
                if this.has_leadership() {
                    return true;
                }
                if lock(&this.inner.st).closed {
                    return false;
                }
                // Also look again every 100 ms: the rules can end a claim
                // without a change being announced.
                let mut tick = pin!(Delay::new(Duration::from_millis(100)));
                let mut changed = this.inner.changed.wait(gen);
                let timed_out = std::future::poll_fn(|cx| {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(true);
                    }
                    if changed.poll_cancelled(cx).is_ready() || tick.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    Poll::Pending
                })
                .await;
                if timed_out {
                    return this.has_leadership();
                }
            }
        }
    }

    /// [`await_leadership`](Self::await_leadership) from a thread.
    pub fn await_leadership_blocking(&self, timeout: Option<Duration>) -> bool {
        zk_client::blocking::block_on(self.await_leadership(timeout), None).unwrap_or(false)
    }

    /// Every participant in order, the leader first, with the ids their nodes
    /// hold (Java's `getParticipants`; nodes gone meanwhile are left out).
    pub fn participants(&self) -> impl Future<Output = Result<Vec<Participant>>> + Send + 'static {
        participants(&self.inner.core.client, &self.inner.core.path, LATCH_NAME)
    }

    /// [`participants`](Self::participants) from a thread.
    pub fn participants_blocking(&self) -> Result<Vec<Participant>> {
        zk_client::blocking::block_on(self.participants(), None).unwrap_or(Ok(Vec::new()))
    }

    /// Leaves the election (Java's `close()`): stops the loop, gives up
    /// leadership and deletes the node (in the background if the connection
    /// is down).
    pub fn close(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = self.inner.clone();
        let claim = {
            let mut s = lock(&inner.st);
            s.closed = true;
            s.leader.take()
        };
        inner.core.cancel();
        inner.closing.cancel();
        inner.changed.cancel();
        async move {
            if let Some(c) = claim {
                if let Err(e) = c.guard.release_shared().await {
                    tracing::warn!(error = %e, "closing a latch: its node goes with the session");
                }
            }
        }
    }

    /// [`close`](Self::close) from a thread.
    pub fn close_blocking(&self) {
        zk_client::blocking::block_on(self.close(), None);
    }
}

impl Inner {
    async fn run(self: Arc<Self>) {
        let since = self.closing.generation();
        loop {
            if lock(&self.st).closed {
                return;
            }
            let guard = match self.core.acquire(Wait::Forever).await {
                Ok(Some(g)) => g,
                Ok(None) | Err(Error::Interrupted) => return,
                Err(e) if retryable(&e) => {
                    if settle(&self.core.client, &e).await.is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(path = %self.core.path, error = %e, "leader latch stopped");
                    return;
                }
            };
            let claim = Arc::new(Claim::new(&self.core.client, guard, self.rules));
            let closed = {
                let mut s = lock(&self.st);
                if !s.closed {
                    s.leader = Some(claim.clone());
                }
                s.closed
            };
            if closed {
                let _ = claim.guard.release_shared().await;
                return;
            }
            self.changed.cancel();
            let ended = claim.ended();
            let mut ended = pin!(ended);
            let mut closing = self.closing.wait(since);
            let closed = std::future::poll_fn(|cx| {
                if closing.poll_cancelled(cx).is_ready() {
                    return Poll::Ready(true);
                }
                ended.as_mut().poll(cx).map(|_| false)
            })
            .await;
            lock(&self.st).leader = None;
            self.changed.cancel();
            // Java's reset(): the old node goes, a new one queues at the back.
            let _ = claim.guard.release_shared().await;
            if closed {
                return;
            }
        }
    }
}

/// The participants of a Curator latch or selector on `path`: children sorted
/// by the text after `name`, each node's data as the id, the first leading.
pub(crate) fn participants(
    client: &Client,
    path: &str,
    name: &'static str,
) -> impl Future<Output = Result<Vec<Participant>>> + Send + 'static {
    let (c, path) = (client.clone(), path.to_owned());
    async move {
        retrying(&c, || async {
            let sorted = curator_sorted(children_or_none(&c, &path).await?, &[name]);
            let read = children_data(&c, &path, sorted).await?;
            Ok(read
                .into_iter()
                .enumerate()
                .map(|(i, (_, d))| Participant {
                    id: data_text(&d),
                    is_leader: i == 0,
                })
                .collect())
        })
        .await
    }
}
