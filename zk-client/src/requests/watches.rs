//! Watches set on their own: `add_watch`, `remove_watches`, `check_watches`.

use std::future::Future;

use zk_proto::{AddWatchMode, AddWatchRequest, ErrorCode, Request, WatcherType, WatchesRequest};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::watch::WatchStream;

impl Client {
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
}
