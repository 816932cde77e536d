//! Writes to existing nodes: `set_data`, `delete`, `delete_recursive`, `set_acl`.

use std::future::Future;

use zk_proto::{
    Acl, DeleteRequest, ErrorCode, Request, Response, SetAclRequest, SetDataRequest, Stat,
};

use crate::client::Client;
use crate::data::IntoData;
use crate::error::{Error, Result};

use super::{to_wire, unexpected};

impl Client {
    /// Sets a node's data (`None`: any version); returns the new Stat.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (_, stat) = zk.get_data("/config").await?;
    /// // Only if nobody wrote in between (BadVersion otherwise).
    /// zk.set_data("/config", b"v2", Some(stat.version)).await?;
    /// # Ok(()) }
    /// ```
    pub fn set_data(
        &self,
        path: &str,
        data: impl IntoData,
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + 'static {
        let f = self.send(Request::SetData(SetDataRequest {
            path: path.into(),
            data: to_wire(data.into_data()),
            version: version.unwrap_or(-1),
        }));
        async move {
            match f.await? {
                Response::Stat(s) => Ok(s.stat),
                r => Err(unexpected(r)),
            }
        }
    }

    /// Deletes a node (`None`: any version).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// match zk.delete("/old", None).await {
    ///     Ok(()) => {}
    ///     Err(e) if e.is_no_node() => {} // already gone
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn delete(
        &self,
        path: &str,
        version: Option<i32>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let f = self.send(Request::Delete(DeleteRequest {
            path: path.into(),
            version: version.unwrap_or(-1),
        }));
        async move { f.await.map(|_| ()) }
    }

    /// Deletes a node and everything below it. Missing nodes are not an error.
    /// Not atomic: another client may see the subtree half deleted (kazoo's
    /// `delete(path, recursive=True)` is not either).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// zk.delete_recursive("/app/tmp").await?;
    /// assert!(zk.exists("/app/tmp").await?.is_none());
    /// zk.delete_recursive("/app/tmp").await?; // already gone: still Ok
    /// # Ok(()) }
    /// ```
    pub fn delete_recursive(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let first = self.get_children(path);
        let (this, path) = (self.clone(), path.to_owned());
        async move {
            // Depth-first, iteratively: (path, children listed yet).
            let mut stack = vec![(path, false)];
            let mut first = Some(first);
            while let Some((p, listed)) = stack.pop() {
                if !listed {
                    let children = match first.take() {
                        Some(f) => f.await,
                        None => this.get_children(&p).await,
                    };
                    match children {
                        Ok(children) => {
                            stack.push((p.clone(), true));
                            for c in children {
                                let child = if p == "/" {
                                    format!("/{c}")
                                } else {
                                    format!("{p}/{c}")
                                };
                                stack.push((child, false));
                            }
                        }
                        Err(Error::Server(ErrorCode::NoNode)) => {}
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                if p == "/" {
                    continue;
                }
                match this.delete(&p, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {}
                    // A child appeared meanwhile: list again.
                    Err(Error::Server(ErrorCode::NotEmpty)) => stack.push((p, false)),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    /// Sets a node's ACL (`None`: any ACL version); returns the new Stat.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{acl, Perms};
    /// // Readable by all, writable only by alice (who must `add_auth("digest", "alice:pw")`).
    /// let mut acl = acl::read_acl_unsafe();
    /// acl.push(acl::make_digest_acl("alice", "pw", Perms::ALL));
    /// let (_, stat) = zk.get_acl("/config").await?;
    /// zk.set_acl("/config", acl, Some(stat.aversion)).await?;
    /// # Ok(()) }
    /// ```
    pub fn set_acl(
        &self,
        path: &str,
        acl: Vec<Acl>,
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + 'static {
        let f = self.send(Request::SetAcl(SetAclRequest {
            path: path.into(),
            acl,
            version: version.unwrap_or(-1),
        }));
        async move {
            match f.await? {
                Response::Stat(s) => Ok(s.stat),
                r => Err(unexpected(r)),
            }
        }
    }
}
