//! [`Lock`]: kazoo's exclusive lock, node for node.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, Error, Result};

use super::core::{LockCore, LockOptions, Wait, LOCK_NAME};
use super::guard::LockGuard;

/// A distributed exclusive lock, in kazoo's node layout: kazoo's `Lock` and this
/// one exclude each other on the same path.
///
/// # Layout (kazoo 2.11)
///
/// Each acquisition creates an EPHEMERAL_SEQUENTIAL child
/// `<path>/<32 hex>__lock__<10-digit seq>` whose data is the identifier in
/// UTF-8 (empty if none). Missing parents are created persistent and empty
/// (kazoo's `ensure_path`), and made again if they vanish. A child counts as a
/// contender if its name ends in `__lock__` (or an
/// [extra pattern](LockOptions::extra_lock_patterns)) and a 10-digit sequence
/// number; other children (e.g. a lease's `lease_holder`) are ignored. The
/// contender with the smallest sequence number holds the lock; each waiter
/// watches only its immediate predecessor (a data watch), so a release wakes one
/// waiter, and any connection state change wakes it too.
///
/// # Differences from kazoo
///
/// * **Sequence order.** Sequence numbers are parsed as ZooKeeper's signed
///   32-bit counter and ordered as numbers; kazoo orders the suffix text (its
///   issue 730). The two agree until the parent's counter passes 2^31 - 1
///   (about 2^31 acquisitions under one path). After that the suffixes are
///   negative (`-2147483648`, `-2147483647`, ...): numerically they sort in
///   creation order among themselves, as text in reverse (kazoo's perpetual
///   re-election). Across the wrap itself no suffix order is right: the first
///   negative node sorts before the positive ones still there, for kazoo and
///   for us (and Curator). [Fencing tokens](LockGuard::fencing_token) let a
///   resource reject the older holder in that window.
/// * **One uuid per acquisition.** kazoo makes one uuid prefix per `Lock`
///   object; here each acquisition has its own, so the cleanup of an abandoned
///   acquisition can never remove the node of a later one. The names are alike.
/// * **Loss is explicit** ([`LockGuard::status`], [`LockGuard::lost`]); kazoo
///   keeps `is_acquired` true after a session loss.
/// * **Cancel-safe.** Dropping an [`acquire`](Lock::acquire) future, a timeout,
///   a refusal and [`cancel`](Lock::cancel) all remove the contender node; if
///   the connection is down then, the node (found by its prefix if the create's
///   answer was lost) is removed once it is back (kazoo's issue 732 leaks it).
/// * **Concurrency.** A `Lock` is a cheap, cloneable handle; concurrent
///   acquisitions through it (or its clones) are separate contenders queued in
///   ZooKeeper's order. It is not re-entrant: acquiring again while holding
///   waits behind yourself.
///
/// # Curator
///
/// Curator's `InterProcessMutex` (and go-zookeeper) name contenders
/// `_c_<uuid>-lock-<seq>`. With `extra_lock_patterns: vec!["-lock-".into()]`
/// this lock (like kazoo's) waits for them; but Curator sorts kazoo-style names
/// by their whole text, so a Curator mutex does not wait for this lock. Mixing
/// the two on one path is not safe.
///
/// # Example
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{Lock, LockOptions};
///
/// let lock = Lock::with_options(&zk, "/app/lock", LockOptions {
///     identifier: Some("worker-1".into()),
///     ..LockOptions::default()
/// })?;
/// let guard = lock.acquire().await?;
/// // Hand the token to the protected resource with every write; it rejects
/// // tokens lower than the highest it has seen.
/// println!("holding with token {}", guard.fencing_token());
/// println!("contenders: {:?}", lock.contenders().await?);
/// guard.release().await?;
///
/// if let Some(g) = lock.acquire_timeout(Duration::from_secs(5)).await? {
///     g.release().await?;
/// }
/// # Ok(()) }
/// ```
///
/// From a thread, with `zk-blocking` (no runtime):
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// let lock = zk_recipes::Lock::new(zk, "/app/lock", "worker-2")?;
/// if let Some(guard) = lock.acquire_blocking(Some(Duration::from_secs(10)))? {
///     // ... critical section ...
///     guard.release_blocking()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a Lock does nothing until acquired"]
pub struct Lock {
    core: Arc<LockCore>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("path", &self.core.path)
            .finish()
    }
}

impl Lock {
    /// A lock on `path` whose contender nodes carry `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<Lock> {
        Lock::with_options(client, path, LockOptions::identified(identifier))
    }

    /// A lock on `path` with these options.
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<Lock> {
        Lock::of_kind(client, path, opts, LOCK_NAME, &[LOCK_NAME])
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.core.path
    }

    pub(crate) fn of_kind(
        client: &Client,
        path: &str,
        opts: LockOptions,
        node_name: &'static str,
        waits_for: &[&str],
    ) -> Result<Lock> {
        Ok(Lock {
            core: LockCore::new(client, path, opts, node_name, waits_for)?,
        })
    }

    /// Waits until the lock is held. Connection losses and session expiries on
    /// the way are ridden through (the node is recovered by its prefix, or made
    /// again at the back of the queue if the session ended). Errors only when
    /// the client can never reconnect (closed, auth failed), on an error no
    /// retry can fix (e.g. `NoAuth` on the path), or with
    /// [`Error::Interrupted`] after [`cancel`](Lock::cancel).
    ///
    /// The contender node is created when the future is first polled. Dropping
    /// the future before it resolves removes it (see the type's docs).
    pub fn acquire(&self) -> impl Future<Output = Result<LockGuard>> + Send + 'static {
        let f = self.core.acquire(Wait::Forever);
        async move {
            f.await?
                .ok_or_else(|| Error::Malformed("acquire ended without the lock".into()))
        }
    }

    /// Takes the lock only if nobody holds it or waits ahead (kazoo's
    /// `acquire(blocking=False)`); otherwise removes its node and returns `None`.
    pub fn try_acquire(&self) -> impl Future<Output = Result<Option<LockGuard>>> + Send + 'static {
        self.core.acquire(Wait::No)
    }

    /// Waits at most `timeout` (on the system clock); `None` when it passed,
    /// after the contender node was removed (kazoo's `acquire(timeout=...)`).
    /// On an async runtime, wrapping [`acquire`](Lock::acquire) in the runtime's
    /// own timeout is equivalent: dropping it removes the node too, in the
    /// background.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<LockGuard>>> + Send + 'static {
        self.core.acquire(Wait::For(timeout))
    }

    /// [`acquire`](Lock::acquire) from a thread, without a runtime (the
    /// `zk-blocking` way): waits at most `timeout` (`None`: for ever).
    pub fn acquire_blocking(&self, timeout: Option<Duration>) -> Result<Option<LockGuard>> {
        let f = match timeout {
            Some(t) => self.core.acquire(Wait::For(t)),
            None => self.core.acquire(Wait::Forever),
        };
        zk_client::blocking::block_on(f, None).unwrap_or(Ok(None))
    }

    /// [`try_acquire`](Lock::try_acquire) from a thread.
    pub fn try_acquire_blocking(&self) -> Result<Option<LockGuard>> {
        zk_client::blocking::block_on(self.try_acquire(), None).unwrap_or(Ok(None))
    }

    /// Stops every acquisition of this lock (and its clones) in progress: they
    /// remove their nodes and return [`Error::Interrupted`] (kazoo's
    /// `cancel()`). Later acquisitions are not affected.
    pub fn cancel(&self) {
        self.core.cancel.cancel()
    }

    /// The identifiers of the contenders, in the order they will hold the lock
    /// (the holder first), as kazoo's `contenders()`: nodes with null data are
    /// left out, data is decoded as UTF-8 (lossily).
    pub fn contenders(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        self.core.contenders()
    }

    /// [`contenders`](Lock::contenders) from a thread.
    pub fn contenders_blocking(&self) -> Result<Vec<String>> {
        zk_client::blocking::block_on(self.contenders(), None).unwrap_or(Ok(Vec::new()))
    }
}
