//! Curator's protected creates (`ProtectedMode`, `ProtectedUtils`), container
//! parents, and its default node data.

use std::future::Future;
use std::sync::OnceLock;

use zk_client::{Client, CreateMode, CreateOptions, Error, ErrorCode, Result, Stat};

use crate::common::{java_uuid, join, parent_of, retryable, settle, wait_connected};

/// The protected prefix `_c_<uuid>-`: a random (version 4) UUID as Java prints
/// it, 36 lowercase characters with dashes.
pub(crate) fn protected_prefix() -> String {
    format!("_c_{}-", java_uuid())
}

/// Creates every missing node of `path` as a CONTAINER (Curator's
/// `creatingParentContainersIfNeeded`, `ZKPaths.mkdirs(..., asContainers)`):
/// the server removes each once its last child is gone. Existing nodes are
/// fine; walks up only as far as nodes are missing.
pub(crate) async fn ensure_containers(client: &Client, path: &str) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = path.to_owned();
    loop {
        if cur == "/" || client.exists(&cur).await?.is_some() {
            break;
        }
        let parent = parent_of(&cur).unwrap_or("/").to_owned();
        missing.push(std::mem::replace(&mut cur, parent));
    }
    for p in missing.into_iter().rev() {
        match client.create(&p, "", CreateMode::Container).await {
            Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Curator's default node data (`CuratorFrameworkFactory.LOCAL_ADDRESS`): the
/// local host's address as text, as Java's `InetAddress.getLocalHost()`
/// finds it (the host name resolved), `127.0.0.1` if it cannot be resolved.
pub fn local_address() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        use std::net::ToSocketAddrs;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let host = host.trim();
        if host.is_empty() {
            return "127.0.0.1".into();
        }
        (host, 0)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| {
                a.find(|a| a.is_ipv4())
                    .or_else(|| (host, 0).to_socket_addrs().ok()?.next())
            })
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".into())
    })
}

/// A create in Curator's protected mode (`client.create().withProtection()`):
/// the node's name gets the prefix `_c_<uuid>-`, so that after a
/// ConnectionLoss (the create may or may not have been applied) the parent is
/// listed and the node with that prefix adopted instead of making a second
/// one. Missing parents are made as containers, as Curator's recipes do.
///
/// For the ephemeral modes the session of the first attempt is remembered: a
/// node found after the session changed belongs to a session that is over (or
/// about to be), so it is deleted and the create made again under a new uuid
/// (Curator's `ProtectedMode.checkSessionId`).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_client::CreateMode;
/// use zk_recipes::curator::ProtectedCreate;
/// let (path, stat) = ProtectedCreate::new("/app/workers/worker-", CreateMode::EphemeralSequential)
///     .data("host-1")
///     .run(&zk)
///     .await?;
/// assert!(path.starts_with("/app/workers/_c_"));
/// # let _ = stat;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a ProtectedCreate does nothing until run"]
pub struct ProtectedCreate {
    path: String,
    mode: CreateMode,
    data: Vec<u8>,
    parents: bool,
}

impl ProtectedCreate {
    /// A protected create of `path` (its last component is the name after the
    /// prefix; a sequential mode appends the sequence number), with empty data.
    pub fn new(path: &str, mode: CreateMode) -> ProtectedCreate {
        ProtectedCreate {
            path: path.to_owned(),
            mode,
            data: Vec::new(),
            parents: true,
        }
    }

    /// The node's data.
    pub fn data(mut self, data: impl AsRef<[u8]>) -> ProtectedCreate {
        self.data = data.as_ref().to_vec();
        self
    }

    /// Whether missing parents are made (as containers); default yes.
    pub fn parents(mut self, yes: bool) -> ProtectedCreate {
        self.parents = yes;
        self
    }

    /// The full path a create under `prefix` asks for.
    fn target(&self, prefix: &str) -> Result<(String, String)> {
        zk_proto::path::validate_path(&self.path, self.mode.is_sequential())?;
        let parent = parent_of(&self.path)
            .ok_or_else(|| Error::InvalidArgument("cannot create the root".into()))?;
        let name = &self.path[self.path.rfind('/').map_or(0, |i| i + 1)..];
        Ok((parent.to_owned(), join(parent, &format!("{prefix}{name}"))))
    }

    /// Creates the node; returns its path and Stat. Rides through connection
    /// losses (adopting the node made by an attempt whose answer was lost);
    /// fails on other errors, or when the client can never reconnect.
    pub fn run(
        &self,
        client: &Client,
    ) -> impl Future<Output = Result<(String, Stat)>> + Send + 'static {
        let (this, client) = (self.clone(), client.clone());
        async move { this.create(&client).await }
    }

    /// [`run`](ProtectedCreate::run) from a thread.
    pub fn run_blocking(&self, client: &Client) -> Result<(String, Stat)> {
        zk_client::blocking::block_on(self.run(client), None).unwrap_or(Err(Error::Timeout))
    }

    async fn create(&self, client: &Client) -> Result<(String, Stat)> {
        let ephemeral = matches!(
            self.mode,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        );
        let mut prefix = protected_prefix();
        let mut session: Option<i64> = None;
        // A create was sent whose outcome is unknown.
        let mut unsure = false;
        loop {
            let (parent, target) = self.target(&prefix)?;
            let r: Result<Option<(String, Stat)>> = async {
                wait_connected(client).await?;
                if unsure {
                    if let Some(found) = find(client, &parent, &prefix).await? {
                        let now = client.session().map(|s| s.id);
                        if ephemeral && now != session {
                            // Made by a session that is gone: not ours now.
                            match client.delete(&found, None).await {
                                Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {}
                                Err(e) => return Err(e),
                            }
                            prefix = protected_prefix();
                            session = now;
                            unsure = false;
                            return Ok(None);
                        }
                        match client.exists(&found).await? {
                            Some(stat) => return Ok(Some((found, stat))),
                            None => {
                                unsure = false;
                                return Ok(None);
                            }
                        }
                    }
                }
                // The session whose create may be applied without our knowing.
                session = client.session().map(|s| s.id);
                let f = client.create_with(
                    &target,
                    self.data.as_slice(),
                    &CreateOptions::mode(self.mode),
                );
                unsure = true;
                match f.await {
                    Ok(r) => Ok(Some(r)),
                    Err(Error::Server(ErrorCode::NoNode)) if self.parents => {
                        unsure = false;
                        ensure_containers(client, &parent).await?;
                        Ok(None)
                    }
                    Err(e) if retryable(&e) || e.outcome_unknown() => Err(e),
                    Err(e) => Err(e),
                }
            }
            .await;
            match r {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(e) if retryable(&e) => settle(client, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The child of `parent` whose name starts with `prefix`, as a path.
async fn find(client: &Client, parent: &str, prefix: &str) -> Result<Option<String>> {
    match client.get_children(parent).await {
        Ok(kids) => Ok(kids
            .into_iter()
            .find(|k| k.starts_with(prefix))
            .map(|k| join(parent, &k))),
        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_a_java_uuid() {
        let p = protected_prefix();
        assert_eq!(p.len(), 3 + 36 + 1, "{p}");
        assert!(p.starts_with("_c_") && p.ends_with('-'));
        let u = &p[3..39];
        let dashes: Vec<usize> = u.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23]);
        assert!(u
            .bytes()
            .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(&u[14..15], "4");
        assert_ne!(p, protected_prefix());
    }
}
