//! kazoo's shared lock: [`ReadLock`] and [`WriteLock`], on a [`Lock`]'s core
//! with other node names.

use zk_client::{Client, Result};

use super::core::{LockOptions, LOCK_NAME, RLOCK_NAME};
use super::exclusive::Lock;

/// The read side of kazoo's shared lock (`ReadLock`, 2.9+ rules): readers hold
/// together; a reader waits only for the nearest **writer** queued before it.
///
/// Its contender nodes are `<path>/<32 hex>__rlock__<seq>` (EPHEMERAL_SEQUENTIAL,
/// identifier as data), next to the writers' `__lock__` nodes; a [`WriteLock`]
/// waits for every reader and writer before it, so writers are served in queue
/// order and a reader that comes after a waiting writer waits for it. A plain
/// [`Lock`] ignores readers (its only pattern is `__lock__`), exactly as
/// kazoo's does: use [`WriteLock`] on a path shared with readers.
///
/// Everything else is [`Lock`]'s (it derefs to one): acquire forms, cancel,
/// fencing tokens, loss, `contenders()` (readers and writers, in queue order).
/// kazoo before 2.9 (e.g. Debian's 2.8) let a reader wait for a writer queued
/// *after* it, which can deadlock (kazoo #649); this is the fixed rule.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::{ReadLock, WriteLock};
/// let r = ReadLock::new(&zk, "/app/rw", "reader-1")?;
/// let g = r.acquire().await?; // shared with other readers
/// g.release().await?;
/// let w = WriteLock::new(&zk, "/app/rw", "writer-1")?;
/// let g = w.acquire().await?; // alone
/// g.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a ReadLock does nothing until acquired"]
pub struct ReadLock(Lock);

/// The write side of kazoo's shared lock (`WriteLock`): its nodes are named as
/// a [`Lock`]'s (`__lock__`), and it waits for every reader (`__rlock__`) and
/// writer before it. See [`ReadLock`]. Derefs to a [`Lock`].
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// let w = zk_recipes::WriteLock::new(zk, "/app/rw", "writer")?;
/// if let Some(g) = w.try_acquire_blocking()? {
///     g.release_blocking()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a WriteLock does nothing until acquired"]
pub struct WriteLock(Lock);

impl ReadLock {
    /// A read lock on `path` whose nodes carry `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<ReadLock> {
        ReadLock::with_options(client, path, LockOptions::identified(identifier))
    }

    /// A read lock with options (`extra_lock_patterns` add writer patterns).
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<ReadLock> {
        Lock::of_kind(client, path, opts, RLOCK_NAME, &[LOCK_NAME]).map(ReadLock)
    }
}

impl WriteLock {
    /// A write lock on `path` whose nodes carry `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<WriteLock> {
        WriteLock::with_options(client, path, LockOptions::identified(identifier))
    }

    /// A write lock with options.
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<WriteLock> {
        Lock::of_kind(client, path, opts, LOCK_NAME, &[LOCK_NAME, RLOCK_NAME]).map(WriteLock)
    }
}

impl std::ops::Deref for ReadLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}

impl std::ops::Deref for WriteLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}
