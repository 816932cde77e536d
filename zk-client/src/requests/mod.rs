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
use zk_proto::{PathWatchRequest, Request, Response, Stat};

use crate::client::Client;
use crate::core::{Registered, Reply};
use crate::data::Data;
use crate::error::{Error, Result};
use crate::slot::Slot;
use crate::wait::ReplyWait;
use crate::watch::{OneshotWatch, WatchGuard};

mod admin;
mod create;
mod multi;
mod reads;
mod watches;
mod writes;

pub use multi::Transaction;

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

/// A sent request that asked for a watch: its reply, and the guard that owns the
/// registration until a watch handle takes it.
struct WatchCall {
    reply: ReplyFuture,
    guard: Option<WatchGuard>,
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

fn oneshot(guard: Option<WatchGuard>) -> Result<OneshotWatch> {
    guard
        .map(WatchGuard::oneshot)
        .ok_or_else(|| Error::Malformed("no watch registered".into()))
}

fn path_watch(f: fn(PathWatchRequest) -> Request, path: &str, watch: bool) -> Request {
    f(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn get_data_result(r: Response) -> Result<(Data, Stat)> {
    match r {
        Response::GetData(d) => Ok((from_wire(d.data), d.stat)),
        r => Err(unexpected(r)),
    }
}
