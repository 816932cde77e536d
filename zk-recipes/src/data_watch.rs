//! [`DataWatch`]: one node's data, now and after every change (kazoo's
//! `DataWatch`, Curator's `NodeCache`).

use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, Data, Error, ErrorCode, OneshotWatch, Result, Stat, WatchedEvent};

use crate::mailbox::{Bound, Mailbox};
use crate::runtime::{
    classify, connected, launch, or_stop, state_change, wait_for, After, Control, Reconnects,
    Spawner, Wake,
};
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
#[must_use = "dropping a DataWatch stops it and removes its server watch"]
pub struct DataWatch {
    path: String,
    mailbox: Mailbox<DataUpdate>,
    control: Arc<Control>,
}

impl std::fmt::Debug for DataWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWatch")
            .field("path", &self.path)
            .field("finished", &self.control.is_finished())
            .finish()
    }
}

impl DataWatch {
    /// Starts watching `path` on a thread of its own.
    #[must_use = "dropping a DataWatch stops it and removes its server watch"]
    pub fn new(client: &Client, path: &str) -> Result<DataWatch> {
        DataWatch::with_spawner(client, path, &Spawner::thread())
    }

    /// Starts watching `path`, its loop run by `spawner`.
    #[must_use = "dropping a DataWatch stops it and removes its server watch"]
    pub fn with_spawner(client: &Client, path: &str, spawner: &Spawner) -> Result<DataWatch> {
        zk_proto::path::validate_path(path, false)?;
        let mailbox = Mailbox::new(Bound::Latest);
        let control = Control::new();
        let (m1, m2) = (mailbox.clone(), mailbox.clone());
        let body = data_loop(client.clone(), path.to_owned(), control.clone(), move |u| {
            m1.push(u);
            true
        });
        launch(
            spawner,
            "zk-data-watch",
            control.clone(),
            move |_| m2.close(),
            body,
        );
        Ok(DataWatch {
            path: path.to_owned(),
            mailbox,
            control,
        })
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
        mut f: impl FnMut(DataUpdate) -> bool + Send + 'static,
    ) -> Result<WatchHandle> {
        zk_proto::path::validate_path(path, false)?;
        let control = Control::new();
        let c = control.clone();
        let p = path.to_owned();
        let body = data_loop(client.clone(), path.to_owned(), control.clone(), move |u| {
            crate::call_guarded(&c, &p, || f(u))
        });
        launch(spawner, "zk-data-watch", control.clone(), |_| {}, body);
        Ok(WatchHandle::new(control))
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next report; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<DataUpdate> {
        std::future::poll_fn(|cx| self.mailbox.poll_recv(cx)).await
    }

    /// Blocks for the next report (no runtime needed): `Ok(None)` once the watch
    /// has ended, `Err(Timeout)` if nothing came within `timeout` (`None`: wait
    /// for ever).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<DataUpdate>> {
        self.mailbox
            .recv_timeout(timeout)
            .map_err(|_| Error::Timeout)
    }

    /// A report if one is waiting.
    pub fn try_next(&mut self) -> Option<DataUpdate> {
        self.mailbox.try_recv().flatten()
    }

    /// Why the watch ended on its own (`None` while it runs, or if it was stopped).
    pub fn end_reason(&self) -> Option<Error> {
        self.control.reason()
    }

    /// Whether the loop has ended.
    pub fn is_finished(&self) -> bool {
        self.control.is_finished()
    }

    /// Stops the watch (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for DataWatch {
    fn drop(&mut self) {
        self.control.stop();
    }
}

/// The node's state and a watch for its next change, read in one request.
async fn read_armed(
    client: &Client,
    path: &str,
) -> Result<(Option<Data>, Option<Stat>, OneshotWatch)> {
    loop {
        match client.get_data_watch(path).await {
            Ok((d, s, w)) => return Ok((Some(d), Some(s), w)),
            Err(Error::Server(ErrorCode::NoNode)) => {}
            Err(e) => return Err(e),
        }
        match client.exists_watch(path).await? {
            (None, w) => return Ok((None, None, w)),
            // Created in between: read its data (the watch just set is dropped
            // after the next one is armed).
            (Some(_), _w) => continue,
        }
    }
}

/// The DataWatch loop; `deliver` returns false to stop. Returns why it ended
/// on its own (`None` if stopped).
pub(crate) async fn data_loop(
    client: Client,
    path: String,
    control: Arc<Control>,
    mut deliver: impl FnMut(DataUpdate) -> bool + Send + 'static,
) -> Option<Error> {
    let mut reconnects = Reconnects::new(&client);
    // The mzxid of the last report (`Some(None)`: reported as missing).
    let mut last: Option<Option<i64>> = None;
    let mut armed: Option<OneshotWatch> = None;
    let mut event: Option<WatchedEvent> = None;
    loop {
        match connected(&client, &control).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(e),
        }
        reconnects.reset();
        let (data, stat, watch) = match or_stop(&control, read_armed(&client, &path)).await? {
            Ok(v) => v,
            Err(e) => match classify(&e) {
                After::Retry => continue,
                After::RetryAfterStateChange => {
                    state_change(&client, &control).await;
                    continue;
                }
                After::End => return Some(e),
            },
        };
        // The previous registration goes only now that the new one is armed, so
        // the server's watch on the path stays in place.
        drop(armed.replace(watch));
        let key = stat.map(|s| s.mzxid);
        if last != Some(key) {
            last = Some(key);
            let update = DataUpdate {
                data,
                stat,
                event: event.take(),
            };
            if control.is_stopped() || !deliver(update) {
                return None;
            }
        }
        event = None;
        let Some(w) = armed.as_mut() else { continue };
        match wait_for(&control, Some(&mut reconnects), w).await {
            Wake::Stopped => return None,
            Wake::Ready(Ok(ev)) => {
                drop(armed.take());
                event = Some(ev);
            }
            // Removed, or the session ended: read again once connected.
            Wake::Ready(Err(_)) => drop(armed.take()),
            Wake::Reconnected => {}
        }
    }
}
