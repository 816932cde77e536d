//! The client API, written once for every runtime. Its futures wait only on the
//! core's hand-off slots, so they run on any executor (and under the blocking
//! adapter's `block_on`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, ClientInfo, CreateMode, CreateRequest, CreateTtlRequest,
    DeleteRequest, ErrorCode, MultiRequest, MultiResult, PathRequest, PathWatchRequest,
    ReconfigRequest, Request, Response, SessionState, SetAclRequest, SetDataRequest, Stat,
    WatchedEvent, WatcherId, WatcherType, WatchesRequest,
};

use crate::core::{Reply, Shared, WatchMessage};
use crate::error::{Error, Result};
use crate::ops::{CreateOptions, Op, OpResult, ReadOp, ReadResult};
use crate::slot::{NextFuture, Queue, Slot};

/// Waits for one reply.
struct ReplyFuture(Arc<Slot<Reply>>);

impl Future for ReplyFuture {
    type Output = Result<Response>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_take(cx).map(|r| r.map_err(Error::from))
    }
}

/// Ends the session when the last handle goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.detach();
    }
}

/// Client-side options that are not protocol policy.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// ACL for creates that do not name one.
    pub default_acl: Vec<Acl>,
    /// The policy the adapters' `retry` helpers use by default (kazoo's `command_retry`).
    pub command_retry: crate::retry::RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            default_acl: Acl::open_unsafe(),
            command_retry: crate::retry::RetryPolicy::default(),
        }
    }
}

/// A ZooKeeper client. Cheap to clone; the session closes when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
    opts: Arc<ClientOptions>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .finish()
    }
}

fn unexpected(r: Response) -> Error {
    Error::Malformed(format!("unexpected reply {r:?}"))
}

/// A one-shot watch: resolves with the event that fired it. Dropping it removes it locally.
pub struct OneshotWatch {
    shared: Arc<Shared>,
    id: WatcherId,
    queue: Arc<Queue<WatchMessage>>,
    done: bool,
}

impl OneshotWatch {
    /// Waits (blocking the thread) for the event; `Err(Timeout)` after `timeout`.
    pub fn wait_timeout(mut self, timeout: Option<Duration>) -> Result<WatchedEvent> {
        match self.queue.wait_next(timeout) {
            Ok(m) => {
                self.done = true;
                watch_result(m)
            }
            Err(()) => Err(Error::Timeout),
        }
    }

    /// The registration id.
    pub fn id(&self) -> WatcherId {
        self.id
    }
}

fn watch_result(m: Option<WatchMessage>) -> Result<WatchedEvent> {
    match m {
        Some(WatchMessage::Event(e)) => Ok(e),
        Some(WatchMessage::Removed(r)) => Err(match r {
            zk_proto::RemovalReason::SessionEnded(e) | zk_proto::RemovalReason::NotSet(e) => {
                e.into()
            }
            zk_proto::RemovalReason::Removed => Error::WatchRemoved,
            _ => Error::WatchRemoved,
        }),
        None => Err(Error::SessionClosed),
    }
}

/// Owns a watch registration until a watch handle takes it; dropping it first
/// removes the registration (locally, and on the server when it was the last).
struct WatchGuard {
    shared: Arc<Shared>,
    id: WatcherId,
    queue: Option<Arc<Queue<WatchMessage>>>,
}

impl WatchGuard {
    fn oneshot(mut self) -> OneshotWatch {
        OneshotWatch {
            shared: self.shared.clone(),
            id: self.id,
            queue: self.queue.take().unwrap_or_else(Queue::new),
            done: false,
        }
    }

    fn stream(mut self) -> WatchStream {
        WatchStream {
            shared: self.shared.clone(),
            id: self.id,
            queue: self.queue.take().unwrap_or_else(Queue::new),
            ended: false,
        }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if self.queue.is_some() {
            self.shared.remove_watcher(self.id);
        }
    }
}

impl Future for OneshotWatch {
    type Output = Result<WatchedEvent>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.queue.poll_next(cx) {
            Poll::Ready(m) => {
                self.done = true;
                Poll::Ready(watch_result(m))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for OneshotWatch {
    fn drop(&mut self) {
        if !self.done {
            self.shared.remove_watcher(self.id);
        }
    }
}

/// A persistent watch: a stream of events until dropped (which removes it) or the session ends.
pub struct WatchStream {
    shared: Arc<Shared>,
    id: WatcherId,
    queue: Arc<Queue<WatchMessage>>,
    ended: bool,
}

impl WatchStream {
    /// The next event; `None` once the watch ended (session over, or removed).
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        if self.ended {
            return None;
        }
        match NextFuture(&self.queue).await {
            Some(WatchMessage::Event(e)) => Some(e),
            _ => {
                self.ended = true;
                None
            }
        }
    }

    /// Blocks for the next event. `Err(Timeout)` when none came in time; `Ok(None)` once ended.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<WatchedEvent>> {
        if self.ended {
            return Ok(None);
        }
        match self.queue.wait_next(timeout) {
            Ok(Some(WatchMessage::Event(e))) => Ok(Some(e)),
            Ok(_) => {
                self.ended = true;
                Ok(None)
            }
            Err(()) => Err(Error::Timeout),
        }
    }

    /// An event if one is already there.
    pub fn try_next(&mut self) -> Option<WatchedEvent> {
        match self.queue.try_next() {
            Some(Some(WatchMessage::Event(e))) => Some(e),
            Some(_) => {
                self.ended = true;
                None
            }
            None => None,
        }
    }

    /// The registration id.
    pub fn id(&self) -> WatcherId {
        self.id
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.remove_watcher(self.id);
        }
    }
}

/// Session state changes, starting with the current state.
pub struct StateStream {
    queue: Arc<Queue<SessionState>>,
}

impl StateStream {
    /// The next state; `None` once the stream ended (after `Closed`, or once the
    /// client is dropped and its driver finished).
    pub async fn next(&mut self) -> Option<SessionState> {
        NextFuture(&self.queue).await
    }

    /// Blocks for the next state; `None` on timeout or once the stream ended.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Option<SessionState> {
        self.queue.wait_next(timeout).ok().flatten()
    }

    /// Blocks for the next state: `Ok(None)` once the stream ended (it ends with
    /// `Closed`, and when the client is dropped), `Err(Timeout)` if nothing came.
    pub fn wait_next(&mut self, timeout: Option<Duration>) -> Result<Option<SessionState>> {
        self.queue.wait_next(timeout).map_err(|()| Error::Timeout)
    }

    /// Waits until `pred` holds for a state.
    pub async fn wait_for(&mut self, pred: impl Fn(SessionState) -> bool) -> Option<SessionState> {
        loop {
            let s = self.next().await?;
            if pred(s) {
                return Some(s);
            }
        }
    }
}

/// A registered state listener; pass to [`Client::remove_listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerId(u64);

/// See [`Client::diagnostics`].
#[derive(Clone)]
pub struct Diagnostics {
    shared: Arc<Shared>,
}

impl Diagnostics {
    /// The counts now.
    pub fn counts(&self) -> crate::core::LiveCounts {
        self.shared.live_counts()
    }
}

impl std::fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.counts().fmt(f)
    }
}

/// Session identity, to resume the session elsewhere (kazoo's `client_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id.
    pub id: i64,
    /// Password.
    pub password: Bytes,
    /// Negotiated timeout.
    pub timeout: Option<Duration>,
    /// Last zxid seen.
    pub last_zxid: i64,
}

impl Client {
    /// Wraps a core whose I/O an adapter drives.
    pub fn from_shared(shared: Arc<Shared>, opts: ClientOptions) -> Client {
        Client {
            handle: Arc::new(Handle { shared }),
            opts: Arc::new(opts),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    async fn call(&self, req: Request) -> Result<Response> {
        let (slot, _) = self.shared().submit(req)?;
        ReplyFuture(slot).await
    }

    /// Submits a request that registers a watch. The registration is owned by a
    /// guard from the moment it exists: if the caller's future is dropped before
    /// the reply (or a blocking call times out), the guard removes it, and the
    /// session then removes the server's watch once the reply arms it.
    async fn call_watch(&self, req: Request) -> Result<(Result<Response>, WatchGuard)> {
        let (slot, w) = self.shared().submit(req)?;
        let (id, queue) = w.ok_or_else(|| Error::Malformed("no watch registered".into()))?;
        let guard = WatchGuard {
            shared: self.shared().clone(),
            id,
            queue: Some(queue),
        };
        Ok((ReplyFuture(slot).await, guard))
    }

    // ------------------------------------------------------------ state

    /// The current session state.
    pub fn state(&self) -> SessionState {
        self.shared().state()
    }

    /// A stream of state changes, starting with the current state.
    pub fn state_stream(&self) -> StateStream {
        StateStream {
            queue: self.shared().state_queue(),
        }
    }

    /// Calls `f` on every state change (from the I/O driver: keep it short).
    pub fn add_listener(&self, f: impl Fn(SessionState) + Send + Sync + 'static) -> ListenerId {
        ListenerId(self.shared().add_listener(Arc::new(f)))
    }

    /// Removes a listener; false if it was not registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.shared().remove_listener(id.0)
    }

    /// Session id, password, negotiated timeout and last zxid, once a session exists.
    pub fn session(&self) -> Option<SessionInfo> {
        let (creds, timeout, last_zxid) = self.shared().session_info();
        creds.map(|(id, password)| SessionInfo {
            id,
            password,
            timeout,
            last_zxid,
        })
    }

    /// Waits until the session is connected; errors if it ends first.
    pub async fn wait_connected(&self) -> Result<()> {
        let mut s = self.state_stream();
        loop {
            match s.next().await {
                Some(st) if st.is_connected() => return Ok(()),
                Some(SessionState::Expired) => return Err(Error::SessionExpired),
                Some(SessionState::AuthFailed) => return Err(Error::AuthFailed),
                Some(SessionState::Closed) | None => return Err(Error::SessionClosed),
                Some(_) => {}
            }
        }
    }

    /// Ends the session (its ephemerals vanish) and waits until it is closed.
    pub async fn close(&self) -> Result<()> {
        let mut s = self.state_stream();
        self.shared().close();
        s.wait_for(|st| st.is_terminal()).await;
        Ok(())
    }

    /// Drops the connection without ending the session (as a crashed process
    /// would): its ephemerals stay until it expires, and another client can resume
    /// it from [`session`](Client::session). The client is Closed afterwards.
    pub fn abandon(&self) {
        self.shared().abandon()
    }

    /// Starts a new session after the old one ended (closed, expired or auth failed).
    pub fn restart(&self) {
        self.shared().restart()
    }

    /// The command retry policy set on the builder.
    pub fn command_retry(&self) -> &crate::retry::RetryPolicy {
        &self.opts.command_retry
    }

    /// The server the session is on or connecting to.
    pub fn current_host(&self) -> Option<zk_proto::HostAddr> {
        self.shared().current_host()
    }

    /// The configured servers.
    pub fn hosts(&self) -> Vec<zk_proto::HostAddr> {
        self.shared().hosts()
    }

    /// The chroot from the connect string (`"/app"` for `"host:2181/app"`), if any.
    pub fn chroot(&self) -> Option<String> {
        self.shared().chroot()
    }

    /// A handle on the client's live-object counts that does not keep the session
    /// open: tests use it to check that nothing leaks once the client is dropped.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            shared: self.shared().clone(),
        }
    }

    // ------------------------------------------------------------ writes

    /// Creates a node; returns its path (with the sequence suffix for sequential modes).
    pub async fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        mode: CreateMode,
    ) -> Result<String> {
        Ok(self
            .create_with(path, data, &CreateOptions::mode(mode))
            .await?
            .0)
    }

    /// Creates a node with options; returns its path and Stat.
    pub async fn create_with(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        opts: &CreateOptions,
    ) -> Result<(String, Stat)> {
        let data = data.into();
        let acl = opts
            .acl
            .clone()
            .unwrap_or_else(|| self.opts.default_acl.clone());
        let req = create_request(path, data.clone(), acl.clone(), opts.mode);
        match self.call(req).await {
            Err(Error::Server(ErrorCode::NoNode)) if opts.make_parents => {
                if let Some(parent) = parent_of(path) {
                    self.ensure_path(parent).await?;
                }
                let req = create_request(path, data, acl, opts.mode);
                created(self.call(req).await?)
            }
            other => created(other?),
        }
    }

    /// Creates every missing node of `path` (persistent, empty, default ACL);
    /// existing ones are fine. Like kazoo, it asks `exists` first and walks up only
    /// as far as nodes are missing, so an existing path needs no CREATE permission
    /// on its parent; and when the chroot itself is missing, it is created too.
    pub async fn ensure_path(&self, path: &str) -> Result<()> {
        zk_proto::path::validate_path(path, false)?;
        // The nearest existing ancestor (or the path itself), then create downwards.
        let mut missing = Vec::new();
        let mut cur = path;
        loop {
            if self.exists(cur).await?.is_some() {
                break;
            }
            if cur == "/" {
                // Only the chroot can be missing at "/".
                self.ensure_chroot().await?;
                break;
            }
            missing.push(cur);
            cur = parent_of(cur).unwrap_or("/");
        }
        for p in missing.into_iter().rev() {
            let req = create_request(
                p,
                Bytes::new(),
                self.opts.default_acl.clone(),
                CreateMode::Persistent,
            );
            match self.call(req).await {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
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
                Bytes::new(),
                self.opts.default_acl.clone(),
                CreateMode::Persistent,
            );
            let (slot, _) = self.shared().submit_unchrooted(req)?;
            match ReplyFuture(slot).await {
                Ok(_) | Err(Error::Server(ErrorCode::NodeExists)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sets a node's data (`None`: any version); returns the new Stat.
    pub async fn set_data(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: Option<i32>,
    ) -> Result<Stat> {
        let req = Request::SetData(SetDataRequest {
            path: path.into(),
            data: data.into(),
            version: version.unwrap_or(-1),
        });
        match self.call(req).await? {
            Response::Stat(s) => Ok(s.stat),
            r => Err(unexpected(r)),
        }
    }

    /// Deletes a node (`None`: any version).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        let req = Request::Delete(DeleteRequest {
            path: path.into(),
            version: version.unwrap_or(-1),
        });
        self.call(req).await.map(|_| ())
    }

    /// Deletes a node and everything below it. Missing nodes are not an error.
    pub async fn delete_recursive(&self, path: &str) -> Result<()> {
        // Depth-first, iteratively: (path, children listed yet).
        let mut stack = vec![(path.to_owned(), false)];
        while let Some((p, listed)) = stack.pop() {
            if !listed {
                match self.get_children(&p).await {
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
            match self.delete(&p, None).await {
                Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {}
                // A child appeared meanwhile: list again.
                Err(Error::Server(ErrorCode::NotEmpty)) => stack.push((p, false)),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sets a node's ACL (`None`: any ACL version); returns the new Stat.
    pub async fn set_acl(&self, path: &str, acl: Vec<Acl>, version: Option<i32>) -> Result<Stat> {
        let req = Request::SetAcl(SetAclRequest {
            path: path.into(),
            acl,
            version: version.unwrap_or(-1),
        });
        match self.call(req).await? {
            Response::Stat(s) => Ok(s.stat),
            r => Err(unexpected(r)),
        }
    }

    /// Runs writes atomically. On failure nothing is applied and
    /// [`Error::MultiFailed`] tells which op failed.
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let ops = ops
            .into_iter()
            .map(|o| o.into_proto(&self.opts.default_acl))
            .collect();
        match self.call(Request::Multi(MultiRequest { ops })).await? {
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

    /// A transaction builder (kazoo's `transaction()`).
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            ops: Vec::new(),
        }
    }

    // ------------------------------------------------------------ reads

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        exists_result(self.call(path_watch(Request::Exists, path, false)).await)
    }

    /// Like [`exists`](Client::exists), leaving a watch: fires on create if missing,
    /// on change or delete if present.
    pub async fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatch)> {
        let (res, w) = self
            .call_watch(path_watch(Request::Exists, path, true))
            .await?;
        let stat = exists_result(res)?;
        Ok((stat, w.oneshot()))
    }

    /// The node's data and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Bytes, Stat)> {
        get_data_result(self.call(path_watch(Request::GetData, path, false)).await?)
    }

    /// Like [`get_data`](Client::get_data), leaving a watch for the next change or delete.
    pub async fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, OneshotWatch)> {
        let (res, w) = self
            .call_watch(path_watch(Request::GetData, path, true))
            .await?;
        let (d, s) = get_data_result(res?)?;
        Ok((d, s, w.oneshot()))
    }

    /// Child names (unsorted, as the server sends them).
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        match self
            .call(path_watch(Request::GetChildren, path, false))
            .await?
        {
            Response::GetChildren(c) => Ok(c.children),
            r => Err(unexpected(r)),
        }
    }

    /// Child names and the parent's Stat.
    pub async fn get_children_stat(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        children2(
            self.call(path_watch(Request::GetChildren2, path, false))
                .await?,
        )
    }

    /// Child names and Stat, leaving a watch for the next child change or delete.
    pub async fn get_children_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, OneshotWatch)> {
        let (res, w) = self
            .call_watch(path_watch(Request::GetChildren2, path, true))
            .await?;
        let (c, s) = children2(res?)?;
        Ok((c, s, w.oneshot()))
    }

    /// The node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        match self
            .call(Request::GetAcl(PathRequest { path: path.into() }))
            .await?
        {
            Response::GetAcl(a) => Ok((a.acl, a.stat)),
            r => Err(unexpected(r)),
        }
    }

    /// Waits until the server the client is on has caught up with the leader.
    pub async fn sync(&self, path: &str) -> Result<String> {
        match self
            .call(Request::Sync(PathRequest { path: path.into() }))
            .await?
        {
            Response::Sync(p) => Ok(p.path),
            r => Err(unexpected(r)),
        }
    }

    /// Several reads in one round trip; each succeeds or fails alone (3.6+).
    pub async fn multi_read(&self, ops: Vec<ReadOp>) -> Result<Vec<Result<ReadResult>>> {
        let ops = ops.into_iter().map(ReadOp::into_proto).collect();
        match self.call(Request::MultiRead(MultiRequest { ops })).await? {
            Response::Multi(m) => Ok(m
                .results
                .into_iter()
                .map(|r| match r {
                    MultiResult::GetData(d) => Ok(ReadResult::Data(d.data, d.stat)),
                    MultiResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
                    MultiResult::Error(c) => Err(Error::Server(c)),
                    other => Err(Error::Malformed(format!("{other:?}"))),
                })
                .collect()),
            r => Err(unexpected(r)),
        }
    }

    /// Paths of this session's ephemeral nodes under a plain string prefix (`/` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        match self
            .call(Request::GetEphemerals(PathRequest {
                path: prefix.into(),
            }))
            .await?
        {
            Response::GetEphemerals(e) => Ok(e.ephemerals),
            r => Err(unexpected(r)),
        }
    }

    /// Number of descendants of a node.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        match self
            .call(Request::GetAllChildrenNumber(PathRequest {
                path: path.into(),
            }))
            .await?
        {
            Response::GetAllChildrenNumber(n) => Ok(n.total_number),
            r => Err(unexpected(r)),
        }
    }

    /// The identities the server associates with this connection (3.7+).
    pub async fn whoami(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Request::WhoAmI).await? {
            Response::WhoAmI(w) => Ok(w.client_info),
            r => Err(unexpected(r)),
        }
    }

    /// The ensemble configuration (the server's `/zookeeper/config`, outside any
    /// chroot) and its Stat. A plain `get_data("/zookeeper/config")` under a chroot
    /// reads the chrooted node of that name instead, as every other call does.
    pub async fn get_config(&self) -> Result<(Bytes, Stat)> {
        let (slot, _) = self.shared().submit_config()?;
        get_data_result(ReplyFuture(slot).await?)
    }

    /// Changes the ensemble membership; returns the new config. `from_config`: expected
    /// config version (-1 for any).
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Bytes, Stat)> {
        let req = Request::Reconfig(ReconfigRequest {
            joining_servers: joining.map(Into::into),
            leaving_servers: leaving.map(Into::into),
            new_members: new_members.map(Into::into),
            cur_config_id: from_config,
        });
        get_data_result(self.call(req).await?)
    }

    // ------------------------------------------------------------ watches & auth

    /// A persistent (or persistent-recursive) watch, delivered as a stream (3.6+).
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<WatchStream> {
        let (res, w) = self
            .call_watch(Request::AddWatch(AddWatchRequest {
                path: path.into(),
                mode,
            }))
            .await?;
        res?;
        Ok(w.stream())
    }

    /// Removes the server's watches of a kind on a path, and the local registrations
    /// with them (each gets a removal). NoWatcher if there were none.
    pub async fn remove_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let req = Request::RemoveWatches(WatchesRequest {
            path: path.into(),
            watcher_type: kind,
        });
        self.call(req).await.map(|_| ())
    }

    /// Whether the server holds a watch of this kind on the path (NoWatcher if not).
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let req = Request::CheckWatches(WatchesRequest {
            path: path.into(),
            watcher_type: kind,
        });
        self.call(req).await.map(|_| ())
    }

    /// Adds credentials (e.g. `("digest", "user:password")`); replayed on every reconnect.
    pub async fn add_auth(&self, scheme: &str, credentials: impl Into<Bytes>) -> Result<()> {
        let slot = self.shared().add_auth(scheme, credentials.into())?;
        ReplyFuture(slot).await.map(|_| ())
    }
}

/// Collects ops for [`Client::multi`].
pub struct Transaction {
    client: Client,
    ops: Vec<Op>,
}

impl Transaction {
    /// Adds a create.
    pub fn create(mut self, path: &str, data: impl Into<Bytes>, mode: CreateMode) -> Self {
        self.ops.push(Op::create(path, data, mode));
        self
    }
    /// Adds a delete.
    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        self.ops.push(Op::delete(path, version));
        self
    }
    /// Adds a set-data.
    pub fn set_data(mut self, path: &str, data: impl Into<Bytes>, version: Option<i32>) -> Self {
        self.ops.push(Op::set_data(path, data, version));
        self
    }
    /// Adds a version check.
    pub fn check(mut self, path: &str, version: i32) -> Self {
        self.ops.push(Op::check(path, version));
        self
    }
    /// Commits atomically.
    pub async fn commit(self) -> Result<Vec<OpResult>> {
        self.client.multi(self.ops).await
    }
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

fn create_request(path: &str, data: Bytes, acl: Vec<Acl>, mode: CreateMode) -> Request {
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

fn get_data_result(r: Response) -> Result<(Bytes, Stat)> {
    match r {
        Response::GetData(d) => Ok((d.data, d.stat)),
        r => Err(unexpected(r)),
    }
}

fn children2(r: Response) -> Result<(Vec<String>, Stat)> {
    match r {
        Response::GetChildren2(c) => Ok((c.children, c.stat)),
        r => Err(unexpected(r)),
    }
}
