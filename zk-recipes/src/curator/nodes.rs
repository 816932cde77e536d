//! [`PersistentNode`] and [`GroupMember`]: nodes that stay, as Curator's
//! `PersistentNode` and `GroupMember` keep them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use zk_client::{Client, CreateMode, Error, ErrorCode, Result};

use crate::common::parent_of;
use crate::common::{
    children_data, children_or_none, either, join, retryable, retrying, settle, wait_connected,
    Cancel, Delay,
};
use crate::curator::protected::{ensure_containers, ProtectedCreate};
use crate::mailbox::lock;
use crate::runtime::Spawner;

/// Options of a [`PersistentNode`].
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Create in Curator's protected mode (`_c_<uuid>-` prefix; meant for the
    /// sequential modes, whose name changes with every re-creation).
    pub protected: bool,
    /// Where the keeping loop runs (default: a thread of its own).
    pub spawner: Spawner,
}

struct Inner {
    client: Client,
    path: String,
    mode: CreateMode,
    protected: bool,
    data: Mutex<Vec<u8>>,
    actual: Mutex<Option<String>>,
    closed: Cancel,
    /// Bumped whenever the node is (re)created.
    created: Cancel,
}

/// Curator's `PersistentNode`: a node that is kept existing — created at
/// [`start`](PersistentNode::start), made again whenever it is deleted, and
/// (for the ephemeral modes) made again under a new session after the old
/// one expired — until [`close`](PersistentNode::close) deletes it.
///
/// # Layout (Curator 5)
///
/// `<path>` in the mode given (a sequential mode appends the sequence, and
/// each re-creation gets a new one); with [`NodeOptions::protected`], the
/// name has Curator's `_c_<uuid>-` prefix. Missing parents are containers.
/// When a non-sequential node already exists it is adopted (its data set to
/// this node's) if it is this session's or persistent; another session's
/// ephemeral is waited out, then replaced.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_client::CreateMode;
/// use zk_recipes::curator::PersistentNode;
/// let n = PersistentNode::new(&zk, "/app/alive/host-1", CreateMode::Ephemeral, b"up".to_vec());
/// n.start();
/// assert!(n.wait_for_initial_create(Duration::from_secs(10)).await);
/// n.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PersistentNode {
    inner: Arc<Inner>,
    spawner: Spawner,
}

impl std::fmt::Debug for PersistentNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentNode")
            .field("path", &self.inner.path)
            .field("actual", &self.actual_path())
            .finish()
    }
}

impl PersistentNode {
    /// A node at `path` in `mode` holding `data` (not started).
    pub fn new(client: &Client, path: &str, mode: CreateMode, data: Vec<u8>) -> PersistentNode {
        PersistentNode::with_options(client, path, mode, data, NodeOptions::default())
    }

    /// A node with options.
    pub fn with_options(
        client: &Client,
        path: &str,
        mode: CreateMode,
        data: Vec<u8>,
        opts: NodeOptions,
    ) -> PersistentNode {
        PersistentNode {
            inner: Arc::new(Inner {
                client: client.clone(),
                path: path.to_owned(),
                mode,
                protected: opts.protected,
                data: Mutex::new(data),
                actual: Mutex::new(None),
                closed: Cancel::default(),
                created: Cancel::default(),
            }),
            spawner: opts.spawner,
        }
    }

    /// Starts keeping the node.
    pub fn start(&self) {
        let inner = self.inner.clone();
        self.spawner
            .spawn("zk-curator-persistent-node", Box::pin(inner.keep()));
    }

    /// The node's path as created (with the sequence), `None` while it does
    /// not exist (Java's `getActualPath`).
    pub fn actual_path(&self) -> Option<String> {
        lock(&self.inner.actual).clone()
    }

    /// Waits until the node was first created (Java's `waitForInitialCreate`).
    pub fn wait_for_initial_create(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = bool> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let mut deadline = pin!(Delay::new(timeout));
            loop {
                let gen = inner.created.generation();
                if lock(&inner.actual).is_some() {
                    return true;
                }
                let mut created = inner.created.wait(gen);
                let timed_out = std::future::poll_fn(|cx| {
                    if created.poll_cancelled(cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    deadline.as_mut().poll(cx).map(|()| true)
                })
                .await;
                if timed_out {
                    return lock(&inner.actual).is_some();
                }
            }
        }
    }

    /// [`wait_for_initial_create`](Self::wait_for_initial_create) from a thread.
    pub fn wait_for_initial_create_blocking(&self, timeout: Duration) -> bool {
        zk_client::blocking::block_on(self.wait_for_initial_create(timeout), None).unwrap_or(false)
    }

    /// The data the node is kept with.
    pub fn data(&self) -> Vec<u8> {
        lock(&self.inner.data).clone()
    }

    /// Changes the node's data, now and for every re-creation (Java's
    /// `setData`).
    pub fn set_data(&self, data: Vec<u8>) -> impl Future<Output = Result<()>> + Send + 'static {
        *lock(&self.inner.data) = data.clone();
        let inner = self.inner.clone();
        async move {
            retrying(&inner.client, || async {
                let Some(p) = lock(&inner.actual).clone() else {
                    return Ok(()); // written when it is made again
                };
                match inner.client.set_data(&p, data.clone(), None).await {
                    Ok(_) | Err(Error::Server(ErrorCode::NoNode)) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
        }
    }

    /// [`set_data`](Self::set_data) from a thread.
    pub fn set_data_blocking(&self, data: Vec<u8>) -> Result<()> {
        zk_client::blocking::block_on(self.set_data(data), None).unwrap_or(Err(Error::Timeout))
    }

    /// Stops keeping the node and deletes it (Java's `close()`).
    pub fn close(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.closed.cancel();
        let inner = self.inner.clone();
        async move {
            let Some(p) = lock(&inner.actual).take() else {
                return;
            };
            loop {
                match inner.client.delete(&p, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => return,
                    Err(e) if retryable(&e) => {
                        if settle(&inner.client, &e).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(path = %p, error = %e, "closing a persistent node");
                        return;
                    }
                }
            }
        }
    }

    /// [`close`](Self::close) from a thread.
    pub fn close_blocking(&self) {
        zk_client::blocking::block_on(self.close(), None);
    }

    /// Stops keeping the node and leaves it as it is.
    pub(crate) fn stop(&self) {
        self.inner.closed.cancel();
    }
}

/// Curator's `PersistentTtlNode`: a node that lives while this process
/// touches it and goes on its own a TTL after the process stops (with no
/// session tied to it, unlike an ephemeral).
///
/// # Layout (Curator 5.4)
///
/// `<path>` is a CONTAINER kept by a [`PersistentNode`] (data as given), and
/// `<path>/touch` a `PERSISTENT_WITH_TTL` node (data = the local address)
/// written every `ttl / 2`, made again if gone. When the writes stop, the
/// server deletes `touch` once the TTL passed, then the empty container.
/// [`close`](Self::close) only stops the writes (Java's too). The server
/// needs `zookeeper.extendedTypesEnabled=true` for TTL nodes.
#[derive(Clone)]
pub struct PersistentTtlNode {
    node: PersistentNode,
    client: Client,
    touch: String,
    ttl: Duration,
    closed: Arc<Cancel>,
}

impl std::fmt::Debug for PersistentTtlNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentTtlNode")
            .field("touch", &self.touch)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The child a [`PersistentTtlNode`] touches.
pub const TTL_TOUCH_NODE: &str = "touch";

impl PersistentTtlNode {
    /// A TTL node at `path` holding `data` (not started).
    pub fn new(
        client: &Client,
        path: &str,
        ttl: Duration,
        data: Vec<u8>,
    ) -> Result<PersistentTtlNode> {
        zk_proto::path::validate_path(path, false)?;
        if ttl.is_zero() {
            return Err(Error::InvalidArgument("a TTL node needs a TTL".into()));
        }
        Ok(PersistentTtlNode {
            node: PersistentNode::new(client, path, CreateMode::Container, data),
            client: client.clone(),
            touch: join(path, TTL_TOUCH_NODE),
            ttl,
            closed: Arc::new(Cancel::default()),
        })
    }

    /// Starts keeping the container and touching its child (every `ttl / 2`).
    pub fn start(&self) {
        self.start_on(&Spawner::default())
    }

    /// [`start`](Self::start), the touching loop on `spawner`.
    pub fn start_on(&self, spawner: &Spawner) {
        self.node.start();
        let (c, touch, ttl, closed) = (
            self.client.clone(),
            self.touch.clone(),
            self.ttl,
            self.closed.clone(),
        );
        let since = closed.generation();
        spawner.spawn(
            "zk-curator-ttl-node",
            Box::pin(async move {
                let data = crate::curator::local_address().as_bytes().to_vec();
                let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
                loop {
                    if closed.generation() != since {
                        return;
                    }
                    let r = match c.set_data(&touch, data.clone(), None).await {
                        Err(Error::Server(ErrorCode::NoNode)) => c
                            .create(&touch, data.clone(), CreateMode::PersistentWithTtl(ttl_ms))
                            .await
                            .map(|_| ()),
                        r => r.map(|_| ()),
                    };
                    if let Err(e) = r {
                        tracing::debug!(path = %touch, error = %e, "could not touch the TTL node");
                        // Ends with the client (closed, or expired for good).
                        if wait_connected(&c).await.is_err() {
                            return;
                        }
                    }
                    let mut wait = pin!(Delay::new(ttl / 2));
                    let mut closing = closed.wait(since);
                    std::future::poll_fn(|cx| {
                        if closing.poll_cancelled(cx).is_ready() {
                            return Poll::Ready(());
                        }
                        wait.as_mut().poll(cx)
                    })
                    .await;
                }
            }),
        );
    }

    /// Waits until the container was first created.
    pub fn wait_for_initial_create(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = bool> + Send + 'static {
        self.node.wait_for_initial_create(timeout)
    }

    /// Changes the container's data.
    pub fn set_data(&self, data: Vec<u8>) -> impl Future<Output = Result<()>> + Send + 'static {
        self.node.set_data(data)
    }

    /// Stops touching; the nodes go on their own once the TTL passed (Java's
    /// `close()`).
    pub fn close(&self) {
        self.closed.cancel();
        self.node.stop();
    }
}

fn is_ephemeral(m: CreateMode) -> bool {
    matches!(m, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
}

fn is_sequential(m: CreateMode) -> bool {
    matches!(
        m,
        CreateMode::EphemeralSequential | CreateMode::PersistentSequential
    )
}

impl Inner {
    /// The keeping loop: make the node, watch it, make it again when it goes
    /// or the session changes.
    async fn keep(self: Arc<Self>) {
        let since = self.closed.generation();
        let mut states = self.client.state_stream();
        loop {
            if self.closed.generation() != since {
                return;
            }
            let step: Result<()> = async {
                wait_connected(&self.client).await?;
                let current = lock(&self.actual).clone();
                let path = match current {
                    Some(p) => p,
                    None => {
                        let p = self.create().await?;
                        if self.closed.generation() != since {
                            // Closed meanwhile: do not leave it behind.
                            let _ = self.client.delete(&p, None).await;
                            return Ok(());
                        }
                        *lock(&self.actual) = Some(p.clone());
                        self.created.cancel();
                        p
                    }
                };
                let (stat, watch) = self.client.exists_watch(&path).await?;
                let session = self.client.session().map(|s| s.id).unwrap_or(0);
                match stat {
                    None => {
                        *lock(&self.actual) = None;
                        return Ok(());
                    }
                    // An ephemeral of a session that is over: it goes soon,
                    // and this one is made again then.
                    Some(s) if is_ephemeral(self.mode) && s.ephemeral_owner != session => {}
                    Some(_) => {}
                }
                let mut closing = self.closed.wait(since);
                let closed = std::future::poll_fn(|cx| closing.poll_cancelled(cx));
                either(closed, either(watch, states.next())).await;
                Ok(())
            }
            .await;
            match step {
                Ok(()) => {}
                Err(e) if retryable(&e) => {
                    if settle(&self.client, &e).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // The client is finished (closed, auth failed, expired
                    // for good): nothing can be kept any more.
                    if wait_connected(&self.client).await.is_err() {
                        return;
                    }
                    tracing::warn!(path = %self.path, error = %e, "persistent node: trying again in 1 s");
                    Delay::new(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Makes the node; returns its path.
    async fn create(&self) -> Result<String> {
        let data = lock(&self.data).clone();
        if self.protected {
            return Ok(ProtectedCreate::new(&self.path, self.mode)
                .data(&data)
                .run(&self.client)
                .await?
                .0);
        }
        loop {
            match self
                .client
                .create(&self.path, data.clone(), self.mode)
                .await
            {
                Ok(p) => return Ok(p),
                Err(Error::Server(ErrorCode::NoNode)) => {
                    if let Some(parent) = parent_of(&self.path) {
                        ensure_containers(&self.client, parent).await?;
                    }
                }
                Err(Error::Server(ErrorCode::NodeExists)) if !is_sequential(self.mode) => {
                    // Adopted: this session's, or persistent. Another
                    // session's ephemeral is watched until it goes.
                    match self.client.set_data(&self.path, data.clone(), None).await {
                        Ok(_) => return Ok(self.path.clone()),
                        Err(Error::Server(ErrorCode::NoNode)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Curator's `GroupMember`: this process's membership of a group — an
/// EPHEMERAL node `<path>/<id>` holding the payload, kept by a
/// [`PersistentNode`] (so it comes back after a deletion or a new session)
/// — and the group's current members. Java's `GroupMember` on the same path
/// lists this one, and the reverse.
#[derive(Clone, Debug)]
pub struct GroupMember {
    node: PersistentNode,
    client: Client,
    path: String,
    id: String,
}

impl GroupMember {
    /// Member `id` of the group at `path` with this payload (not started).
    pub fn new(client: &Client, path: &str, id: &str, payload: Vec<u8>) -> Result<GroupMember> {
        zk_proto::path::validate_path(&join(path, id), false)?;
        Ok(GroupMember {
            node: PersistentNode::new(client, &join(path, id), CreateMode::Ephemeral, payload),
            client: client.clone(),
            path: path.to_owned(),
            id: id.to_owned(),
        })
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Joins the group.
    pub fn start(&self) {
        self.node.start()
    }

    /// The membership node.
    pub fn node(&self) -> &PersistentNode {
        &self.node
    }

    /// Changes this member's payload (Java's `setThisData`).
    pub fn set_payload(
        &self,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        self.node.set_data(payload)
    }

    /// Every member by id with its payload, read now (Java's
    /// `getCurrentMembers`, which answers from a cache).
    pub fn current_members(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<u8>>>> + Send + 'static {
        let (c, path) = (self.client.clone(), self.path.clone());
        async move {
            retrying(&c, || async {
                let kids = children_or_none(&c, &path).await?;
                let read = children_data(&c, &path, kids).await?;
                Ok(read.into_iter().map(|(k, d)| (k, d.to_vec())).collect())
            })
            .await
        }
    }

    /// [`current_members`](Self::current_members) from a thread.
    pub fn current_members_blocking(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        zk_client::blocking::block_on(self.current_members(), None).unwrap_or(Err(Error::Timeout))
    }

    /// Leaves the group (deletes the node).
    pub fn close(&self) -> impl Future<Output = ()> + Send + 'static {
        self.node.close()
    }
}
