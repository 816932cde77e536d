//! [`DistributedBarrier`] and [`DistributedDoubleBarrier`]: Curator's
//! barriers on Curator's layout.

use std::future::Future;
use std::time::{Duration, Instant};

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::parent_of;
use crate::common::{java_uuid, join, now, retrying, Delay};
use crate::curator::local_address;
use crate::curator::protected::ensure_containers;

/// The node a double barrier's last entrant makes.
pub const READY_NODE: &str = "ready";

/// Waits for `fut` at most until `deadline` (`None`: for ever); `None` when
/// the deadline came first.
async fn until<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    let left = deadline.map(|d| d.saturating_duration_since(now()));
    Delay::new_opt(left).or(fut).await
}

/// Curator's `DistributedBarrier`: while the node `<path>` exists, waiters
/// wait; removing it lets them all through. Java's and this one on the same
/// path are one barrier.
///
/// # Layout (Curator 5)
///
/// `<path>`, persistent, data = the local address (Curator's default);
/// parents are containers.
#[derive(Clone, Debug)]
pub struct DistributedBarrier {
    client: Client,
    path: String,
}

impl DistributedBarrier {
    /// A barrier on `path`.
    pub fn new(client: &Client, path: &str) -> Result<DistributedBarrier> {
        zk_proto::path::validate_path(path, false)?;
        Ok(DistributedBarrier {
            client: client.clone(),
            path: path.to_owned(),
        })
    }

    /// Raises the barrier (Java's `setBarrier`); already raised is fine.
    pub fn set_barrier(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        async move {
            retrying(&c, || async {
                if let Some(p) = parent_of(&path) {
                    ensure_containers(&c, p).await?;
                }
                match c
                    .create(&path, local_address().as_bytes(), CreateMode::Persistent)
                    .await
                {
                    Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
        }
    }

    /// Removes the barrier (Java's `removeBarrier`); already gone is fine.
    pub fn remove_barrier(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        async move {
            retrying(&c, || async {
                match c.delete(&path, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
        }
    }

    /// Waits while the barrier stands, at most `timeout` (Java's
    /// `waitOnBarrier`): true once it is gone, false on timeout.
    pub fn wait_on_barrier(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        let deadline = timeout.map(|t| now() + t);
        async move {
            loop {
                let (stat, watch) = retrying(&c, || c.exists_watch(&path)).await?;
                if stat.is_none() {
                    return Ok(true);
                }
                if until(deadline, watch).await.is_none() {
                    return Ok(false);
                }
            }
        }
    }

    /// [`set_barrier`](Self::set_barrier) from a thread.
    pub fn set_barrier_blocking(&self) -> Result<()> {
        zk_client::blocking::block_on(self.set_barrier(), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`remove_barrier`](Self::remove_barrier) from a thread.
    pub fn remove_barrier_blocking(&self) -> Result<()> {
        zk_client::blocking::block_on(self.remove_barrier(), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`wait_on_barrier`](Self::wait_on_barrier) from a thread.
    pub fn wait_on_barrier_blocking(&self, timeout: Option<Duration>) -> Result<bool> {
        zk_client::blocking::block_on(self.wait_on_barrier(timeout), None)
            .unwrap_or(Err(Error::Timeout))
    }
}

/// Curator's `DistributedDoubleBarrier`: members [`enter`](Self::enter)
/// and wait until `member_qty` have; then they work and
/// [`leave`](Self::leave), and wait until all have left. Java members on the
/// same path count alike.
///
/// # Layout (Curator 5)
///
/// `<path>/<uuid>` per member (EPHEMERAL, a UUID as Java prints it, data =
/// the local address; parents are containers) and `<path>/ready`
/// (persistent), made by the entrant that finds `member_qty` children and
/// deleted by each member once nobody is left. Leaving, in Java's string
/// order of the members' nodes: the lowest keeps its node and waits on the
/// highest until it is alone; every other deletes its node and waits on the
/// lowest.
#[derive(Clone, Debug)]
pub struct DistributedDoubleBarrier {
    client: Client,
    path: String,
    member_qty: usize,
    ours: String,
    ready: String,
}

impl DistributedDoubleBarrier {
    /// A member of the barrier at `path` for `member_qty` members (a
    /// threshold: more may enter).
    pub fn new(client: &Client, path: &str, member_qty: usize) -> Result<DistributedDoubleBarrier> {
        zk_proto::path::validate_path(path, false)?;
        if member_qty == 0 {
            return Err(Error::InvalidArgument("memberQty cannot be 0".into()));
        }
        let id = java_uuid();
        Ok(DistributedDoubleBarrier {
            client: client.clone(),
            path: path.to_owned(),
            member_qty,
            ours: join(path, &id),
            ready: join(path, READY_NODE),
        })
    }

    /// This member's node.
    pub fn node_path(&self) -> &str {
        &self.ours
    }

    /// Enters and waits until `member_qty` members have (Java's `enter`):
    /// false when `timeout` passed first (the member stays entered).
    pub fn enter(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        // The deadline counts from the call, not from the first poll.
        self.clone().enter_by(timeout.map(|t| now() + t))
    }

    async fn enter_by(self, deadline: Option<Instant>) -> Result<bool> {
        let c = &self.client;
        let (ready, watch) = retrying(c, || c.exists_watch(&self.ready)).await?;
        retrying(c, || async {
            ensure_containers(c, &self.path).await?;
            match c
                .create(
                    &self.ours,
                    local_address().as_bytes(),
                    CreateMode::Ephemeral,
                )
                .await
            {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await?;
        if ready.is_some() {
            return Ok(true);
        }
        let kids = retrying(c, || c.get_children(&self.path)).await?;
        if kids.len() >= self.member_qty {
            match retrying(c, || {
                c.create(
                    &self.ready,
                    local_address().as_bytes(),
                    CreateMode::Persistent,
                )
            })
            .await
            {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        // The ready node's creation fires the watch set before entering.
        Ok(until(deadline, watch).await.is_some())
    }

    /// Leaves and waits until every member has (Java's `leave`): false when
    /// `timeout` passed first.
    pub fn leave(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        // The deadline counts from the call, not from the first poll.
        self.clone().leave_by(timeout.map(|t| now() + t))
    }

    async fn leave_by(self, deadline: Option<Instant>) -> Result<bool> {
        let c = &self.client;
        let name = self.ours.rsplit('/').next().unwrap_or_default().to_owned();
        let mut ours_exists = true;
        let mut result = true;
        loop {
            let mut kids = match retrying(c, || c.get_children(&self.path)).await {
                Err(Error::Server(ErrorCode::NoNode)) => Vec::new(),
                r => r?,
            };
            kids.retain(|k| k != READY_NODE);
            kids.sort_by(|a, b| crate::lock::java_cmp(a, b));
            if kids.is_empty() {
                break;
            }
            if ours_exists && !kids.contains(&name) {
                return Err(Error::Malformed(format!("our path ({name}) is missing")));
            }
            if kids.len() == 1 {
                if ours_exists {
                    if kids[0] != name {
                        return Err(Error::Malformed(format!(
                            "last path ({}) is not ours ({name})",
                            kids[0]
                        )));
                    }
                    self.delete_ours().await?;
                }
                break;
            }
            // The lowest member stays until it is alone, waiting on the
            // highest; every other deletes its node and waits on the
            // lowest (Curator 5.4's `internalLeave`).
            let lowest = kids[0] == name;
            let watched = if lowest {
                kids.last().expect("not empty")
            } else {
                &kids[0]
            };
            let (stat, watch) = retrying(c, || c.exists_watch(&join(&self.path, watched))).await?;
            if !lowest && ours_exists {
                self.delete_ours().await?;
                ours_exists = false;
            }
            if stat.is_some() && until(deadline, watch).await.is_none() {
                result = false;
                break;
            }
        }
        self.delete_gone(&self.ready).await?;
        Ok(result)
    }

    async fn delete_ours(&self) -> Result<()> {
        self.delete_gone(&self.ours).await
    }

    /// Deletes `path`, retried over connection loss; already gone is fine (another
    /// member, or a retry of ours, deleted it).
    async fn delete_gone(&self, path: &str) -> Result<()> {
        let c = &self.client;
        retrying(c, || async {
            match c.delete(path, None).await {
                Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// [`enter`](Self::enter) from a thread.
    pub fn enter_blocking(&self, timeout: Option<Duration>) -> Result<bool> {
        zk_client::blocking::block_on(self.enter(timeout), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`leave`](Self::leave) from a thread.
    pub fn leave_blocking(&self, timeout: Option<Duration>) -> Result<bool> {
        zk_client::blocking::block_on(self.leave(timeout), None).unwrap_or(Err(Error::Timeout))
    }
}
