//! Removing a contender node nobody will use: an acquisition dropped, timed
//! out or refused, or a guard dropped without `release`. Done at once when it
//! can be, otherwise in the background, through connection losses.

use std::future::Future;
use std::pin::Pin;

use zk_client::{Client, Error, ErrorCode, Result, Stat};

use crate::common::{join, retryable, settle, wait_connected};
use crate::runtime::Spawner;

/// A contender node's create in flight, which a cleanup may take over.
pub(super) type CreateFuture = Pin<Box<dyn Future<Output = Result<(String, Stat)>> + Send>>;

/// What a cleanup needs: the node if known, the create in flight, and whether
/// a create of unknown outcome means the node must be looked for by prefix.
pub(crate) struct Leftover {
    pub(super) client: Client,
    pub(super) path: String,
    pub(super) prefix: String,
    pub(super) node: Option<String>,
    pub(super) pending: Option<CreateFuture>,
    pub(super) search: bool,
}

impl Leftover {
    /// Removes the node. `persist`: through connection losses, until done;
    /// otherwise gives back what is left at the first retryable error.
    pub(super) async fn run(mut self, persist: bool) -> Option<Leftover> {
        if let Some(f) = self.pending.take() {
            match f.await {
                Ok((p, _)) => self.node = p.rsplit('/').next().map(str::to_string),
                Err(e) if e.outcome_unknown() || retryable(&e) => self.search = true,
                Err(_) => {}
            }
        }
        loop {
            let r = self.once().await;
            match r {
                Ok(()) => return None,
                Err(e) if retryable(&e) => {
                    if !persist {
                        return Some(self);
                    }
                    if settle(&self.client, &e).await.is_err() {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %self.path, error = %e, "could not remove a lock contender node");
                    return None;
                }
            }
        }
    }

    async fn once(&mut self) -> Result<()> {
        if self.node.is_none() {
            if !self.search {
                return Ok(());
            }
            wait_connected(&self.client).await?;
            match self.client.get_children(&self.path).await {
                Ok(kids) => self.node = kids.into_iter().find(|k| k.starts_with(&self.prefix)),
                Err(Error::Server(ErrorCode::NoNode)) => {}
                Err(e) => return Err(e),
            }
            self.search = false;
        }
        let Some(node) = self.node.clone() else {
            return Ok(());
        };
        match self.client.delete(&join(&self.path, &node), None).await {
            Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {
                self.node = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A known node `parent/name` to remove.
    pub(crate) fn node(client: &Client, parent: &str, name: &str) -> Leftover {
        Leftover {
            client: client.clone(),
            path: parent.to_owned(),
            prefix: String::new(),
            node: Some(name.to_owned()),
            pending: None,
            search: false,
        }
    }

    pub(crate) fn spawn(self, spawner: &Spawner) {
        spawner.spawn(
            "zk-lock-cleanup",
            Box::pin(async move {
                let _ = self.run(true).await;
            }),
        );
    }
}
