//! [`LeaderSelector`]: Curator's leader selector on Curator's layout, its
//! leadership a scoped call.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use zk_client::{Client, Result};

use crate::common::Cancel;
use crate::curator::latch::participants;
use crate::curator::mutex::{InterProcessMutex, MutexGuard, MutexOptions, MUTEX_LOCK_NAME};
use crate::curator::{ConnectionRules, Participant};
use crate::lock::Holding;
use crate::runtime::Spawner;

/// Options of a [`LeaderSelector`].
#[derive(Clone, Debug, Default)]
pub struct SelectorOptions {
    /// When a term ends early (Curator's connection-state rules: by default
    /// SUSPENDED ends it, as Java's `LeaderSelectorListenerAdapter` cancels
    /// `takeLeadership` then).
    pub rules: ConnectionRules,
    /// Where abandoned contender nodes are removed.
    pub spawner: Spawner,
}

/// Curator's `LeaderSelector`: contenders queue on an [`InterProcessMutex`]
/// whose node data is their id; the holder leads for as long as its
/// leadership call runs ([`run`](LeaderSelector::run), Java's
/// `takeLeadership`), then gives the lock up, and (if it runs again, Java's
/// `autoRequeue`) queues at the back. Java selectors on the same path are
/// contenders of the same election, and Java's `getParticipants` reads this
/// one's id.
///
/// # Layout (Curator 5)
///
/// `<path>/_c_<uuid>-lock-<seq>`, EPHEMERAL_SEQUENTIAL, protected, data =
/// the id in UTF-8 (the local address when the id is empty, as Java's
/// default); the first in order leads.
///
/// # Loss
///
/// The term's [`SelectorLeadership`] says whether it still leads by the rules
/// and resolves [`ended`](SelectorLeadership::ended) when it does not. An
/// async term is also *cancelled* at that moment (its future dropped; Java
/// interrupts `takeLeadership`) and `run` returns `Ok(None)`.
/// [`interrupt_leadership`](LeaderSelector::interrupt_leadership) ends the
/// current term the same way from outside.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::LeaderSelector;
/// let sel = LeaderSelector::new(&zk, "/app/leader", "rust-1")?;
/// loop {
///     // Leads until the future returns; then re-queues.
///     let term = sel.run(|l| async move {
///         println!("leading, token {}", l.fencing_token());
///     }).await?;
///     if term.is_none() {
///         println!("lost leadership mid-term");
///     }
/// #   break;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LeaderSelector {
    client: Client,
    mutex: InterProcessMutex,
    id: String,
    terms: Arc<Terms>,
}

/// The terms of a selector and its clones.
#[derive(Default)]
struct Terms {
    /// Bumped by `interrupt_leadership`: ends every term begun before.
    interrupt: Cancel,
    /// Terms running now.
    running: AtomicUsize,
}

impl std::fmt::Debug for Terms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terms")
            .field("interrupts", &self.interrupt.generation())
            .field("running", &self.running.load(Ordering::SeqCst))
            .finish()
    }
}

/// Counts a term as running while it lives.
struct Running<'a>(&'a Terms);

impl<'a> Running<'a> {
    fn enter(t: &'a Terms) -> Running<'a> {
        t.running.fetch_add(1, Ordering::SeqCst);
        Running(t)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One term of a [`LeaderSelector`]'s leadership.
#[derive(Clone)]
pub struct SelectorLeadership {
    guard: MutexGuard,
    interrupt: Cancel,
    /// The interrupt generation when the term began.
    since: u64,
}

impl std::fmt::Debug for SelectorLeadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectorLeadership")
            .field("node", &self.guard.node_path())
            .finish()
    }
}

impl SelectorLeadership {
    /// The leader node's czxid: larger for every later leader (Java's too).
    pub fn fencing_token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// The leader's node.
    pub fn node_path(&self) -> String {
        self.guard.node_path()
    }

    /// Where the claim stands: [`Holding::Lost`] once the term was
    /// [interrupted](LeaderSelector::interrupt_leadership) (the node goes as
    /// the term ends).
    pub fn status(&self) -> Holding {
        if self.is_interrupted() {
            return Holding::Lost;
        }
        self.guard.status()
    }

    /// Whether it still leads by the rules and was not interrupted.
    pub fn is_held(&self) -> bool {
        !self.is_interrupted() && self.guard.is_held()
    }

    /// Whether [`LeaderSelector::interrupt_leadership`] ended this term.
    pub fn is_interrupted(&self) -> bool {
        self.interrupt.generation() != self.since
    }

    /// Resolves once the rules end this term, or it is interrupted
    /// ([`Holding::Lost`] then).
    pub fn ended(&self) -> impl Future<Output = Holding> + Send + 'static {
        let lost = self.guard.ended();
        let mut interrupted = self.interrupt.wait(self.since);
        async move {
            let mut lost = pin!(lost);
            std::future::poll_fn(|cx| {
                if interrupted.poll_cancelled(cx).is_ready() {
                    return Poll::Ready(Holding::Lost);
                }
                lost.as_mut().poll(cx)
            })
            .await
        }
    }
}

impl LeaderSelector {
    /// A contender on `path` with this id.
    pub fn new(client: &Client, path: &str, id: &str) -> Result<LeaderSelector> {
        LeaderSelector::with_options(client, path, id, SelectorOptions::default())
    }

    /// A contender with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        id: &str,
        opts: SelectorOptions,
    ) -> Result<LeaderSelector> {
        let mutex = InterProcessMutex::with_options(
            client,
            path,
            MutexOptions {
                data: (!id.is_empty()).then(|| id.as_bytes().to_vec()),
                revocable: false,
                rules: opts.rules,
                spawner: opts.spawner,
            },
        )?;
        Ok(LeaderSelector {
            client: client.clone(),
            mutex,
            id: id.to_owned(),
            terms: Arc::default(),
        })
    }

    /// Ends the term running now, if any (Java's `interruptLeadership`): an
    /// async term's future is dropped and its `run` returns `Ok(None)`; a
    /// blocking term sees [`SelectorLeadership::is_held`] turn false. The lock
    /// is released as the term ends; call `run` again to queue again (Java's
    /// `autoRequeue`). A `run` still queued keeps its place (Java's cancels
    /// the queued attempt too, and re-queues it at the back).
    pub fn interrupt_leadership(&self) {
        self.terms.interrupt.cancel()
    }

    /// Whether a term of this selector (or a clone) is running now (Java's
    /// `hasLeadership`).
    pub fn has_leadership(&self) -> bool {
        self.terms.running.load(Ordering::SeqCst) > 0
    }

    fn leadership(&self, guard: &MutexGuard) -> SelectorLeadership {
        SelectorLeadership {
            guard: guard.clone(),
            interrupt: self.terms.interrupt.clone(),
            since: self.terms.interrupt.generation(),
        }
    }

    /// This contender's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queues, leads while `term` runs, then gives leadership up. `Ok(None)`
    /// when the rules ended the term first, or it was
    /// [interrupted](Self::interrupt_leadership) (the term's future is
    /// dropped then, as Java interrupts `takeLeadership`).
    pub async fn run<T, F, Fut>(&self, term: F) -> Result<Option<T>>
    where
        F: FnOnce(SelectorLeadership) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.mutex.acquire().await?;
        let l = self.leadership(&guard);
        let ended = l.ended();
        let running = Running::enter(&self.terms);
        let out = {
            let mut ended = pin!(ended);
            let mut fut = pin!(term(l));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(t) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Some(t));
                }
                ended.as_mut().poll(cx).map(|_| None)
            })
            .await
        };
        drop(running);
        guard.release_tenure().await?;
        Ok(out)
    }

    /// [`run`](Self::run) from a thread: `term` runs on this thread and should
    /// look at [`SelectorLeadership::is_held`] as it goes; `None` when the
    /// term had lost leadership by the time it returned.
    pub fn run_blocking<T>(
        &self,
        term: impl FnOnce(&SelectorLeadership) -> T,
    ) -> Result<Option<T>> {
        let guard = match self.mutex.acquire_blocking(None)? {
            Some(g) => g,
            None => return Err(zk_client::Error::Timeout),
        };
        let l = self.leadership(&guard);
        let running = Running::enter(&self.terms);
        let t = term(&l);
        let held = l.is_held();
        drop((l, running));
        zk_client::blocking::block_on(guard.release_tenure(), None).unwrap_or(Ok(()))?;
        Ok(held.then_some(t))
    }

    /// Every contender in order, the leader first, with the ids their nodes
    /// hold (Java's `getParticipants`).
    pub fn participants(&self) -> impl Future<Output = Result<Vec<Participant>>> + Send + 'static {
        participants(&self.client, self.mutex.path(), MUTEX_LOCK_NAME)
    }

    /// [`participants`](Self::participants) from a thread.
    pub fn participants_blocking(&self) -> Result<Vec<Participant>> {
        zk_client::blocking::block_on(self.participants(), None).unwrap_or(Ok(Vec::new()))
    }
}
