//! Reads: `exists`, `get_data`, `get_children` (with and without a watch), `get_acl`,
//! `sync`, `get_ephemerals`, `get_all_children_number`.

use std::future::Future;

use zk_proto::{Acl, ErrorCode, PathRequest, Request, Response, Stat};

use crate::client::Client;
use crate::data::Data;
use crate::error::{Error, Result};
use crate::watch::OneshotWatch;

use super::{get_data_result, oneshot, path_watch, unexpected};

impl Client {
    /// The node's Stat, or `None` if it does not exist.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// match zk.exists("/config").await? {
    ///     Some(stat) => println!("version {}, {} children", stat.version, stat.num_children),
    ///     None => println!("no such node"), // not an error: NoNode becomes None
    /// }
    /// # Ok(()) }
    /// ```
    pub fn exists(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Stat>>> + Send + 'static {
        let f = self.send(path_watch(Request::Exists, path, false));
        async move { exists_result(f.await) }
    }

    /// Like [`exists`](Client::exists), leaving a watch: fires on create if missing,
    /// on change or delete if present.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (stat, watch) = zk.exists_watch("/ready").await?;
    /// if stat.is_none() {
    ///     let event = watch.await?; // NodeCreated
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn exists_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Option<Stat>, OneshotWatch)>> + Send + 'static {
        let call = self.send_watch(path_watch(Request::Exists, path, true));
        async move {
            let stat = exists_result(call.reply.await)?;
            Ok((stat, oneshot(call.guard)?))
        }
    }

    /// The node's data (null kept apart from empty: see [`Data`]) and Stat.
    /// A missing node is `Err(Error::Server(ErrorCode::NoNode))` ([`Error::is_no_node`]).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (data, stat) = zk.get_data("/config").await?;
    /// if data.is_null() {
    ///     println!("null data, version {}", stat.version);
    /// } else {
    ///     println!("{} bytes: {:?}", data.len(), data.to_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get_data(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Data, Stat)>> + Send + 'static {
        let f = self.send(path_watch(Request::GetData, path, false));
        async move { get_data_result(f.await?) }
    }

    /// Like [`get_data`](Client::get_data), leaving a watch for the next change or delete.
    ///
    /// The watch is one-shot and set by the same request that reads, so no change
    /// between the read and the watch is missed. To follow every change, read
    /// again after each event (or use `zk_recipes::DataWatch`, which does).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::EventType;
    /// loop {
    ///     let (data, _stat, watch) = zk.get_data_watch("/config").await?;
    ///     println!("config: {:?}", data.to_str());
    ///     let event = watch.await?; // fires once
    ///     if event.event_type == EventType::NodeDeleted {
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get_data_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Data, Stat, OneshotWatch)>> + Send + 'static {
        let call = self.send_watch(path_watch(Request::GetData, path, true));
        async move {
            let (d, s) = get_data_result(call.reply.await?)?;
            Ok((d, s, oneshot(call.guard)?))
        }
    }

    /// Child names (unsorted, as the server sends them).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let mut workers = match zk.get_children("/workers").await {
    ///     Ok(c) => c,
    ///     Err(e) if e.is_no_node() => Vec::new(),
    ///     Err(e) => return Err(e),
    /// };
    /// workers.sort(); // sequential names sort by their sequence number
    /// # Ok(()) }
    /// ```
    pub fn get_children(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let f = self.send(path_watch(Request::GetChildren, path, false));
        async move {
            match f.await? {
                Response::GetChildren(c) => Ok(c.children),
                r => Err(unexpected(r)),
            }
        }
    }

    /// Child names and the parent's Stat.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (children, stat) = zk.get_children_stat("/workers").await?;
    /// assert_eq!(children.len() as i32, stat.num_children);
    /// # Ok(()) }
    /// ```
    pub fn get_children_stat(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat)>> + Send + 'static {
        let f = self.send(path_watch(Request::GetChildren2, path, false));
        async move { children2(f.await?) }
    }

    /// Child names and Stat, leaving a watch for the next child change or delete.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (mut children, _, watch) = zk.get_children_watch("/workers").await?;
    /// children.sort();
    /// println!("{children:?}; next change: {:?}", watch.await?);
    /// # Ok(()) }
    /// ```
    pub fn get_children_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat, OneshotWatch)>> + Send + 'static {
        let call = self.send_watch(path_watch(Request::GetChildren2, path, true));
        async move {
            let (c, s) = children2(call.reply.await?)?;
            Ok((c, s, oneshot(call.guard)?))
        }
    }

    /// The node's ACL and Stat.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (acl, stat) = zk.get_acl("/config").await?;
    /// for entry in &acl {
    ///     println!("{}:{} {:?}", entry.id.scheme, entry.id.id, entry.perms);
    /// }
    /// println!("ACL version {}", stat.aversion);
    /// # Ok(()) }
    /// ```
    pub fn get_acl(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<Acl>, Stat)>> + Send + 'static {
        let f = self.send(Request::GetAcl(PathRequest { path: path.into() }));
        async move {
            match f.await? {
                Response::GetAcl(a) => Ok((a.acl, a.stat)),
                r => Err(unexpected(r)),
            }
        }
    }

    /// Waits until the server the client is on has caught up with the leader.
    ///
    /// ZooKeeper reads are served by the server the session is on, which may lag
    /// behind the leader. After another client told you (out of band) that it
    /// wrote, `sync` first:
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// zk.sync("/config").await?;
    /// let (latest, _) = zk.get_data("/config").await?;
    /// # let _ = latest; Ok(()) }
    /// ```
    pub fn sync(&self, path: &str) -> impl Future<Output = Result<String>> + Send + 'static {
        let f = self.send(Request::Sync(PathRequest { path: path.into() }));
        async move {
            match f.await? {
                Response::Sync(p) => Ok(p.path),
                r => Err(unexpected(r)),
            }
        }
    }

    /// Paths of this session's ephemeral nodes under a plain string prefix (`/` for all).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// // What this session would lose if it expired now:
    /// for path in zk.get_ephemerals("/app/").await? {
    ///     println!("{path}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get_ephemerals(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let f = self.send(Request::GetEphemerals(PathRequest {
            path: prefix.into(),
        }));
        async move {
            match f.await? {
                Response::GetEphemerals(e) => Ok(e.ephemerals),
                r => Err(unexpected(r)),
            }
        }
    }

    /// Number of descendants of a node.
    pub fn get_all_children_number(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<i32>> + Send + 'static {
        let f = self.send(Request::GetAllChildrenNumber(PathRequest {
            path: path.into(),
        }));
        async move {
            match f.await? {
                Response::GetAllChildrenNumber(n) => Ok(n.total_number),
                r => Err(unexpected(r)),
            }
        }
    }
}

fn exists_result(r: Result<Response>) -> Result<Option<Stat>> {
    match r {
        Ok(Response::Stat(s)) => Ok(Some(s.stat)),
        Ok(r) => Err(unexpected(r)),
        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn children2(r: Response) -> Result<(Vec<String>, Stat)> {
    match r {
        Response::GetChildren2(c) => Ok((c.children, c.stat)),
        r => Err(unexpected(r)),
    }
}
