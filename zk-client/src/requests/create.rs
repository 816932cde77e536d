//! Creating nodes: `create`, `create_with` (with `make_parents`), `ensure_path`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use zk_proto::{
    Acl, CreateMode, CreateRequest, CreateTtlRequest, ErrorCode, Request, Response, Stat,
};

use crate::client::Client;
use crate::data::IntoData;
use crate::error::{Error, Result};
use crate::ops::CreateOptions;

use super::{to_wire, unexpected, ReplyFuture};

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

impl Client {
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
