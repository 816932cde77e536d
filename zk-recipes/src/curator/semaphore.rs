//! [`InterProcessSemaphoreV2`] and [`InterProcessSemaphoreMutex`]: Curator's
//! counting semaphore on Curator's layout.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::{
    children_or_none, join, now, retryable, retrying, settle, wait_connected, Delay,
};
use crate::curator::local_address;
use crate::curator::mutex::{InterProcessMutex, MutexOptions};
use crate::curator::protected::ProtectedCreate;
use crate::curator::state::{Claim, ConnectionRules};
use crate::lock::{Flavor, LockCore, LockGuard};
use crate::runtime::Spawner;

/// The name of a lease node (after the protected prefix).
pub(crate) const LEASE_NAME: &str = "lease-";

/// Options of an [`InterProcessSemaphoreV2`].
#[derive(Clone, Debug, Default)]
pub struct SemaphoreOptions {
    /// A lease node's data; `None`: the local address (Curator's default).
    pub data: Option<Vec<u8>>,
    /// When a lease holder's claim ends.
    pub rules: ConnectionRules,
    /// Where abandoned nodes are removed.
    pub spawner: Spawner,
}

/// Curator's `InterProcessSemaphoreV2`: at most `max_leases` leases at once
/// across every process (Java ones on the same path too).
///
/// # Layout (Curator 5)
///
/// * `<path>/locks/_c_<uuid>-lock-<seq>`: an [`InterProcessMutex`] on
///   `<path>/locks`, held only while taking a lease (a waiter keeps it while it
///   waits, so the others queue behind it there).
/// * `<path>/leases/_c_<uuid>-lease-<seq>`: one EPHEMERAL_SEQUENTIAL,
///   protected node per lease (and per waiter), data as set or the local
///   address. A lease is granted when `<path>/leases` has at most
///   `max_leases` children, its own included; otherwise the taker waits on a
///   children watch of `<path>/leases`.
///
/// `locks` and `leases` are containers. The number of leases is stored
/// nowhere: every process must use the same one (Curator's convention).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::InterProcessSemaphoreV2;
/// let sem = InterProcessSemaphoreV2::new(&zk, "/app/sem", 3)?;
/// let lease = sem.acquire().await?;
/// println!("lease {} (token {})", lease.node_path(), lease.fencing_token());
/// lease.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct InterProcessSemaphoreV2 {
    client: Client,
    path: String,
    max_leases: usize,
    lock: InterProcessMutex,
    leases: Arc<LockCore>,
    data: Vec<u8>,
    rules: ConnectionRules,
}

impl std::fmt::Debug for LockCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockCore")
            .field("path", &self.path)
            .finish()
    }
}

impl InterProcessSemaphoreV2 {
    /// A semaphore on `path` with `max_leases` leases.
    pub fn new(client: &Client, path: &str, max_leases: usize) -> Result<InterProcessSemaphoreV2> {
        InterProcessSemaphoreV2::with_options(client, path, max_leases, SemaphoreOptions::default())
    }

    /// A semaphore with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        max_leases: usize,
        opts: SemaphoreOptions,
    ) -> Result<InterProcessSemaphoreV2> {
        if max_leases == 0 {
            return Err(Error::InvalidArgument(
                "a semaphore needs at least one lease".into(),
            ));
        }
        let lock = InterProcessMutex::with_options(
            client,
            &join(path, "locks"),
            MutexOptions {
                spawner: opts.spawner.clone(),
                ..MutexOptions::default()
            },
        )?;
        let leases_path = join(path, "leases");
        let leases = LockCore::curator(
            client,
            &leases_path,
            Vec::new(),
            LEASE_NAME,
            &[],
            Flavor::Curator { max_leases },
            opts.spawner.clone(),
        )?;
        Ok(InterProcessSemaphoreV2 {
            client: client.clone(),
            path: path.to_owned(),
            max_leases,
            lock,
            leases,
            data: opts
                .data
                .unwrap_or_else(|| local_address().as_bytes().to_vec()),
            rules: opts.rules,
        })
    }

    /// The semaphore's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Waits for a lease (Java's `acquire()`).
    pub fn acquire(&self) -> impl Future<Output = Result<Lease>> + Send + 'static {
        let f = self.take(None);
        async move { f.await?.ok_or(Error::Timeout) }
    }

    /// Waits at most `timeout` for a lease (Java's `acquire(time, unit)`).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<Lease>>> + Send + 'static {
        self.take(Some(timeout))
    }

    /// [`acquire`](Self::acquire) from a thread, at most `timeout` (`None`: for ever).
    pub fn acquire_blocking(&self, timeout: Option<Duration>) -> Result<Option<Lease>> {
        zk_client::blocking::block_on(self.take(timeout), None).unwrap_or(Ok(None))
    }

    /// The lease nodes' data (Java's `getParticipantNodes` reads their names).
    pub fn participant_nodes(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let (c, p) = (self.client.clone(), self.leases.path.clone());
        async move {
            retrying(&c, || async {
                let mut k = children_or_none(&c, &p).await?;
                k.sort();
                Ok(k)
            })
            .await
        }
    }

    fn take(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Lease>>> + Send + 'static {
        let this = self.clone();
        async move {
            let start = now();
            let left = |t: Duration| t.saturating_sub(start.elapsed());
            let guard = match timeout {
                Some(t) => match this.lock.acquire_timeout(left(t)).await? {
                    Some(g) => g,
                    None => return Ok(None),
                },
                None => this.lock.acquire().await?,
            };
            let r = this.lease_under_lock(timeout.map(left)).await;
            if let Err(e) = guard.release().await {
                tracing::warn!(error = %e, "releasing a semaphore's lock node failed");
            }
            r
        }
    }

    async fn lease_under_lock(&self, timeout: Option<Duration>) -> Result<Option<Lease>> {
        let c = &self.client;
        let leases = &self.leases.path;
        let (node, stat) =
            ProtectedCreate::new(&join(leases, LEASE_NAME), CreateMode::EphemeralSequential)
                .data(&self.data)
                .run(c)
                .await?;
        let name = node.rsplit('/').next().unwrap_or_default().to_owned();
        let session = c.session().map(|s| s.id).unwrap_or_default();
        let guard = LockGuard::adopt(self.leases.clone(), name.clone(), stat.czxid, session);
        let mut deadline = pin!(Delay::new_opt(timeout));
        loop {
            let r: Result<Option<bool>> = async {
                wait_connected(c).await?;
                let mut states = c.state_stream();
                let _ = states.next().await;
                let (kids, _, w) = c.get_children_watch(leases).await?;
                if !kids.contains(&name) {
                    // Our lease node went with its session.
                    return Err(Error::Server(ErrorCode::NoNode));
                }
                if kids.len() <= self.max_leases {
                    return Ok(Some(true));
                }
                let mut w = pin!(w);
                let mut change = pin!(states.next());
                let timed_out = std::future::poll_fn(|cx| {
                    if w.as_mut().poll(cx).is_ready() || change.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    deadline.as_mut().poll(cx).map(|()| true)
                })
                .await;
                Ok(if timed_out { Some(false) } else { None })
            }
            .await;
            match r {
                Ok(Some(true)) => {
                    return Ok(Some(Lease {
                        claim: Arc::new(Claim::new(c, guard, self.rules)),
                    }))
                }
                Ok(Some(false)) => {
                    guard.release().await?;
                    return Ok(None);
                }
                Ok(None) => {}
                Err(e) if retryable(&e) => settle(c, &e).await?,
                Err(e) => {
                    let _ = guard.release().await;
                    return Err(e);
                }
            }
        }
    }
}

/// A lease of an [`InterProcessSemaphoreV2`] (Java's `Lease`). Dropping it
/// returns it in the background.
#[must_use = "dropping the lease returns it"]
pub struct Lease {
    claim: Arc<Claim>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("node", &self.node_path())
            .finish()
    }
}

impl Lease {
    claim_accessors!(claim);

    /// Returns the lease (Java's `returnLease`): deletes its node.
    pub fn release(self) -> impl Future<Output = Result<()>> + Send + 'static {
        let claim = self.claim;
        async move { claim.guard.release_shared().await }
    }

    /// [`release`](Self::release) from a thread.
    pub fn release_blocking(self) -> Result<()> {
        zk_client::blocking::block_on(self.release(), None).unwrap_or(Ok(()))
    }
}

/// Curator's `InterProcessSemaphoreMutex`: an [`InterProcessSemaphoreV2`]
/// with one lease, so a non-re-entrant mutex on the semaphore's layout
/// (`locks/`, `leases/`). Java's `InterProcessSemaphoreMutex` on the same path
/// excludes it.
#[derive(Clone, Debug)]
pub struct InterProcessSemaphoreMutex(InterProcessSemaphoreV2);

impl InterProcessSemaphoreMutex {
    /// A semaphore mutex on `path`.
    pub fn new(client: &Client, path: &str) -> Result<InterProcessSemaphoreMutex> {
        InterProcessSemaphoreV2::new(client, path, 1).map(InterProcessSemaphoreMutex)
    }
}

impl std::ops::Deref for InterProcessSemaphoreMutex {
    type Target = InterProcessSemaphoreV2;
    fn deref(&self) -> &InterProcessSemaphoreV2 {
        &self.0
    }
}
