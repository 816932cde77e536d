//! [`ServiceDiscovery`]: registering and querying instances at
//! `<base>/<name>/<id>`, as Curator's `ServiceDiscoveryImpl` does.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use zk_client::{Client, CreateMode, Error, ErrorCode, Result, SessionState};

use crate::common::{children_or_none, join, retryable, retrying, settle};
use crate::curator::discovery::ServiceInstance;
use crate::curator::ensure_containers;
use crate::data_watch::DataWatch;
use crate::mailbox::lock;
use crate::runtime::Spawner;
use crate::WatchHandle;

/// Options of a [`ServiceDiscovery`].
#[derive(Clone, Debug, Default)]
pub struct DiscoveryOptions {
    /// Where the re-registration loop (and the instances' watches) run
    /// (default: a thread of its own).
    pub spawner: Spawner,
    /// Curator's `watchInstances(true)`: each instance registered here is
    /// watched, and when its node's data is changed from outside (another
    /// process rewrote the instance), that instance replaces the one
    /// registered here, so that re-registration after a new session writes
    /// it rather than the original. A deleted node is only logged. Default
    /// off, as in Curator.
    pub watch_instances: bool,
}

struct Inner {
    client: Client,
    base: String,
    /// What this process registered, by id, with the path each got.
    services: Mutex<BTreeMap<String, (ServiceInstance, String)>>,
    closed: crate::common::Cancel,
    started: std::sync::atomic::AtomicBool,
    /// With `watch_instances`: a watch per registered id, with the path it
    /// watches.
    watches: Option<Mutex<BTreeMap<String, (String, WatchHandle)>>>,
    spawner: Spawner,
}

/// Curator's `ServiceDiscovery` (curator-x-discovery): a registry of service
/// instances that Java's `ServiceDiscovery`, `ServiceCache` and
/// `ServiceProvider` read, and that reads theirs.
///
/// # Layout (Curator 5)
///
/// `<base>/<name>/<id>` holds one instance's JSON
/// ([`ServiceInstance::to_json`]); DYNAMIC instances are ephemeral,
/// DYNAMIC_SEQUENTIAL ephemeral sequential (the id gets the sequence),
/// STATIC and PERMANENT persistent. `<base>` and `<base>/<name>` are made as
/// containers. Instances are not protected creates.
///
/// # Re-registration
///
/// Once [`start`](ServiceDiscovery::start)ed, every instance registered here
/// is registered again whenever the client connects (a reconnection or a new
/// session after expiry), as Curator does on CONNECTED and RECONNECTED. Where
/// Curator always deletes and re-creates the node (so that watchers fire,
/// and caches churn on every reconnect: CURATOR-146), this keeps a node that
/// is still this session's own and holds this instance's bytes; any other
/// node at the path (another session's, or stale data) is deleted and made
/// again, as Curator does.
///
/// With [`DiscoveryOptions::watch_instances`], an instance rewritten in its
/// node by another process is re-registered as rewritten (Curator's
/// `watchInstances`).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::curator::{ServiceDiscovery, ServiceInstance};
/// let d = ServiceDiscovery::new(&zk, "/services")?;
/// d.start();
/// let me = ServiceInstance::new("api").address("10.0.0.7").port(8080);
/// d.register(&me).await?;
/// for i in d.query_for_instances("api").await? {
///     println!("{} at {:?}:{:?}", i.id, i.address, i.port);
/// }
/// d.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceDiscovery {
    inner: Arc<Inner>,
    spawner: Spawner,
}

impl std::fmt::Debug for ServiceDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDiscovery")
            .field("base", &self.inner.base)
            .finish()
    }
}

impl ServiceDiscovery {
    /// A registry under `base` (not started).
    pub fn new(client: &Client, base: &str) -> Result<ServiceDiscovery> {
        ServiceDiscovery::with_options(client, base, DiscoveryOptions::default())
    }

    /// A registry with options.
    pub fn with_options(
        client: &Client,
        base: &str,
        opts: DiscoveryOptions,
    ) -> Result<ServiceDiscovery> {
        zk_proto::path::validate_path(base, false)?;
        Ok(ServiceDiscovery {
            inner: Arc::new(Inner {
                client: client.clone(),
                base: base.trim_end_matches('/').to_owned(),
                services: Mutex::new(BTreeMap::new()),
                closed: Default::default(),
                started: Default::default(),
                watches: opts.watch_instances.then(Default::default),
                spawner: opts.spawner.clone(),
            }),
            spawner: opts.spawner,
        })
    }

    /// The base path.
    pub fn base(&self) -> &str {
        &self.inner.base
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Starts re-registering on every (re)connection, until
    /// [`close`](Self::close).
    pub fn start(&self) {
        if self
            .inner
            .started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let inner = self.inner.clone();
        let since = inner.closed.generation();
        self.spawner.spawn(
            "zk-curator-discovery",
            Box::pin(async move {
                let mut states = inner.client.state_stream();
                let mut was_connected = inner.client.state().is_connected();
                loop {
                    let next = states.next();
                    let mut next = std::pin::pin!(next);
                    let mut closing = inner.closed.wait(since);
                    let s = std::future::poll_fn(|cx| {
                        if closing.poll_cancelled(cx).is_ready() {
                            return std::task::Poll::Ready(None);
                        }
                        next.as_mut().poll(cx)
                    })
                    .await;
                    let Some(s) = s else { return };
                    if s == SessionState::Closed {
                        return;
                    }
                    let connected = s.is_connected();
                    if connected && !was_connected {
                        inner.reregister().await;
                    }
                    was_connected = connected;
                }
            }),
        );
    }

    /// The path of an instance of `name` with `id`.
    pub fn path_for(&self, name: &str, id: &str) -> String {
        join(&join(&self.inner.base, name), id)
    }

    /// Registers `instance` (or registers it again), and keeps it registered
    /// across reconnections. Returns the node's path (with the sequence for
    /// DYNAMIC_SEQUENTIAL).
    pub async fn register(&self, instance: &ServiceInstance) -> Result<String> {
        let path = self.inner.create(instance).await?;
        lock(&self.inner.services).insert(instance.id.clone(), (instance.clone(), path.clone()));
        self.inner.watch(&instance.id, &path)?;
        Ok(path)
    }

    /// Replaces a registered instance's data (Java's `updateService`).
    pub async fn update(&self, instance: &ServiceInstance) -> Result<()> {
        let path = {
            let mut s = lock(&self.inner.services);
            let Some(e) = s.get_mut(&instance.id) else {
                return Err(Error::InvalidArgument(format!(
                    "service has been unregistered: {}",
                    instance.id
                )));
            };
            e.0 = instance.clone();
            e.1.clone()
        };
        let bytes = instance.to_json();
        self.inner
            .retry(|c| {
                let (path, bytes) = (path.clone(), bytes.clone());
                async move { c.set_data(&path, bytes, None).await.map(|_| ()) }
            })
            .await
    }

    /// Deletes an instance's node and forgets it (Java's `unregisterService`);
    /// a node already gone is fine.
    pub async fn unregister(&self, instance: &ServiceInstance) -> Result<()> {
        let path = lock(&self.inner.services)
            .remove(&instance.id)
            .map(|e| e.1)
            .unwrap_or_else(|| self.path_for(&instance.name, &instance.id));
        if let Some(w) = &self.inner.watches {
            lock(w).remove(&instance.id);
        }
        self.inner.delete(&path).await
    }

    /// The names of every service under the base (Java's `queryForNames`).
    pub async fn query_for_names(&self) -> Result<Vec<String>> {
        self.inner.children(&self.inner.base).await
    }

    /// Every instance of `name` (Java's `queryForInstances`); nodes that are
    /// not instances are skipped with a warning (Java fails the whole query).
    pub async fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        let dir = join(&self.inner.base, name);
        let kids = self.inner.children(&dir).await?;
        let mut out = Vec::new();
        for k in kids {
            if let Some(i) = self.read(&join(&dir, &k)).await? {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// One instance (Java's `queryForInstance`), `None` if not registered.
    pub async fn query_for_instance(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<ServiceInstance>> {
        self.read(&self.path_for(name, id)).await
    }

    async fn read(&self, path: &str) -> Result<Option<ServiceInstance>> {
        let path = path.to_owned();
        let data = self
            .inner
            .retry(|c| {
                let path = path.clone();
                async move {
                    match c.get_data(&path).await {
                        Ok((d, _)) => Ok(Some(d)),
                        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        Ok(data.and_then(|d| match ServiceInstance::from_json(&d) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "skipping a node that is not a service instance");
                None
            }
        }))
    }

    /// Stops re-registering and unregisters every instance registered here
    /// (Java's `close()`).
    pub async fn close(&self) {
        self.inner.closed.cancel();
        if let Some(w) = &self.inner.watches {
            lock(w).clear();
        }
        let all: Vec<_> = std::mem::take(&mut *lock(&self.inner.services))
            .into_values()
            .collect();
        for (_, path) in all {
            if let Err(e) = self.inner.delete(&path).await {
                tracing::warn!(path = %path, error = %e, "could not unregister on close");
            }
        }
    }

    /// [`register`](Self::register) from a thread.
    pub fn register_blocking(&self, instance: &ServiceInstance) -> Result<String> {
        block(self.register(instance))
    }

    /// [`update`](Self::update) from a thread.
    pub fn update_blocking(&self, instance: &ServiceInstance) -> Result<()> {
        block(self.update(instance))
    }

    /// [`unregister`](Self::unregister) from a thread.
    pub fn unregister_blocking(&self, instance: &ServiceInstance) -> Result<()> {
        block(self.unregister(instance))
    }

    /// [`query_for_names`](Self::query_for_names) from a thread.
    pub fn query_for_names_blocking(&self) -> Result<Vec<String>> {
        block(self.query_for_names())
    }

    /// [`query_for_instances`](Self::query_for_instances) from a thread.
    pub fn query_for_instances_blocking(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        block(self.query_for_instances(name))
    }

    /// [`query_for_instance`](Self::query_for_instance) from a thread.
    pub fn query_for_instance_blocking(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<ServiceInstance>> {
        block(self.query_for_instance(name, id))
    }

    /// [`close`](Self::close) from a thread.
    pub fn close_blocking(&self) {
        zk_client::blocking::block_on(self.close(), None);
    }
}

fn block<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    zk_client::blocking::block_on(f, None).unwrap_or(Err(Error::Timeout))
}

impl Inner {
    /// With `watch_instances`: watches the node of `id` at `path` (again if
    /// its path changed, as a DYNAMIC_SEQUENTIAL one's does on
    /// re-registration).
    fn watch(self: &Arc<Self>, id: &str, path: &str) -> Result<()> {
        let Some(watches) = &self.watches else {
            return Ok(());
        };
        if lock(watches).get(id).is_some_and(|(p, _)| p == path) {
            return Ok(());
        }
        let weak: Weak<Inner> = Arc::downgrade(self);
        let watched = path.to_owned();
        // Every report counts, the first too: it is normally the node as
        // just written (no change), but a rewrite made before the watch's
        // first read is not lost (Curator's node cache ignores what its
        // first read finds).
        let handle = DataWatch::callback_with_spawner(
            &self.client,
            path,
            &self.spawner,
            move |u| {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                match u.data {
                    Some(d) => match ServiceInstance::from_json(&d) {
                        // Curator looks the instance up by the id it reads.
                        Ok(i) => {
                            if let Some(e) = lock(&inner.services).get_mut(&i.id) {
                                e.0 = i;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(path = %watched, error = %e, "could not read a watched instance")
                        }
                    },
                    None => {
                        tracing::warn!(path = %watched, "a registered instance's node was deleted")
                    }
                }
                true
            },
        )?;
        lock(watches).insert(id.to_owned(), (path.to_owned(), handle));
        Ok(())
    }

    /// Runs `op` until it succeeds or fails for good, waiting out lost
    /// connections.
    async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        retrying(&self.client, || op(self.client.clone())).await
    }

    /// The children of `dir`, none while it does not exist (no service registered
    /// yet, or its last instance gone with its container).
    async fn children(&self, dir: &str) -> Result<Vec<String>> {
        self.retry(|c| {
            let dir = dir.to_owned();
            async move { children_or_none(&c, &dir).await }
        })
        .await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let path = path.to_owned();
        self.retry(|c| {
            let path = path.clone();
            async move {
                match c.delete(&path, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await
    }

    /// Makes the instance's node (Curator's `internalRegisterService`): on
    /// NodeExists the node is kept if it is this session's own with these
    /// bytes (a retried create that had been applied, or a reconnection),
    /// else deleted and made again, at most twice.
    async fn create(&self, instance: &ServiceInstance) -> Result<String> {
        let dir = join(&self.base, &instance.name);
        let path = join(&dir, &instance.id);
        let bytes = instance.to_json();
        let mode = instance.service_type.create_mode();
        let mut replaced = 0;
        loop {
            let r = async {
                ensure_containers(&self.client, &dir).await?;
                self.client.create(&path, bytes.clone(), mode).await
            }
            .await;
            match r {
                Ok(p) => return Ok(p),
                Err(Error::Server(ErrorCode::NodeExists))
                    if mode != CreateMode::EphemeralSequential =>
                {
                    let own = match self.client.get_data(&path).await {
                        Ok((d, st)) => {
                            let session = self.client.session().map(|s| s.id).unwrap_or(0);
                            let owner_ok = if instance.service_type.is_ephemeral() {
                                st.ephemeral_owner == session
                            } else {
                                true
                            };
                            (owner_ok && d.as_ref() == bytes.as_slice()).then_some(())
                        }
                        Err(Error::Server(ErrorCode::NoNode)) => None,
                        Err(e) if retryable(&e) => {
                            settle(&self.client, &e).await?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    if own.is_some() {
                        return Ok(path);
                    }
                    replaced += 1;
                    if replaced > 2 {
                        return Err(Error::Server(ErrorCode::NodeExists));
                    }
                    // Deleted then made again so that watchers fire (Curator).
                    self.delete(&path).await?;
                }
                // The parent was swept (an empty container) between the two.
                Err(Error::Server(ErrorCode::NoNode)) => {}
                Err(e) if retryable(&e) => settle(&self.client, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the node registered for `id` still exists under this session.
    async fn still_own(&self, id: &str) -> bool {
        let Some(path) = lock(&self.services).get(id).map(|e| e.1.clone()) else {
            return false;
        };
        let session = self.client.session().map(|s| s.id);
        matches!(self.client.exists(&path).await, Ok(Some(st)) if Some(st.ephemeral_owner) == session)
    }

    /// Registers every instance again (after a (re)connection).
    async fn reregister(self: &Arc<Self>) {
        let all: Vec<_> = lock(&self.services)
            .values()
            .map(|(i, _)| i.clone())
            .collect();
        for i in all {
            if i.service_type == crate::curator::discovery::ServiceType::DynamicSequential
                && self.still_own(&i.id).await
            {
                // A sequential create cannot meet NodeExists: one made again
                // while the old one lives would be a second instance.
                continue;
            }
            match self.create(&i).await {
                Ok(path) => {
                    if let Some(e) = lock(&self.services).get_mut(&i.id) {
                        e.1 = path.clone();
                    }
                    if let Err(e) = self.watch(&i.id, &path) {
                        tracing::warn!(id = %i.id, error = %e, "could not watch a re-registered instance")
                    }
                }
                Err(e) => {
                    tracing::warn!(id = %i.id, error = %e, "could not re-register a service instance")
                }
            }
        }
    }
}
