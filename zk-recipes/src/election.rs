//! [`Election`]: kazoo's leader election, which is a [`Lock`] under the hood.

use std::future::Future;
use std::sync::Arc;

use zk_client::{Client, Error, Result};

use crate::lock::{Holding, Lock, LockGuard, LockOptions};

/// Leader election, kazoo's way: a candidate is a contender of a [`Lock`] on
/// the election path, and the leader is the lock's holder. kazoo's `Election`
/// and this one on the same path are candidates of one election (the nodes are
/// `<path>/<32 hex>__lock__<seq>` with the identifier as data).
///
/// [`run`](Election::run) waits for leadership, runs the leader function, and
/// resigns (releases) when it returns. The leader function gets a
/// [`Leadership`]: its [fencing token](Leadership::fencing_token) (larger for
/// every new leader) and a way to learn that leadership may be or is lost
/// ([`Leadership::not_held`], [`Leadership::lost`]); kazoo tells its leader
/// nothing.
///
/// [`cancel`](Election::cancel) (or dropping the `run` future before it leads)
/// withdraws a waiting candidate; like kazoo's, it does not interrupt a leader
/// already running.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::Election;
///
/// let election = Election::new(&zk, "/app/leader", "node-1")?;
/// let led = election
///     .run(|leadership| async move {
///         println!("leading with token {}", leadership.fencing_token());
///         // Lead until done, or until leadership may be lost.
///         leadership.not_held().await;
///     })
///     .await?;
/// assert!(led.is_some());
/// println!("candidates now: {:?}", election.contenders().await?);
/// # Ok(()) }
/// ```
///
/// From a thread (zk-blocking):
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// let election = zk_recipes::Election::new(zk, "/app/leader", "node-2")?;
/// election.run_blocking(|leadership| {
///     println!("leading with token {}", leadership.fencing_token());
/// })?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "an Election does nothing until run"]
pub struct Election {
    lock: Lock,
}

/// The leadership a leader function holds; see [`Election::run`]. Clones share
/// one tenure.
#[derive(Clone, Debug)]
#[must_use = "a Leadership tells whether the leader may still lead"]
pub struct Leadership {
    guard: Arc<LockGuard>,
}

impl Leadership {
    /// The fencing token of this tenure (the leader node's czxid, see
    /// [`LockGuard::fencing_token`]): every later leader's is larger.
    pub fn fencing_token(&self) -> i64 {
        self.guard.fencing_token()
    }

    /// Where the leadership stands now (see [`Holding`]).
    pub fn status(&self) -> Holding {
        self.guard.status()
    }

    /// Resolves once leadership is lost (session ended, node deleted).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.guard.lost()
    }

    /// [`lost`](Leadership::lost) from a thread: `true` once leadership is
    /// lost, `false` if `timeout` passed first.
    pub fn lost_blocking(&self, timeout: Option<std::time::Duration>) -> bool {
        self.guard.lost_blocking(timeout)
    }

    /// [`not_held`](Leadership::not_held) from a thread: `None` if `timeout`
    /// passed while still leading.
    pub fn not_held_blocking(&self, timeout: Option<std::time::Duration>) -> Option<Holding> {
        self.guard.not_held_blocking(timeout)
    }

    /// Resolves once leadership is no longer sure: [`Holding::Suspended`]
    /// (disconnected) or [`Holding::Lost`].
    pub fn not_held(&self) -> impl Future<Output = Holding> + Send + 'static {
        self.guard.not_held()
    }

    /// The id of the session the leader's node belongs to.
    pub fn session_id(&self) -> i64 {
        self.guard.session_id()
    }

    /// The leader's node.
    pub fn node_path(&self) -> String {
        self.guard.node_path()
    }
}

impl Election {
    /// A candidate on `path` that others see as `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<Election> {
        Ok(Election {
            lock: Lock::new(client, path, identifier)?,
        })
    }

    /// A candidate with the lock's options (identifier, `extra_lock_patterns`,
    /// spawner).
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<Election> {
        Ok(Election {
            lock: Lock::with_options(client, path, opts)?,
        })
    }

    /// The lock underneath.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Waits to be elected, runs `leader` while leading, then resigns:
    /// `Ok(Some(value))` with what `leader` returned, `Ok(None)` if
    /// [cancelled](Election::cancel) before being elected. Resigning goes on in
    /// the background if the connection is down when `leader` returns.
    pub fn run<F, Fut, T>(&self, leader: F) -> impl Future<Output = Result<Option<T>>> + Send
    where
        F: FnOnce(Leadership) -> Fut + Send,
        Fut: Future<Output = T> + Send,
        T: Send,
    {
        let acquire = self.lock.acquire();
        async move {
            let guard = match acquire.await {
                Ok(g) => Arc::new(g),
                Err(Error::Interrupted) => return Ok(None),
                Err(e) => return Err(e),
            };
            let value = leader(Leadership {
                guard: guard.clone(),
            })
            .await;
            resign(guard).await;
            Ok(Some(value))
        }
    }

    /// [`run`](Election::run) from a thread, without a runtime: blocks until
    /// elected (or cancelled), calls `leader`, then resigns.
    pub fn run_blocking<T>(&self, leader: impl FnOnce(&Leadership) -> T) -> Result<Option<T>> {
        let guard = match self.lock.acquire_blocking(None) {
            Ok(Some(g)) => Arc::new(g),
            Ok(None) => return Ok(None),
            Err(Error::Interrupted) => return Ok(None),
            Err(e) => return Err(e),
        };
        let l = Leadership {
            guard: guard.clone(),
        };
        let value = leader(&l);
        drop(l);
        zk_client::blocking::block_on(resign(guard), None);
        Ok(Some(value))
    }

    /// Withdraws every waiting `run` of this candidate (they return
    /// `Ok(None)`); a running leader is not interrupted (kazoo's `cancel`).
    pub fn cancel(&self) {
        self.lock.cancel()
    }

    /// The candidates' identifiers in election order: the leader first.
    pub fn contenders(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        self.lock.contenders()
    }

    /// [`contenders`](Election::contenders) from a thread.
    pub fn contenders_blocking(&self) -> Result<Vec<String>> {
        self.lock.contenders_blocking()
    }
}

/// Releases the leadership; if the leader function kept a clone of it, the
/// node is deleted all the same.
async fn resign(guard: Arc<LockGuard>) {
    let r = match Arc::try_unwrap(guard) {
        Ok(g) => g.release().await,
        Err(shared) => shared.release_shared().await,
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, "resigning the leadership failed; the node goes with the session");
    }
}
