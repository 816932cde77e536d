//! Every ZooKeeper call, written once for all runtimes.
//!
//! # Ordering and pipelining
//!
//! A call sends its request **when it is made**, not when its future is first
//! polled, and the future it returns borrows nothing (`Send + 'static`). So
//!
//! ```no_run
//! # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
//! let a = zk.get_data("/config");
//! let b = zk.set_data("/config", "v2", None);
//! let (old, _) = a.await?;
//! b.await?;
//! # Ok(()) }
//! ```
//!
//! puts both requests on the wire at once, in that order, without spawning.
//! ZooKeeper answers a session's requests in the order they were sent (its FIFO
//! client order), so `a` reads the data from before `b` wrote.
//!
//! Calls made of several requests (`ensure_path`, `delete_recursive`, a create
//! with `make_parents`) send their first request at once and the rest as the
//! answers come back.
//!
//! # Dropping a future
//!
//! The request still completes on the server (a write is applied); its reply is
//! discarded. A watch the call would have set is removed: locally at once, and on
//! the server as soon as the reply has armed it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, ClientInfo, CreateMode, CreateRequest, CreateTtlRequest,
    DeleteRequest, ErrorCode, MultiRequest, MultiResult, PathRequest, PathWatchRequest,
    ReconfigRequest, Request, Response, SetAclRequest, SetDataRequest, Stat, WatcherType,
    WatchesRequest,
};

use crate::client::Client;
use crate::core::{Registered, Reply};
use crate::data::{Data, IntoData};
use crate::error::{Error, Result};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::slot::Slot;
use crate::wait::ReplyWait;
use crate::watch::{OneshotWatch, WatchGuard, WatchStream};

/// Waits for one reply (or hands back the error that stopped the request going out).
pub(crate) enum ReplyFuture {
    Waiting(ReplyWait),
    Failed(Option<Error>),
}

impl ReplyFuture {
    fn waiting(shared: &Arc<crate::core::Shared>, slot: Arc<Slot<Reply>>) -> ReplyFuture {
        ReplyFuture::Waiting(ReplyWait::new(shared.clone(), slot))
    }
}

impl Future for ReplyFuture {
    type Output = Result<Response>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ReplyFuture::Waiting(w) => w.poll(cx).map(|r| r.map_err(Error::from)),
            ReplyFuture::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(Error::SessionClosed))),
        }
    }
}

/// What a create with `make_parents` needs to try again after creating them.
type CreateRetry = Box<(Client, String, Option<Bytes>, Vec<Acl>, CreateMode)>;

/// The parents' creation and the second try.
type CreateAgain = Pin<Box<dyn Future<Output = Result<(String, Stat)>> + Send + Sync>>;

/// A create in flight (`create_with`): its reply, and after a NoNode with
/// `make_parents`, the parents' creation and the second try (boxed: rare).
enum CreateCall {
    First(ReplyFuture, Option<CreateRetry>),
    Again(CreateAgain),
    Done,
}

impl Future for CreateCall {
    type Output = Result<(String, Stat)>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                CreateCall::First(first, again) => {
                    let r = std::task::ready!(Pin::new(first).poll(cx));
                    match (r, again.take()) {
                        (Err(Error::Server(ErrorCode::NoNode)), Some(retry)) => {
                            let (zk, path, data, acl, mode) = *retry;
                            *this = CreateCall::Again(Box::pin(async move {
                                if let Some(parent) = parent_of(&path) {
                                    zk.ensure_path(parent).await?;
                                }
                                created(zk.send(create_request(&path, data, acl, mode)).await?)
                            }));
                        }
                        (r, _) => {
                            *this = CreateCall::Done;
                            return Poll::Ready(r.and_then(created));
                        }
                    }
                }
                CreateCall::Again(f) => {
                    let r = std::task::ready!(f.as_mut().poll(cx));
                    *this = CreateCall::Done;
                    return Poll::Ready(r);
                }
                CreateCall::Done => return Poll::Ready(Err(Error::SessionClosed)),
            }
        }
    }
}

/// `create`: a create's path alone.
struct CreatePath(CreateCall);

impl Future for CreatePath {
    type Output = Result<String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().0)
            .poll(cx)
            .map(|r| r.map(|(path, _)| path))
    }
}

/// A sent request that asked for a watch: its reply, and the guard that owns the
/// registration until a watch handle takes it.
struct WatchCall {
    reply: ReplyFuture,
    guard: Option<WatchGuard>,
}

fn unexpected(r: Response) -> Error {
    Error::Malformed(format!("unexpected reply {r:?}"))
}

/// Node data in the form the codec carries.
fn to_wire(d: Option<Bytes>) -> Option<Bytes> {
    d
}

fn from_wire(d: Option<Bytes>) -> Data {
    Data::from(d)
}

impl Client {
    /// Sends `req` now.
    pub(crate) fn send(&self, req: Request) -> ReplyFuture {
        match self.shared().submit(req) {
            Ok((slot, _)) => ReplyFuture::waiting(self.shared(), slot),
            Err(e) => ReplyFuture::Failed(Some(e.into())),
        }
    }

    fn send_registered(
        &self,
        r: std::result::Result<Registered, zk_proto::UsageError>,
    ) -> WatchCall {
        match r {
            Ok((slot, w)) => WatchCall {
                reply: ReplyFuture::waiting(self.shared(), slot),
                guard: w.map(|(id, queue)| WatchGuard {
                    shared: self.shared().clone(),
                    id,
                    queue: Some(queue),
                }),
            },
            Err(e) => WatchCall {
                reply: ReplyFuture::Failed(Some(e.into())),
                guard: None,
            },
        }
    }

    /// Sends a request that registers a watch. The registration is owned by a guard
    /// from the moment it exists: if the caller's future is dropped before the
    /// reply (or a blocking call times out), the guard removes it, and the session
    /// then removes the server's watch once the reply arms it.
    fn send_watch(&self, req: Request) -> WatchCall {
        self.send_registered(self.shared().submit(req))
    }

    // ------------------------------------------------------------ writes

    /// Creates a node; returns its path (with the sequence suffix for sequential modes).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::CreateMode;
    /// zk.create("/app", "", CreateMode::Persistent).await?;
    /// let me = zk.create("/app/worker-", "host-1", CreateMode::EphemeralSequential).await?;
    /// assert!(me.starts_with("/app/worker-"));
    /// # Ok(()) }
    /// ```
    pub fn create(
        &self,
        path: &str,
        data: impl IntoData,
        mode: CreateMode,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        CreatePath(self.create_call(path, data, &CreateOptions::mode(mode)))
    }

    /// Creates a node with options; returns its path and Stat.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Acl, CreateMode, CreateOptions};
    /// let opts = CreateOptions {
    ///     mode: CreateMode::Persistent,
    ///     acl: Some(Acl::read_unsafe()),
    ///     make_parents: true,
    /// };
    /// let (path, stat) = zk.create_with("/a/b/c", "v", &opts).await?;
    /// assert_eq!((path.as_str(), stat.version), ("/a/b/c", 0));
    /// # Ok(()) }
    /// ```
    pub fn create_with(
        &self,
        path: &str,
        data: impl IntoData,
        opts: &CreateOptions,
    ) -> impl Future<Output = Result<(String, Stat)>> + Send + 'static {
        self.create_call(path, data, opts)
    }

    /// Sends a create now; the future is small (it is moved and boxed by callers
    /// that keep many in flight) and keeps what a retry needs only with
    /// `make_parents`.
    fn create_call(&self, path: &str, data: impl IntoData, opts: &CreateOptions) -> CreateCall {
        let data = data.into_data();
        let acl = opts
            .acl
            .clone()
            .unwrap_or_else(|| self.opts().default_acl.clone());
        let mode = opts.mode;
        if opts.make_parents {
            let first = self.send(create_request(path, data.clone(), acl.clone(), mode));
            let again = Box::new((self.clone(), path.to_owned(), data, acl, mode));
            CreateCall::First(first, Some(again))
        } else {
            CreateCall::First(self.send(create_request(path, data, acl, mode)), None)
        }
    }

    /// Creates every missing node of `path` (persistent, empty, default ACL);
    /// existing ones are fine. Like kazoo, it asks `exists` first and walks up only
    /// as far as nodes are missing, so an existing path needs no CREATE permission
    /// on its parent; and when the chroot itself is missing, it is created too.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::CreateMode;
    /// zk.ensure_path("/app/workers").await?; // creates /app and /app/workers if missing
    /// zk.ensure_path("/app/workers").await?; // and is fine the second time
    /// zk.create("/app/workers/w-", "", CreateMode::EphemeralSequential).await?;
    /// # Ok(()) }
    /// ```
    pub fn ensure_path(&self, path: &str) -> impl Future<Output = Result<()>> + Send + 'static {
        let valid = zk_proto::path::validate_path(path, false).map_err(Error::from);
        let first = valid.as_ref().ok().map(|()| self.exists(path));
        let (this, path) = (self.clone(), path.to_owned());
        async move {
            valid?;
            // The nearest existing ancestor (or the path itself), then create downwards.
            let mut missing = Vec::new();
            let mut cur = path.as_str();
            let mut exists = first;
            loop {
                let found = match exists.take() {
                    Some(f) => f.await?,
                    None => this.exists(cur).await?,
                };
                if found.is_some() {
                    break;
                }
                if cur == "/" {
                    // Only the chroot can be missing at "/".
                    this.ensure_chroot().await?;
                    break;
                }
                missing.push(cur);
                cur = parent_of(cur).unwrap_or("/");
            }
            for p in missing.into_iter().rev() {
                let req = create_request(
                    p,
                    Some(Bytes::new()),
                    this.opts().default_acl.clone(),
                    CreateMode::Persistent,
                );
                match this.send(req).await {
                    Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    /// Creates the chroot's nodes outside the chroot (each level, persistent, empty).
    async fn ensure_chroot(&self) -> Result<()> {
        let Some(root) = self.chroot() else {
            return Ok(());
        };
        let mut prefix = String::new();
        for part in root.split('/').filter(|p| !p.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            let req = create_request(
                &prefix,
                Some(Bytes::new()),
                self.opts().default_acl.clone(),
                CreateMode::Persistent,
            );
            let reply = match self.shared().submit_unchrooted(req) {
                Ok((slot, _)) => ReplyFuture::waiting(self.shared(), slot),
                Err(e) => ReplyFuture::Failed(Some(e.into())),
            };
            match reply.await {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

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

    /// Runs writes atomically. On failure nothing is applied and
    /// [`Error::MultiFailed`] says which op failed, with every op's result.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{ErrorCode, Error, Op};
    /// match zk.multi(vec![Op::check("/config", 3), Op::delete("/config", None)]).await {
    ///     Ok(_) => println!("deleted at version 3"),
    ///     Err(Error::MultiFailed { index: 0, code: ErrorCode::BadVersion, .. }) => {
    ///         println!("someone wrote first; nothing was applied")
    ///     }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{CreateMode, Op};
    /// let results = zk
    ///     .multi(vec![
    ///         Op::check("/config", 3),
    ///         Op::set_data("/config", "v4", Some(3)),
    ///         Op::create("/config/history-", "v3", CreateMode::PersistentSequential),
    ///     ])
    ///     .await?;
    /// assert_eq!(results.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn multi(
        &self,
        ops: Vec<Op>,
    ) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        let ops = ops
            .into_iter()
            .map(|o| o.into_proto(&self.opts().default_acl))
            .collect();
        let f = self.send(Request::Multi(MultiRequest { ops }));
        async move {
            match f.await? {
                Response::Multi(m) => {
                    let failed = m.first_error();
                    let results: Vec<OpResult> =
                        m.results.into_iter().map(OpResult::from_proto).collect();
                    match failed {
                        None => Ok(results),
                        Some(code) => {
                            let index = results
                                .iter()
                                .position(|r| matches!(r, OpResult::Error(c) if *c == code))
                                .unwrap_or(0);
                            Err(Error::MultiFailed {
                                index,
                                code,
                                results,
                            })
                        }
                    }
                }
                r => Err(unexpected(r)),
            }
        }
    }

    /// A transaction builder (kazoo's `transaction()`).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{CreateMode, OpResult};
    /// let results = zk
    ///     .transaction()
    ///     .check("/jobs", 7)
    ///     .create("/jobs/job-", "payload", CreateMode::PersistentSequential)
    ///     .set_data("/jobs", "", Some(7))
    ///     .commit()
    ///     .await?;
    /// if let OpResult::Create { path, .. } = &results[1] {
    ///     println!("queued as {path}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            ops: Vec::new(),
        }
    }

    // ------------------------------------------------------------ reads

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

    /// Several reads in one round trip; each succeeds or fails alone (3.6+).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{ReadOp, ReadResult};
    /// let results = zk
    ///     .multi_read(vec![ReadOp::GetData("/a".into()), ReadOp::GetChildren("/b".into())])
    ///     .await?;
    /// for r in results {
    ///     match r {
    ///         Ok(ReadResult::Data(data, _stat)) => println!("{} bytes", data.len()),
    ///         Ok(ReadResult::Children(c)) => println!("{} children", c.len()),
    ///         Err(e) if e.is_no_node() => println!("missing"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn multi_read(
        &self,
        ops: Vec<ReadOp>,
    ) -> impl Future<Output = Result<Vec<Result<ReadResult>>>> + Send + 'static {
        let ops = ops.into_iter().map(ReadOp::into_proto).collect();
        let f = self.send(Request::MultiRead(MultiRequest { ops }));
        async move {
            match f.await? {
                Response::Multi(m) => Ok(m
                    .results
                    .into_iter()
                    .map(|r| match r {
                        MultiResult::GetData(d) => Ok(ReadResult::Data(from_wire(d.data), d.stat)),
                        MultiResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
                        MultiResult::Error(c) => Err(Error::Server(c)),
                        other => Err(Error::Malformed(format!("{other:?}"))),
                    })
                    .collect()),
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

    /// The identities the server associates with this connection (3.7+).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// for id in zk.whoami().await? {
    ///     println!("{} {}", id.auth_scheme, id.user); // e.g. "ip 127.0.0.1", "digest alice"
    /// }
    /// # Ok(()) }
    /// ```
    pub fn whoami(&self) -> impl Future<Output = Result<Vec<ClientInfo>>> + Send + 'static {
        let f = self.send(Request::WhoAmI);
        async move {
            match f.await? {
                Response::WhoAmI(w) => Ok(w.client_info),
                r => Err(unexpected(r)),
            }
        }
    }

    /// The ensemble configuration (the server's `/zookeeper/config`, outside any
    /// chroot) and its Stat. A plain `get_data("/zookeeper/config")` under a chroot
    /// reads the chrooted node of that name instead, as every other call does.
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// let (config, _) = zk.get_config().await?;
    /// let members = zk_client::ensemble::client_hosts(config.to_str().unwrap_or(""));
    /// println!("{} members: {members:?}", members.len());
    /// # Ok(()) }
    /// ```
    pub fn get_config(&self) -> impl Future<Output = Result<(Data, Stat)>> + Send + 'static {
        let f = match self.shared().submit_config() {
            Ok((slot, _)) => ReplyFuture::waiting(self.shared(), slot),
            Err(e) => ReplyFuture::Failed(Some(e.into())),
        };
        async move { get_data_result(f.await?) }
    }

    /// Changes the ensemble membership; returns the new config. `from_config`: expected
    /// config version (-1 for any).
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> impl Future<Output = Result<(Data, Stat)>> + Send + 'static {
        let f = self.send(Request::Reconfig(ReconfigRequest {
            joining_servers: joining.map(Into::into),
            leaving_servers: leaving.map(Into::into),
            new_members: new_members.map(Into::into),
            cur_config_id: from_config,
        }));
        async move { get_data_result(f.await?) }
    }

    // ------------------------------------------------------------ watches & auth

    /// A persistent (or persistent-recursive) watch, delivered as a stream (3.6+;
    /// an older server answers [`Error::Unsupported`]).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::AddWatchMode;
    /// let mut events = zk.add_watch("/app", AddWatchMode::PersistentRecursive).await?;
    /// while let Some(e) = events.next().await {
    ///     println!("{:?} {}", e.event_type, e.path);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn add_watch(
        &self,
        path: &str,
        mode: AddWatchMode,
    ) -> impl Future<Output = Result<WatchStream>> + Send + 'static {
        let call = self.send_watch(Request::AddWatch(AddWatchRequest {
            path: path.into(),
            mode,
        }));
        async move {
            match call.reply.await {
                Ok(_) => {}
                // What a 3.5 server says to an opcode it does not know.
                Err(Error::Server(ErrorCode::Unimplemented | ErrorCode::MarshallingError)) => {
                    return Err(Error::Unsupported(
                        "persistent watches (addWatch) need ZooKeeper 3.6 or later",
                    ))
                }
                Err(e) => return Err(e),
            }
            let guard = call
                .guard
                .ok_or_else(|| Error::Malformed("no watch registered".into()))?;
            Ok(guard.stream())
        }
    }

    /// Removes the server's watches of a kind on a path, and the local registrations
    /// with them (each gets [`Error::WatchRemoved`]). NoWatcher if there were none.
    ///
    /// Dropping a watch handle already removes its own registration; this call is
    /// for removing every watch of a kind on a path at once (3.5+).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Error, WatcherType};
    /// let (_, _, watch) = zk.get_data_watch("/config").await?;
    /// zk.remove_watches("/config", WatcherType::Data).await?;
    /// assert!(matches!(watch.await, Err(Error::WatchRemoved)));
    /// # Ok(()) }
    /// ```
    pub fn remove_watches(
        &self,
        path: &str,
        kind: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let f = self.send(Request::RemoveWatches(WatchesRequest {
            path: path.into(),
            watcher_type: kind,
        }));
        async move { f.await.map(|_| ()) }
    }

    /// Whether the server holds a watch of this kind on the path (NoWatcher if not).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{Error, ErrorCode, WatcherType};
    /// match zk.check_watches("/config", WatcherType::Any).await {
    ///     Ok(()) => println!("watched"),
    ///     Err(Error::Server(ErrorCode::NoWatcher)) => println!("not watched"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn check_watches(
        &self,
        path: &str,
        kind: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let f = self.send(Request::CheckWatches(WatchesRequest {
            path: path.into(),
            watcher_type: kind,
        }));
        async move { f.await.map(|_| ()) }
    }

    /// Adds credentials (e.g. `("digest", "user:password")`); replayed on every
    /// reconnect (once, however often the same credential is added).
    ///
    /// ```no_run
    /// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
    /// use zk_client::{acl, CreateMode, CreateOptions};
    /// zk.add_auth("digest", "alice:secret").await?;
    /// // `creator_all_acl` gives the authenticated creator (alice) every permission.
    /// let opts = CreateOptions {
    ///     acl: Some(acl::creator_all_acl()),
    ///     ..CreateOptions::mode(CreateMode::Persistent)
    /// };
    /// zk.create_with("/private", "x", &opts).await?;
    /// // A client without alice's credential gets Server(NoAuth) on /private.
    /// # Ok(()) }
    /// ```
    pub fn add_auth(
        &self,
        scheme: &str,
        credentials: impl AsRef<[u8]>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let f = match self
            .shared()
            .add_auth(scheme, Bytes::copy_from_slice(credentials.as_ref()))
        {
            Ok(slot) => ReplyFuture::waiting(self.shared(), slot),
            Err(e) => ReplyFuture::Failed(Some(e.into())),
        };
        async move { f.await.map(|_| ()) }
    }
}

/// Collects ops for [`Client::multi`] (kazoo's `transaction()`); made by
/// [`Client::transaction`], which has an example.
pub struct Transaction {
    client: Client,
    ops: Vec<Op>,
}

impl Transaction {
    /// Adds a create (default ACL).
    pub fn create(mut self, path: &str, data: impl IntoData, mode: CreateMode) -> Self {
        self.ops.push(Op::create(path, data, mode));
        self
    }
    /// Adds a create with its own ACL.
    pub fn create_with_acl(
        mut self,
        path: &str,
        data: impl IntoData,
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> Self {
        self.ops.push(Op::Create {
            path: path.into(),
            data: data.into_data(),
            acl: Some(acl),
            mode,
        });
        self
    }
    /// Adds a delete.
    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::delete(path, version));
        self
    }
    /// Adds a set-data.
    pub fn set_data(mut self, path: &str, data: impl IntoData, version: Option<i32>) -> Self {
        self.ops.push(Op::set_data(path, data, version));
        self
    }
    /// Adds a version check.
    pub fn check(mut self, path: &str, version: i32) -> Self {
        self.ops.push(Op::check(path, version));
        self
    }
    /// The ops so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    /// Commits atomically (sent now). On failure, [`Error::MultiFailed`] carries
    /// every op's result.
    pub fn commit(self) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        self.client.multi(self.ops)
    }
}

fn oneshot(guard: Option<WatchGuard>) -> Result<OneshotWatch> {
    guard
        .map(WatchGuard::oneshot)
        .ok_or_else(|| Error::Malformed("no watch registered".into()))
}

pub(crate) fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

fn create_request(path: &str, data: Option<Bytes>, acl: Vec<Acl>, mode: CreateMode) -> Request {
    let data = to_wire(data);
    match mode.ttl() {
        Some(ttl) => Request::CreateTtl(CreateTtlRequest {
            path: path.into(),
            data,
            acl,
            flags: mode.flags(),
            ttl,
        }),
        None => {
            let r = CreateRequest {
                path: path.into(),
                data,
                acl,
                flags: mode.flags(),
            };
            if mode == CreateMode::Container {
                Request::CreateContainer(r)
            } else {
                Request::Create2(r)
            }
        }
    }
}

fn created(r: Response) -> Result<(String, Stat)> {
    match r {
        Response::Create2(c) => Ok((c.path, c.stat)),
        Response::Create(c) => Ok((c.path, Stat::default())),
        r => Err(unexpected(r)),
    }
}

fn path_watch(f: fn(PathWatchRequest) -> Request, path: &str, watch: bool) -> Request {
    f(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn exists_result(r: Result<Response>) -> Result<Option<Stat>> {
    match r {
        Ok(Response::Stat(s)) => Ok(Some(s.stat)),
        Ok(r) => Err(unexpected(r)),
        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn get_data_result(r: Response) -> Result<(Data, Stat)> {
    match r {
        Response::GetData(d) => Ok((from_wire(d.data), d.stat)),
        r => Err(unexpected(r)),
    }
}

fn children2(r: Response) -> Result<(Vec<String>, Stat)> {
    match r {
        Response::GetChildren2(c) => Ok((c.children, c.stat)),
        r => Err(unexpected(r)),
    }
}
