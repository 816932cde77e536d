//! [`Barrier`] and [`DoubleBarrier`]: kazoo's barriers, node for node.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, CreateMode, Error, ErrorCode, EventType, Result};

use crate::common::{fired_or, join, retryable, retrying, settle, uuid_hex, wait_connected, Delay};

/// Waits for `watch` to fire or the connection state to change (the caller
/// reads again either way).
async fn woken(client: &Client, watch: zk_client::OneshotWatch) -> Option<EventType> {
    let mut states = client.state_stream();
    let _ = states.next().await;
    fired_or(watch, states.next()).await.map(|e| e.event_type)
}

/// kazoo's `Barrier`: it is up while `<path>` exists. [`create`](Barrier::create)
/// puts it up (persistent, empty, kazoo's `ensure_path`),
/// [`remove`](Barrier::remove) takes it down, and [`wait`](Barrier::wait) waits
/// (with an exists watch) until it is down. Curator's `DistributedBarrier` has
/// the same semantics, so all three interoperate.
///
/// Unlike kazoo's (whose docs warn that `wait` can raise ConnectionLoss), `wait`
/// rides through connection losses.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::Barrier;
/// let b = Barrier::new(&zk, "/app/gate")?;
/// b.create().await?;
/// // elsewhere: b.remove().await?;
/// let cleared = b.wait(Some(Duration::from_secs(10))).await?;
/// # let _ = cleared;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Barrier does nothing until used"]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier at `path`.
    pub fn new(client: &Client, path: &str) -> Result<Barrier> {
        zk_proto::path::validate_path(path, false)?;
        Ok(Barrier {
            client: client.clone(),
            path: path.to_owned(),
        })
    }

    /// Puts the barrier up (creates `<path>` and its parents if missing).
    pub fn create(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let (c, p) = (self.client.clone(), self.path.clone());
        async move { retrying(&c, || c.ensure_path(&p)).await }
    }

    /// Takes it down: `true` if it was up, `false` if it was already down.
    pub fn remove(&self) -> impl Future<Output = Result<bool>> + Send + 'static {
        let (c, p) = (self.client.clone(), self.path.clone());
        async move {
            match retrying(&c, || c.delete(&p, None)).await {
                Ok(()) => Ok(true),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(false),
                Err(e) => Err(e),
            }
        }
    }

    /// Waits until the barrier is down: `true` when it is, `false` if
    /// `timeout` (on the system clock; `None`: for ever) passed first.
    pub fn wait(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        let (c, p) = (self.client.clone(), self.path.clone());
        async move {
            let body = async {
                loop {
                    wait_connected(&c).await?;
                    match c.exists_watch(&p).await {
                        Ok((None, _)) => return Ok(true),
                        Ok((Some(_), w)) => {
                            if woken(&c, w).await == Some(EventType::NodeDeleted) {
                                return Ok(true);
                            }
                        }
                        Err(e) if retryable(&e) => settle(&c, &e).await?,
                        Err(e) => return Err(e),
                    }
                }
            };
            Delay::new_opt(timeout).or(body).await.unwrap_or(Ok(false))
        }
    }

    /// [`create`](Barrier::create) from a thread.
    pub fn create_blocking(&self) -> Result<()> {
        zk_client::blocking::block_on(self.create(), None).unwrap_or(Ok(()))
    }

    /// [`remove`](Barrier::remove) from a thread.
    pub fn remove_blocking(&self) -> Result<bool> {
        zk_client::blocking::block_on(self.remove(), None).unwrap_or(Ok(false))
    }

    /// [`wait`](Barrier::wait) from a thread.
    pub fn wait_blocking(&self, timeout: Option<Duration>) -> Result<bool> {
        zk_client::blocking::block_on(self.wait(timeout), None).unwrap_or(Ok(false))
    }
}

/// The host name, as a stand-in for Python's `socket.getfqdn()` in kazoo's
/// default identifiers (`"<host>-<pid>"`).
pub(crate) fn default_identifier() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// kazoo's `DoubleBarrier`: [`enter`](DoubleBarrier::enter) blocks until
/// `num_clients` members have entered, [`leave`](DoubleBarrier::leave) until
/// all have left.
///
/// # Layout (kazoo 2.11)
///
/// Members are `<path>/<32 hex>`, EPHEMERAL, data = identifier in UTF-8
/// (default `"<host>-<pid>"`); `<path>/ready` (persistent, empty) is created by
/// the member that sees `num_clients` children. Entering counts **all**
/// children, as kazoo does. Leaving deletes `ready`, then: the lowest member
/// (by name) waits for the highest to go, every other member deletes its node
/// and waits for the lowest to go, until none is left. Curator's
/// `DistributedDoubleBarrier` uses the same scheme.
///
/// A member stays in (its node stays) until it leaves or its session ends,
/// also when an `enter` future is dropped before the barrier opened.
///
/// # Differences from kazoo
///
/// kazoo's `enter` swallows errors (it returns normally, not participating);
/// here they are returned, after removing our node. Both ride through
/// connection losses. Leaving ignores a `ready` node another member re-creates
/// meanwhile (as Curator does).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::DoubleBarrier;
/// let b = DoubleBarrier::new(&zk, "/app/phase", 4, Some("worker-1"))?;
/// b.enter().await?; // all 4 are in
/// // ... the work ...
/// b.leave().await?; // all 4 are out
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a DoubleBarrier does nothing until entered"]
pub struct DoubleBarrier {
    inner: Arc<DoubleInner>,
}

#[derive(Debug)]
struct DoubleInner {
    client: Client,
    path: String,
    num_clients: usize,
    identifier: String,
    node_name: String,
}

impl DoubleBarrier {
    /// A member of the barrier at `path` that opens when `num_clients` have
    /// entered; `identifier` is its node's data (`None`: `"<host>-<pid>"`).
    pub fn new(
        client: &Client,
        path: &str,
        num_clients: usize,
        identifier: Option<&str>,
    ) -> Result<DoubleBarrier> {
        zk_proto::path::validate_path(path, false)?;
        Ok(DoubleBarrier {
            inner: Arc::new(DoubleInner {
                client: client.clone(),
                path: path.to_owned(),
                num_clients,
                identifier: identifier.map_or_else(default_identifier, str::to_owned),
                node_name: uuid_hex(),
            }),
        })
    }

    /// This member's node.
    pub fn node_path(&self) -> String {
        join(&self.inner.path, &self.inner.node_name)
    }

    /// Joins and waits until `num_clients` members have joined.
    pub fn enter(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let r = retrying(&inner.client, || inner.enter_once()).await;
            if r.is_err() {
                let _ = inner
                    .client
                    .delete(&join(&inner.path, &inner.node_name), None)
                    .await;
            }
            r
        }
    }

    /// Leaves and waits until every member has left.
    pub fn leave(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let inner = self.inner.clone();
        async move { retrying(&inner.client, || inner.leave_once()).await }
    }

    /// [`enter`](DoubleBarrier::enter) from a thread.
    pub fn enter_blocking(&self) -> Result<()> {
        zk_client::blocking::block_on(self.enter(), None).unwrap_or(Ok(()))
    }

    /// [`leave`](DoubleBarrier::leave) from a thread.
    pub fn leave_blocking(&self) -> Result<()> {
        zk_client::blocking::block_on(self.leave(), None).unwrap_or(Ok(()))
    }
}

impl DoubleInner {
    async fn enter_once(&self) -> Result<()> {
        let c = &self.client;
        wait_connected(c).await?;
        c.ensure_path(&self.path).await?;
        match c
            .create(
                &join(&self.path, &self.node_name),
                self.identifier.as_bytes(),
                CreateMode::Ephemeral,
            )
            .await
        {
            Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
            Err(e) => return Err(e),
        }
        let ready = join(&self.path, "ready");
        loop {
            let (stat, watch) = c.exists_watch(&ready).await?;
            if stat.is_some() {
                return Ok(());
            }
            let kids = c.get_children(&self.path).await?;
            if kids.len() >= self.num_clients {
                c.ensure_path(&ready).await?;
                return Ok(());
            }
            woken(c, watch).await;
        }
    }

    async fn leave_once(&self) -> Result<()> {
        let c = &self.client;
        wait_connected(c).await?;
        match c.delete(&join(&self.path, "ready"), None).await {
            Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {}
            Err(e) => return Err(e),
        }
        let me = join(&self.path, &self.node_name);
        loop {
            let mut kids: Vec<String> = match c.get_children(&self.path).await {
                Ok(k) => k.into_iter().filter(|k| k != "ready").collect(),
                Err(Error::Server(ErrorCode::NoNode)) => return Ok(()),
                Err(e) => return Err(e),
            };
            if kids.is_empty() {
                return Ok(());
            }
            if kids.len() == 1 && kids[0] == self.node_name {
                return match c.delete(&me, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            kids.sort();
            let target = if kids[0] == self.node_name {
                // The lowest waits for the highest to go.
                kids[kids.len() - 1].clone()
            } else {
                match c.delete(&me, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {}
                    Err(e) => return Err(e),
                }
                kids[0].clone()
            };
            match c.exists_watch(&join(&self.path, &target)).await? {
                (None, _) => continue,
                (Some(_), w) => {
                    woken(c, w).await;
                }
            }
        }
    }
}
