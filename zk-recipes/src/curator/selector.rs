//! [`LeaderSelector`]: Curator's leader selector on Curator's layout, its
//! leadership a scoped call.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use zk_client::{Client, Result};

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
}

/// One term of a [`LeaderSelector`]'s leadership.
#[derive(Clone)]
pub struct SelectorLeadership {
    guard: MutexGuard,
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

    /// Where the claim stands.
    pub fn status(&self) -> Holding {
        self.guard.status()
    }

    /// Whether it still leads by the rules.
    pub fn is_held(&self) -> bool {
        self.guard.is_held()
    }

    /// Resolves once the rules end this term.
    pub fn ended(&self) -> impl Future<Output = Holding> + Send + 'static {
        self.guard.ended()
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
        })
    }

    /// This contender's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queues, leads while `term` runs, then gives leadership up. `Ok(None)`
    /// when the rules ended the term first (the term's future is dropped
    /// then, as Java interrupts `takeLeadership`).
    pub async fn run<T, F, Fut>(&self, term: F) -> Result<Option<T>>
    where
        F: FnOnce(SelectorLeadership) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.mutex.acquire().await?;
        let l = SelectorLeadership {
            guard: guard.clone(),
        };
        let ended = l.ended();
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
        let l = SelectorLeadership {
            guard: guard.clone(),
        };
        let t = term(&l);
        let held = l.is_held();
        drop(l);
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
