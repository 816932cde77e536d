//! [`InterProcessMutex`] and [`InterProcessReadWriteLock`]: Curator's locks on
//! Curator's layout, re-entrant per handle, with revocation, fencing tokens
//! and Curator's connection-state rules.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use zk_client::{Client, Error, ErrorCode, Result};

use crate::common::{children_or_none, join, retrying, settle};
use crate::curator::state::{Claim, ConnectionRules};
use crate::curator::{local_address, READ_LOCK_NAME, WRITE_LOCK_NAME};
use crate::lock::{curator_sorted, Flavor, Holding, LockCore, Wait};
use crate::mailbox::lock;
use crate::runtime::Spawner;

/// The data Curator's `Revoker.attemptRevoke` writes into a holder's node.
pub const REVOKE_MESSAGE: &[u8] = b"__REVOKE__";

/// The lock name of an `InterProcessMutex`'s nodes.
pub(crate) const MUTEX_LOCK_NAME: &str = "lock-";

/// Options of the Curator-layout locks.
#[derive(Clone, Debug, Default)]
pub struct MutexOptions {
    /// The contender node's data; `None`: Curator's default, the local
    /// address ([`local_address`](crate::curator::local_address)). A revocable lock writes empty
    /// data whatever this says, as Curator does.
    pub data: Option<Vec<u8>>,
    /// Curator's `makeRevocable`: the node is created empty so that another
    /// process's [`revoke`] (`Revoker.attemptRevoke`) can be seen; the holder
    /// learns of it through [`MutexGuard::revocation_requested`].
    pub revocable: bool,
    /// When the holder's claim ends (Curator's connection-state rules).
    pub rules: ConnectionRules,
    /// Where abandoned contender nodes are removed when that cannot be done at
    /// once. Default: a thread of its own.
    pub spawner: Spawner,
}

impl MutexOptions {
    fn node_data(&self) -> Vec<u8> {
        if self.revocable {
            return Vec::new();
        }
        self.data
            .clone()
            .unwrap_or_else(|| local_address().as_bytes().to_vec())
    }
}

/// Asks the holder of the lock node `node` to release it (Curator's
/// `Revoker.attemptRevoke`): writes [`REVOKE_MESSAGE`] into it. A node already
/// gone is fine. Only revocable holders (Java's `makeRevocable`, or
/// [`MutexOptions::revocable`]) listen.
pub fn revoke(client: &Client, node: &str) -> impl Future<Output = Result<()>> + Send + 'static {
    let (c, node) = (client.clone(), node.to_owned());
    async move {
        retrying(&c, || async {
            match c.set_data(&node, REVOKE_MESSAGE, None).await {
                Ok(_) | Err(Error::Server(ErrorCode::NoNode)) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// One tenure, shared by the re-entrant guards of one handle; the node is
/// released when the last guard goes.
struct Tenure {
    claim: Arc<Claim>,
}

/// A lock handle: the layout core, and the tenure its guards share.
#[derive(Clone)]
struct Handle {
    core: Arc<LockCore>,
    rules: ConnectionRules,
    held: Arc<Mutex<Weak<Tenure>>>,
}

impl Handle {
    fn acquire(
        &self,
        wait: Wait,
    ) -> impl Future<Output = Result<Option<MutexGuard>>> + Send + 'static {
        let this = self.clone();
        let first = self.reentered();
        let f = first.is_none().then(|| self.core.acquire(wait));
        async move {
            if let Some(g) = first {
                return Ok(Some(g));
            }
            let Some(f) = f else { return Ok(None) };
            let Some(guard) = f.await? else {
                return Ok(None);
            };
            let tenure = Arc::new(Tenure {
                claim: Arc::new(Claim::new(&this.core.client, guard, this.rules)),
            });
            let mut held = lock(&this.held);
            // Another acquisition through this handle may have won meanwhile:
            // both hold their own node; the later one becomes the shared one.
            *held = Arc::downgrade(&tenure);
            Ok(Some(MutexGuard { tenure }))
        }
    }

    /// Curator's re-entrancy: a handle that holds the lock gets it again at once.
    fn reentered(&self) -> Option<MutexGuard> {
        let t = lock(&self.held).upgrade()?;
        (t.claim.status() != Holding::Lost).then_some(MutexGuard { tenure: t })
    }

    fn is_held(&self) -> bool {
        lock(&self.held)
            .upgrade()
            .is_some_and(|t| t.claim.is_held())
    }
}

/// Curator's `InterProcessMutex`, on Curator's layout: a Java
/// `InterProcessMutex` on the same path and this one exclude each other.
///
/// # Layout (Curator 5)
///
/// Each acquisition creates an EPHEMERAL_SEQUENTIAL, protected child
/// `<path>/_c_<uuid>-lock-<10-digit seq>` whose data is the local address
/// (Curator's default data), or [the data you give](MutexOptions::data), or
/// nothing when [revocable](MutexOptions::revocable). Missing parents are made
/// as containers. **Every** child counts, sorted by the text after the last
/// `lock-` in its name (the whole name when it has none), as Java compares
/// strings; the first holds the lock, and each waiter watches its immediate
/// predecessor with a data watch (`StandardLockInternalsDriver`).
///
/// # Re-entrancy
///
/// Java's mutex is re-entrant per thread; this one per handle (and its
/// clones): acquiring through a handle that holds the lock returns another
/// guard of the same tenure at once, and the node is deleted when the last of
/// them is released or dropped. Separate handles (on one client or not) are
/// separate contenders, like separate Java processes.
///
/// # Fencing and loss
///
/// [`MutexGuard::fencing_token`] is the holder node's czxid, larger for every
/// new holder, whoever held it before (Java too). [`MutexGuard::status`],
/// [`MutexGuard::is_held`] and [`MutexGuard::ended`] follow
/// [Curator's connection-state rules](ConnectionRules): by default SUSPENDED
/// already ends the claim, as in Curator's `StandardConnectionStateErrorPolicy`.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::InterProcessMutex;
/// let mutex = InterProcessMutex::new(&zk, "/app/locks/orders")?;
/// let guard = mutex.acquire().await?;
/// let again = mutex.acquire().await?; // re-entrant: same node
/// assert_eq!(guard.node_path(), again.node_path());
/// println!("token {}", guard.fencing_token());
/// again.release().await?;
/// guard.release().await?; // the node goes now
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a mutex does nothing until acquired"]
pub struct InterProcessMutex {
    h: Handle,
}

impl std::fmt::Debug for InterProcessMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterProcessMutex")
            .field("path", &self.h.core.path)
            .finish()
    }
}

impl InterProcessMutex {
    /// A mutex on `path` with Curator's defaults.
    pub fn new(client: &Client, path: &str) -> Result<InterProcessMutex> {
        InterProcessMutex::with_options(client, path, MutexOptions::default())
    }

    /// A mutex on `path` with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        opts: MutexOptions,
    ) -> Result<InterProcessMutex> {
        Self::of_kind(
            client,
            path,
            opts,
            MUTEX_LOCK_NAME,
            &[MUTEX_LOCK_NAME],
            Flavor::Curator { max_leases: 1 },
        )
    }

    pub(crate) fn of_kind(
        client: &Client,
        path: &str,
        opts: MutexOptions,
        name: &'static str,
        sort_names: &'static [&'static str],
        flavor: Flavor,
    ) -> Result<InterProcessMutex> {
        let core = LockCore::curator(
            client,
            path,
            opts.node_data(),
            name,
            sort_names,
            flavor,
            opts.spawner.clone(),
        )?;
        Ok(InterProcessMutex {
            h: Handle {
                core,
                rules: opts.rules,
                held: Arc::new(Mutex::new(Weak::new())),
            },
        })
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.h.core.path
    }

    /// Waits until held (Java's `acquire()`), through connection losses.
    pub fn acquire(&self) -> impl Future<Output = Result<MutexGuard>> + Send + 'static {
        let f = self.h.acquire(Wait::Forever);
        async move {
            f.await?
                .ok_or_else(|| Error::Malformed("acquire ended without the lock".into()))
        }
    }

    /// Waits at most `timeout` (Java's `acquire(time, unit)`); `None` when it
    /// passed, after the contender node was removed.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<MutexGuard>>> + Send + 'static {
        self.h.acquire(Wait::For(timeout))
    }

    /// Takes the lock only if it is free now (Java's `acquire(0, ...)`).
    pub fn try_acquire(&self) -> impl Future<Output = Result<Option<MutexGuard>>> + Send + 'static {
        self.h.acquire(Wait::No)
    }

    /// [`acquire`](Self::acquire) from a thread: at most `timeout` (`None`: for ever).
    pub fn acquire_blocking(&self, timeout: Option<Duration>) -> Result<Option<MutexGuard>> {
        let f = self.h.acquire(timeout.map_or(Wait::Forever, Wait::For));
        zk_client::blocking::block_on(f, None).unwrap_or(Ok(None))
    }

    /// Whether this handle holds the lock now, by the rules (Java's
    /// `isAcquiredInThisProcess`, `isOwnedByCurrentThread`).
    pub fn is_acquired(&self) -> bool {
        self.h.is_held()
    }

    /// Stops every acquisition through this handle in progress (they remove
    /// their nodes and return [`Error::Interrupted`]).
    pub fn cancel(&self) {
        self.h.core.cancel()
    }

    /// The contender nodes' paths in lock order, the holder first (Java's
    /// `getParticipantNodes`).
    pub fn participant_nodes(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        participant_nodes(&self.h.core, &[MUTEX_LOCK_NAME])
    }

    /// [`participant_nodes`](Self::participant_nodes) from a thread.
    pub fn participant_nodes_blocking(&self) -> Result<Vec<String>> {
        zk_client::blocking::block_on(self.participant_nodes(), None).unwrap_or(Ok(Vec::new()))
    }
}

/// The children of a Curator lock path in order, as paths.
pub(crate) fn participant_nodes(
    core: &Arc<LockCore>,
    sort_names: &'static [&'static str],
) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
    let (c, path) = (core.client.clone(), core.path.clone());
    async move {
        retrying(&c, || async {
            Ok(
                curator_sorted(children_or_none(&c, &path).await?, sort_names)
                    .into_iter()
                    .map(|k| join(&path, &k))
                    .collect(),
            )
        })
        .await
    }
}

/// A held Curator lock. Clones (and re-entrant acquisitions through the same
/// handle) share the tenure; the node is deleted when the last one is
/// released or dropped.
#[must_use = "dropping the guard releases the lock"]
#[derive(Clone)]
pub struct MutexGuard {
    tenure: Arc<Tenure>,
}

impl std::fmt::Debug for MutexGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutexGuard")
            .field("node", &self.node_path())
            .field("fencing_token", &self.fencing_token())
            .finish()
    }
}

impl MutexGuard {
    claim_accessors!(tenure.claim);

    /// The id of the session the node belongs to.
    pub fn session_id(&self) -> i64 {
        self.tenure.claim.guard.session_id()
    }

    /// Resolves once another process asked for the lock with [`revoke`] (or
    /// Java's `Revoker.attemptRevoke`): the node's data became
    /// [`REVOKE_MESSAGE`]. Honour it by releasing. Sets a data watch on the
    /// node while it waits; never resolves if the node is gone.
    pub fn revocation_requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let g = &self.tenure.claim.guard;
        let (c, path) = (self.tenure.claim.clock_client(), g.node_path());
        async move {
            loop {
                match c.get_data_watch(&path).await {
                    Ok((d, _, w)) => {
                        if d.as_ref() == REVOKE_MESSAGE {
                            return;
                        }
                        let _ = w.await;
                    }
                    Err(Error::Server(ErrorCode::NoNode)) => std::future::pending::<()>().await,
                    Err(e) => {
                        if settle(&c, &e).await.is_err() {
                            std::future::pending::<()>().await
                        }
                    }
                }
            }
        }
    }

    /// Releases this guard; the node is deleted (through connection losses)
    /// when it was the last of its tenure.
    pub fn release(self) -> impl Future<Output = Result<()>> + Send + 'static {
        let last = Arc::try_unwrap(self.tenure).ok();
        async move {
            let Some(t) = last else { return Ok(()) };
            match Arc::try_unwrap(t.claim) {
                Ok(c) => c.guard.release().await,
                Err(shared) => shared.guard.release_shared().await,
            }
        }
    }

    /// [`release`](Self::release) from a thread.
    pub fn release_blocking(self) -> Result<()> {
        zk_client::blocking::block_on(self.release(), None).unwrap_or(Ok(()))
    }

    /// Deletes the node whatever other clones of this guard remain (a
    /// selector's term ends when its call returns, even if the term kept a
    /// clone of its leadership).
    pub(crate) fn release_tenure(self) -> impl Future<Output = Result<()>> + Send + 'static {
        let claim = self.tenure.claim.clone();
        async move { claim.guard.release_shared().await }
    }
}

/// Curator's `InterProcessReadWriteLock`: a [read lock](Self::read_lock)
/// shared by readers and an exclusive [write lock](Self::write_lock), on
/// Curator's layout (Java's read/write locks on the same path and these
/// exclude each other as Java's do).
///
/// # Layout (Curator 5)
///
/// `<path>/_c_<uuid>-__READ__<seq>` and `<path>/_c_<uuid>-__WRIT__<seq>`,
/// EPHEMERAL_SEQUENTIAL and protected, in one sequence, data as a mutex's.
/// Every child is sorted by the text after `__READ__`, then after `__WRIT__`
/// (the sequence). A writer holds when it is first and waits on its
/// predecessor; a reader holds while no writer comes before it and otherwise
/// waits on the first writer.
///
/// Java lets the thread that holds the write lock take the read lock too;
/// here a handle's read lock does not know its write lock: take the read lock
/// before, or do not.
#[derive(Clone, Debug)]
pub struct InterProcessReadWriteLock {
    read: InterProcessMutex,
    write: InterProcessMutex,
}

const RW_NAMES: &[&str] = &[READ_LOCK_NAME, WRITE_LOCK_NAME];

impl InterProcessReadWriteLock {
    /// A read/write lock on `path` with Curator's defaults.
    pub fn new(client: &Client, path: &str) -> Result<InterProcessReadWriteLock> {
        InterProcessReadWriteLock::with_options(client, path, MutexOptions::default())
    }

    /// A read/write lock on `path` with options (for both sides).
    pub fn with_options(
        client: &Client,
        path: &str,
        opts: MutexOptions,
    ) -> Result<InterProcessReadWriteLock> {
        Ok(InterProcessReadWriteLock {
            read: InterProcessMutex::of_kind(
                client,
                path,
                opts.clone(),
                READ_LOCK_NAME,
                RW_NAMES,
                Flavor::CuratorRead,
            )?,
            write: InterProcessMutex::of_kind(
                client,
                path,
                opts,
                WRITE_LOCK_NAME,
                RW_NAMES,
                Flavor::Curator { max_leases: 1 },
            )?,
        })
    }

    /// The shared side (Java's `readLock()`).
    pub fn read_lock(&self) -> &InterProcessMutex {
        &self.read
    }

    /// The exclusive side (Java's `writeLock()`).
    pub fn write_lock(&self) -> &InterProcessMutex {
        &self.write
    }
}
