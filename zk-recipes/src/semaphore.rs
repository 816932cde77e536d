//! [`Semaphore`]: kazoo's counting semaphore, node for node.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, CreateMode, CreateOptions, Error, ErrorCode, Result};

use crate::common::{
    cancellable, children_data, children_or_none, data_text, either, join, py_bytes_repr,
    retryable, retrying, settle, uuid_hex, wait_connected, Cancel,
};
use crate::lock::{Holding, Leftover, Lock, LockCore, LockGuard, LockOptions, Wait, LOCK_NAME};

/// A distributed counting semaphore in kazoo's layout: at most `max_leases`
/// holders at once. kazoo's `Semaphore` and this one share leases on one path.
///
/// # Layout (kazoo 2.11)
///
/// * `<path>`: persistent, its data `max_leases` in ASCII decimal (e.g. `2`).
///   Opening a semaphore whose node holds a different number fails with
///   [`Error::InvalidArgument`] (kazoo's `ValueError`); non-numeric data is
///   ignored.
/// * Leases: `<path>/<32 hex>`, EPHEMERAL, no sequence, identifier as data.
///   **Every** child counts as a lease. The name is new for **each
///   acquisition**, where kazoo draws one per `Semaphore` object and reuses
///   it: so one `Semaphore` (and its clones) can hold several leases at once,
///   one per acquisition, and a lease node is never mistaken for one that an
///   earlier acquisition left behind. Tools that count a kazoo semaphore's
///   holders by child count see the same numbers either way.
/// * A kazoo [`Lock`] on the **sibling** path `<path>-__lock__` serialises the
///   lease-taking; its node's data is Python's repr of the identifier's bytes
///   (`b'id'`), as kazoo writes it.
///
/// Taking a lease: take the sibling lock; while fewer than `max_leases`
/// children exist, create our lease node; otherwise (blocking) wait, under the
/// lock, for the children to change; release the sibling lock in every case.
/// An acquisition that finds its lease node already there (after a lost
/// answer) keeps it.
///
/// Cancel-safe like [`Lock`]: dropping an acquisition (or a timeout, or
/// [`cancel`](Semaphore::cancel)) removes its lease node if it made one and
/// releases the sibling lock, in the background if disconnected.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::Semaphore;
/// let sem = Semaphore::new(&zk, "/app/slots", "worker-1", 2)?;
/// let lease = sem.acquire().await?;
/// println!("holders: {:?}", sem.lease_holders().await?);
/// lease.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a Semaphore does nothing until acquired"]
pub struct Semaphore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("path", &self.inner.path)
            .field("max_leases", &self.inner.max_leases)
            .finish()
    }
}

struct Inner {
    client: Client,
    path: String,
    data: Vec<u8>,
    max_leases: u32,
    /// The sibling `<path>-__lock__` lock.
    lock: Lock,
    /// For lease guards: the semaphore path, the spawner.
    leases: Arc<LockCore>,
    assured: AtomicBool,
    cancel: Cancel,
}

/// A held semaphore lease. Release with [`release`](SemaphoreLease::release);
/// dropping it releases in the background.
#[derive(Debug)]
#[must_use = "dropping the lease releases it"]
pub struct SemaphoreLease {
    guard: LockGuard,
}

impl SemaphoreLease {
    /// Gives the lease back (deletes its node), through connection losses.
    pub fn release(self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.guard.release()
    }

    /// [`release`](SemaphoreLease::release) from a thread.
    pub fn release_blocking(self) -> Result<()> {
        self.guard.release_blocking()
    }

    /// Where the lease stands (see [`Holding`]).
    pub fn status(&self) -> Holding {
        self.guard.status()
    }

    /// Resolves once the lease is lost (session ended, node deleted).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.guard.lost()
    }

    /// [`lost`](SemaphoreLease::lost) from a thread: `true` once the lease is
    /// lost, `false` if `timeout` passed first.
    pub fn lost_blocking(&self, timeout: Option<Duration>) -> bool {
        self.guard.lost_blocking(timeout)
    }

    /// The lease's node.
    pub fn node_path(&self) -> String {
        self.guard.node_path()
    }
}

/// Removes an acquisition's lease node if the acquisition ends without
/// handing it to a [`SemaphoreLease`].
struct LeaseCleanup {
    client: Client,
    path: String,
    name: String,
    tried: AtomicBool,
    kept: AtomicBool,
    spawner: crate::Spawner,
}

impl Drop for LeaseCleanup {
    fn drop(&mut self) {
        if self.tried.load(Ordering::SeqCst) && !self.kept.load(Ordering::SeqCst) {
            Leftover::node(&self.client, &self.path, &self.name).spawn(&self.spawner);
        }
    }
}

impl Semaphore {
    /// A semaphore of `max_leases` on `path`, its leases carrying `identifier`.
    pub fn new(
        client: &Client,
        path: &str,
        identifier: &str,
        max_leases: u32,
    ) -> Result<Semaphore> {
        Semaphore::with_options(
            client,
            path,
            LockOptions::identified(identifier),
            max_leases,
        )
    }

    /// A semaphore with options (identifier, spawner; `extra_lock_patterns`
    /// apply to the sibling lock).
    pub fn with_options(
        client: &Client,
        path: &str,
        opts: LockOptions,
        max_leases: u32,
    ) -> Result<Semaphore> {
        zk_proto::path::validate_path(path, false)?;
        if max_leases == 0 {
            return Err(Error::InvalidArgument(
                "max_leases must be at least 1".into(),
            ));
        }
        let data = opts.identifier.clone().unwrap_or_default().into_bytes();
        let lock_opts = LockOptions {
            identifier: Some(py_bytes_repr(&data)),
            ..opts.clone()
        };
        let lock = Lock::with_options(client, &format!("{path}-{LOCK_NAME}"), lock_opts)?;
        let leases = LockCore::new(client, path, opts, LOCK_NAME, &[LOCK_NAME])?;
        Ok(Semaphore {
            inner: Arc::new(Inner {
                client: client.clone(),
                path: path.to_owned(),
                data,
                max_leases,
                lock,
                leases,
                assured: AtomicBool::new(false),
                cancel: Cancel::default(),
            }),
        })
    }

    /// The semaphore's path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The number of leases.
    pub fn max_leases(&self) -> u32 {
        self.inner.max_leases
    }

    /// Waits for a lease.
    pub fn acquire(&self) -> impl Future<Output = Result<SemaphoreLease>> + Send + 'static {
        let f = self.acquire_with(Wait::Forever);
        async move {
            f.await?
                .ok_or_else(|| Error::Malformed("acquire ended without a lease".into()))
        }
    }

    /// A lease only if one is free now (kazoo's `acquire(blocking=False)`).
    pub fn try_acquire(
        &self,
    ) -> impl Future<Output = Result<Option<SemaphoreLease>>> + Send + 'static {
        self.acquire_with(Wait::No)
    }

    /// Waits at most `timeout` for a lease (`None` when it passed).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<SemaphoreLease>>> + Send + 'static {
        self.acquire_with(Wait::For(timeout))
    }

    /// From a thread: waits at most `timeout` (`None`: for ever).
    pub fn acquire_blocking(&self, timeout: Option<Duration>) -> Result<Option<SemaphoreLease>> {
        let f = self.acquire_with(timeout.map_or(Wait::Forever, Wait::For));
        zk_client::blocking::block_on(f, None).unwrap_or(Ok(None))
    }

    /// [`try_acquire`](Semaphore::try_acquire) from a thread.
    pub fn try_acquire_blocking(&self) -> Result<Option<SemaphoreLease>> {
        zk_client::blocking::block_on(self.try_acquire(), None).unwrap_or(Ok(None))
    }

    /// Stops every acquisition in progress ([`Error::Interrupted`]).
    pub fn cancel(&self) {
        self.inner.cancel.cancel();
        self.inner.lock.cancel();
    }

    /// The identifiers of the lease holders (unordered, as kazoo's
    /// `lease_holders()`; data decoded as UTF-8, lossily).
    pub fn lease_holders(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let inner = self.inner.clone();
        async move { retrying(&inner.client, || inner.holders()).await }
    }

    /// [`lease_holders`](Semaphore::lease_holders) from a thread.
    pub fn lease_holders_blocking(&self) -> Result<Vec<String>> {
        zk_client::blocking::block_on(self.lease_holders(), None).unwrap_or(Ok(Vec::new()))
    }

    fn acquire_with(
        &self,
        wait: Wait,
    ) -> impl Future<Output = Result<Option<SemaphoreLease>>> + Send + 'static {
        let inner = self.inner.clone();
        let since = inner.cancel.generation();
        let cleanup = Arc::new(LeaseCleanup {
            client: inner.client.clone(),
            path: inner.path.clone(),
            name: uuid_hex(),
            tried: AtomicBool::new(false),
            kept: AtomicBool::new(false),
            spawner: inner.leases.spawner().clone(),
        });
        async move {
            let cancel = inner.cancel.wait(since);
            cancellable(inner.acquire(&cleanup, wait), cancel, wait.limit()).await
        }
    }
}

impl Inner {
    /// Makes `<path>` holding `max_leases`, or checks the number it holds.
    async fn ensure(&self) -> Result<()> {
        if self.assured.load(Ordering::SeqCst) {
            return Ok(());
        }
        let c = &self.client;
        let existing = match c.get_data(&self.path).await {
            Ok((d, _)) => Some(d),
            Err(Error::Server(ErrorCode::NoNode)) => {
                let made = c
                    .create_with(
                        &self.path,
                        self.max_leases.to_string(),
                        &CreateOptions {
                            mode: CreateMode::Persistent,
                            make_parents: true,
                            ..CreateOptions::default()
                        },
                    )
                    .await;
                match made {
                    Ok(_) => None,
                    Err(Error::Server(ErrorCode::NodeExists)) => {
                        Some(c.get_data(&self.path).await?.0)
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if let Some(d) = existing {
            // kazoo: int(data.decode()) – non-numeric data is someone else's business.
            let stored = std::str::from_utf8(&d)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok());
            if let Some(n) = stored {
                if n != i64::from(self.max_leases) {
                    return Err(Error::InvalidArgument(format!(
                        "inconsistent max leases: {n}, expected: {}",
                        self.max_leases
                    )));
                }
            }
        }
        self.assured.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn holders(&self) -> Result<Vec<String>> {
        let kids = children_or_none(&self.client, &self.path).await?;
        Ok(children_data(&self.client, &self.path, kids)
            .await?
            .into_iter()
            .map(|(_, d)| data_text(&d))
            .collect())
    }

    async fn acquire(
        self: &Arc<Self>,
        cleanup: &Arc<LeaseCleanup>,
        wait: Wait,
    ) -> Result<Option<SemaphoreLease>> {
        loop {
            match self.attempt(cleanup, wait).await {
                Err(e) if retryable(&e) => settle(&self.client, &e).await?,
                Err(Error::Server(ErrorCode::NoNode)) => {
                    self.assured.store(false, Ordering::SeqCst)
                }
                r => return r,
            }
        }
    }

    /// The lease of the node whose Stat is `s`: held by the session that owns
    /// the node (its `ephemeralOwner`), not whichever the client has now.
    fn lease(&self, cleanup: &LeaseCleanup, s: &zk_client::Stat) -> SemaphoreLease {
        cleanup.kept.store(true, Ordering::SeqCst);
        SemaphoreLease {
            guard: LockGuard::adopt(
                self.leases.clone(),
                cleanup.name.clone(),
                s.czxid,
                s.ephemeral_owner,
            ),
        }
    }

    /// kazoo's `_inner_acquire`, from the top.
    async fn attempt(
        self: &Arc<Self>,
        cleanup: &Arc<LeaseCleanup>,
        wait: Wait,
    ) -> Result<Option<SemaphoreLease>> {
        let c = &self.client;
        wait_connected(c).await?;
        self.ensure().await?;
        let lease_path = join(&self.path, &cleanup.name);
        if cleanup.tried.load(Ordering::SeqCst) {
            if let Some(s) = c.exists(&lease_path).await? {
                return Ok(Some(self.lease(cleanup, &s)));
            }
        }
        let guard = match wait {
            Wait::No => match self.lock.try_acquire().await? {
                Some(g) => g,
                None => return Ok(None),
            },
            _ => self.lock.acquire().await?,
        };
        let r = self.under_lock(cleanup, &lease_path, wait).await;
        let _ = guard.release().await;
        r
    }

    async fn under_lock(
        &self,
        cleanup: &LeaseCleanup,
        lease_path: &str,
        wait: Wait,
    ) -> Result<Option<SemaphoreLease>> {
        let c = &self.client;
        loop {
            let mut states = c.state_stream();
            let _ = states.next().await;
            let (kids, _, watch) = c.get_children_watch(&self.path).await?;
            if kids.len() < self.max_leases as usize {
                cleanup.tried.store(true, Ordering::SeqCst);
                match c
                    .create_with(
                        lease_path,
                        self.data.as_slice(),
                        &CreateOptions::mode(CreateMode::Ephemeral),
                    )
                    .await
                {
                    Ok((_, s)) => return Ok(Some(self.lease(cleanup, &s))),
                    Err(Error::Server(ErrorCode::NodeExists)) => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some(s) = c.exists(lease_path).await? {
                return Ok(Some(self.lease(cleanup, &s)));
            }
            if wait == Wait::No {
                return Ok(None);
            }
            either(watch, states.next()).await;
        }
    }
}
