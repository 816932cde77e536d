//! [`DataWatch`]: one node's data, now and after every change (kazoo's
//! `DataWatch`, Curator's `NodeCache`).

use zk_client::{Client, Data, OneshotWatch, Result, Stat, WatchedEvent};

use crate::runtime::Spawner;
use crate::watcher::{read_or_exists, rearm_loop, Rearm, Watcher};
use crate::WatchHandle;

/// What a [`DataWatch`] reports: the node's data and Stat (both `None` while the
/// node does not exist), and the event that led to this read (`None` for the
/// first report and for re-reads after a reconnection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUpdate {
    /// The data (null kept apart from empty), `None` if the node does not exist.
    pub data: Option<Data>,
    /// The Stat, `None` if the node does not exist.
    pub stat: Option<Stat>,
    /// The watch event that triggered this read, if one did.
    pub event: Option<WatchedEvent>,
}

impl DataUpdate {
    /// Whether the node existed at this read.
    pub fn exists(&self) -> bool {
        self.stat.is_some()
    }
}

/// Watches one node's data, as a stream of [`DataUpdate`]s (or a callback, see
/// [`DataWatch::callback`]).
///
/// # What it reports
///
/// * At once, the node's current state, whether or not the node exists (a
///   missing node is watched with an exists watch, so the watcher also works as
///   an "exists" watcher that survives reconnections).
/// * Then, after every change: data changed, node created, node deleted, and
///   created again.
/// * Nothing is missed between a read and its re-arm: each read sets the next
///   watch in the same request (`getData` or `exists` with the watch flag).
/// * Reports are deduplicated by `mzxid` (kazoo): a re-read that finds the same
///   version as the last report is not reported again.
/// * After a reconnection it reads again (kazoo re-reads on every CONNECTED);
///   after a session expiry, when the client opens a new session (the default
///   `ExpiryPolicy::NewSession`), it re-arms and reports the state then, if it
///   differs from the last report.
///
/// # Backpressure: it coalesces
///
/// The stream keeps only the **latest** report the application has not taken:
/// a reader slower than the changes skips intermediate values, never the last
/// one, and memory stays bounded however long the reader is away. The `event`
/// field is then that of the latest read. Read promptly to see every version.
///
/// # Ending
///
/// It ends (`next()` returns `None`) only when the session can never come back
/// (the client was closed, authentication failed, or it expired under the
/// `Terminal` expiry policy), or on an error that retrying cannot fix (e.g.
/// `NoAuth`); [`end_reason`](DataWatch::end_reason) says which.
///
/// # Dropping
///
/// Dropping the `DataWatch` (or calling [`stop`](DataWatch::stop)) stops its loop,
/// which drops its one-shot watch: the registration is removed locally at once
/// and on the server (`removeWatches`) when no other registration of this client
/// wants that path. The loop holds a clone of the [`Client`], so while a watcher
/// runs, dropping your own clones does not close the session.
///
/// # Example
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::DataWatch;
/// let mut config = DataWatch::new(&zk, "/app/config")?;
/// while let Some(update) = config.next().await {
///     match update.data {
///         Some(data) => println!("config is now {:?}", data.to_str()),
///         None => println!("config deleted (still watching for its re-creation)"),
///     }
/// }
/// // The watch ended on its own: the session is gone for good, or the server refused.
/// println!("ended: {:?}", config.end_reason());
/// # Ok(()) }
/// ```
pub type DataWatch = Watcher<DataUpdate>;

impl DataWatch {
    /// Starts watching `path` on a thread of its own.
    #[must_use = "dropping a DataWatch stops it and removes its server watch"]
    pub fn new(client: &Client, path: &str) -> Result<DataWatch> {
        DataWatch::with_spawner(client, path, &Spawner::thread())
    }

    /// Starts watching `path`, its loop run by `spawner`.
    #[must_use = "dropping a DataWatch stops it and removes its server watch"]
    pub fn with_spawner(client: &Client, path: &str, spawner: &Spawner) -> Result<DataWatch> {
        let node = DataNode::new(path);
        Watcher::start(
            "DataWatch",
            "zk-data-watch",
            path,
            spawner,
            |control, deliver| rearm_loop(client.clone(), control, node, deliver),
        )
    }

    /// kazoo's form: calls `f` with the node's current state at once and after
    /// every change (same rules as the stream, without coalescing: the loop waits
    /// for `f` before it reads again, and then reads the latest state), on a
    /// thread of its own. Returning `false` stops it. A panic in `f` is logged
    /// (tracing, error level) and stops this watch only.
    ///
    /// ```no_run
    /// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
    /// use zk_recipes::DataWatch;
    /// // kazoo: @zk.DataWatch("/app/config") def watch(data, stat): ...
    /// let handle = DataWatch::callback(zk, "/app/config", |update| {
    ///     println!("{:?} (version {:?})", update.data, update.stat.map(|s| s.version));
    ///     true // false stops the watch, as kazoo's `return False`
    /// })?;
    /// handle.detach(); // or keep `handle`: dropping it stops the watch
    /// # Ok(()) }
    /// ```
    #[must_use = "dropping the handle stops the watch; call detach() to keep it running"]
    pub fn callback(
        client: &Client,
        path: &str,
        f: impl FnMut(DataUpdate) -> bool + Send + 'static,
    ) -> Result<WatchHandle> {
        DataWatch::callback_with_spawner(client, path, &Spawner::thread(), f)
    }

    /// [`callback`](DataWatch::callback), its loop (and so `f`) run by `spawner`.
    #[must_use = "dropping the handle stops the watch; call detach() to keep it running"]
    pub fn callback_with_spawner(
        client: &Client,
        path: &str,
        spawner: &Spawner,
        f: impl FnMut(DataUpdate) -> bool + Send + 'static,
    ) -> Result<WatchHandle> {
        let node = DataNode::new(path);
        Watcher::start_callback("zk-data-watch", path, spawner, f, |control, deliver| {
            rearm_loop(client.clone(), control, node, deliver)
        })
    }
}

/// A DataWatch's part of the watcher loop: reads the node's data (or its
/// absence) and reports a read only when its `mzxid` differs from the last report.
struct DataNode {
    path: String,
    /// The mzxid of the last report (`Some(None)`: reported as missing).
    last: Option<Option<i64>>,
}

impl DataNode {
    fn new(path: &str) -> DataNode {
        DataNode {
            path: path.to_owned(),
            last: None,
        }
    }
}

impl Rearm for DataNode {
    type Read = (Option<Data>, Option<Stat>);
    type Update = DataUpdate;

    async fn read(&self, client: &Client) -> Result<(Self::Read, OneshotWatch)> {
        let path = &self.path;
        let (data, stat, watch) =
            read_or_exists(client, path, true, || client.get_data_watch(path)).await?;
        Ok(((data, stat), watch))
    }

    fn report(
        &mut self,
        (data, stat): Self::Read,
        event: Option<WatchedEvent>,
    ) -> Option<DataUpdate> {
        let key = stat.map(|s| s.mzxid);
        if self.last == Some(key) {
            return None;
        }
        self.last = Some(key);
        Some(DataUpdate { data, stat, event })
    }
}
