//! [`ServiceCache`]: the instances of one service, kept current by a
//! [`TreeCache`](crate::TreeCache) (Curator's `ServiceCache`).

use std::time::Duration;

use zk_client::{Error, Result};

use crate::common::join;
use crate::curator::discovery::{ServiceDiscovery, ServiceInstance};
use crate::runtime::Spawner;
use crate::tree_cache::{TreeCache, TreeCacheError, TreeCacheOptions, TreeEvent};

/// Curator's `ServiceCache`: a local, watched copy of every instance of one
/// service (`<base>/<name>/*`), whoever registered them (Java or Rust).
/// Instances appear, change and disappear as their nodes do, an ephemeral
/// one once its session is gone. Nodes that do not parse as instances are
/// left out.
#[must_use = "dropping a ServiceCache stops it"]
pub struct ServiceCache {
    name: String,
    root: String,
    tree: TreeCache,
}

impl std::fmt::Debug for ServiceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCache")
            .field("root", &self.root)
            .finish()
    }
}

impl ServiceCache {
    /// Starts caching `name`'s instances (its loop on a thread of its own).
    pub fn new(discovery: &ServiceDiscovery, name: &str) -> Result<ServiceCache> {
        ServiceCache::with_spawner(discovery, name, Spawner::default())
    }

    /// Starts caching, its loop on `spawner`.
    pub fn with_spawner(
        discovery: &ServiceDiscovery,
        name: &str,
        spawner: Spawner,
    ) -> Result<ServiceCache> {
        let root = join(discovery.base(), name);
        let tree = TreeCache::with_options(
            discovery.client(),
            &root,
            TreeCacheOptions {
                spawner,
                ..TreeCacheOptions::default()
            },
        )?;
        Ok(ServiceCache {
            name: name.to_owned(),
            root,
            tree,
        })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cached instances, by id (Java's `getInstances`).
    pub fn instances(&self) -> Vec<ServiceInstance> {
        let mut out = Vec::new();
        for kid in self.tree.children(&self.root).unwrap_or_default() {
            if let Some((data, _)) = self.tree.get(&join(&self.root, &kid)) {
                if let Ok(i) = ServiceInstance::from_json(&data) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// Blocks until the first full read is done.
    pub fn wait_initialized(&self, timeout: Option<Duration>) -> Result<()> {
        self.tree.wait_initialized(timeout).map_err(|e| match e {
            TreeCacheError::Timeout => Error::Timeout,
            TreeCacheError::Client(e) => e,
            e => Error::InvalidArgument(e.to_string()),
        })
    }

    /// Waits for the next change of the instances (Java's `cacheChanged`);
    /// `Ok(None)` once the cache stopped, `Err(Timeout)` if none came.
    pub fn recv_change_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<()>> {
        loop {
            match self.tree.recv_event_timeout(timeout)? {
                None => return Ok(None),
                Some(e) if self.is_change(&e) => return Ok(Some(())),
                Some(_) => {}
            }
        }
    }

    /// The next change of the instances, from async code.
    pub async fn next_change(&mut self) -> Option<()> {
        loop {
            let e = self.tree.next_event().await?;
            if self.is_change(&e) {
                return Some(());
            }
        }
    }

    fn is_change(&self, e: &TreeEvent) -> bool {
        match e {
            TreeEvent::NodeAdded { path, .. }
            | TreeEvent::NodeUpdated { path, .. }
            | TreeEvent::NodeRemoved { path, .. } => path != &self.root,
            TreeEvent::Overflow { .. } | TreeEvent::Resynced => true,
            _ => false,
        }
    }
}
