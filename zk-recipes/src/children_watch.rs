//! [`ChildrenWatch`]: one node's sorted children, now and after every change
//! (kazoo's `ChildrenWatch`).

use zk_client::{Client, Error, OneshotWatch, Result, Stat, WatchedEvent};

use crate::runtime::Spawner;
use crate::watcher::{read_or_exists, rearm_loop, Rearm, Watcher};
use crate::WatchHandle;

/// What a [`ChildrenWatch`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildrenUpdate {
    /// The child names, sorted; `None` while the node does not exist (only
    /// with [`ChildrenWatchOptions::wait_for_creation`]).
    pub children: Option<Vec<String>>,
    /// The watched node's Stat at this listing (`None` if it does not exist).
    pub stat: Option<Stat>,
    /// The watch event that led to this listing (kazoo's `send_event=True`
    /// argument), `None` for the first listing and re-listings after a reconnection.
    pub event: Option<WatchedEvent>,
}

/// Options of a [`ChildrenWatch`].
#[derive(Debug, Clone)]
pub struct ChildrenWatchOptions {
    /// Keep watching while the node does not exist (reporting `children: None`),
    /// and report its children again once it is created. Default `false`: like
    /// kazoo, a missing or deleted node ends the watch (`end_reason()` is
    /// `Server(NoNode)`), without a report.
    pub wait_for_creation: bool,
    /// kazoo's `allow_session_lost` (default `true`): when the session expires
    /// and the client opens a new one, keep watching (re-list, report if the
    /// children differ). `false` ends the watch with `SessionExpired` instead.
    ///
    /// kazoo's default is also `true`; Curator's caches (`PathChildrenCache`,
    /// `CuratorCache`) always behave as `true`: they rebuild after a session
    /// loss and never stop because of it.
    pub allow_session_lost: bool,
    /// Where the loop runs (default: a thread of its own).
    pub spawner: Spawner,
}

impl Default for ChildrenWatchOptions {
    fn default() -> Self {
        ChildrenWatchOptions {
            wait_for_creation: false,
            allow_session_lost: true,
            spawner: Spawner::thread(),
        }
    }
}

/// Watches one node's children, as a stream of [`ChildrenUpdate`]s (or a
/// callback, see [`ChildrenWatch::callback`]).
///
/// # What it reports
///
/// * At once, the current children (sorted), then after every change of the
///   child list; each listing sets the next watch in the same request
///   (`getChildren2` with the watch flag), so no change is missed.
/// * Every event-triggered listing is reported, as kazoo calls its function on
///   every event, even when the list looks the same again (a child added and
///   removed between two listings).
/// * After a reconnection it lists again and reports **only if the list
///   differs** from the last report (kazoo marks the watch broken on
///   SUSPENDED/LOST and does the same on CONNECTED).
/// * The node's deletion ends the watch (kazoo), unless
///   [`wait_for_creation`](ChildrenWatchOptions::wait_for_creation) is set.
///
/// # Backpressure: it coalesces
///
/// Like [`DataWatch`](crate::DataWatch), the stream keeps only the latest
/// listing not yet taken: a slow reader skips intermediate lists, never the
/// last one.
///
/// # Dropping
///
/// Dropping it (or [`stop`](ChildrenWatch::stop)) ends the loop and removes its
/// watch, locally at once and on the server when no other registration of this
/// client wants the path. The loop holds a clone of the [`Client`].
///
/// # Example
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{ChildrenWatch, ChildrenWatchOptions};
/// // Keep watching even while /app/workers does not exist (kazoo would stop).
/// let opts = ChildrenWatchOptions { wait_for_creation: true, ..Default::default() };
/// let mut workers = ChildrenWatch::with_options(zk, "/app/workers", opts)?;
/// while let Some(update) = workers.recv_timeout(Some(Duration::from_secs(60)))? {
///     println!("workers: {:?}", update.children.unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
pub type ChildrenWatch = Watcher<ChildrenUpdate>;

impl ChildrenWatch {
    /// Starts watching the children of `path` with the default options.
    #[must_use = "dropping a ChildrenWatch stops it and removes its server watch"]
    pub fn new(client: &Client, path: &str) -> Result<ChildrenWatch> {
        ChildrenWatch::with_options(client, path, ChildrenWatchOptions::default())
    }

    /// Starts watching the children of `path`.
    #[must_use = "dropping a ChildrenWatch stops it and removes its server watch"]
    pub fn with_options(
        client: &Client,
        path: &str,
        opts: ChildrenWatchOptions,
    ) -> Result<ChildrenWatch> {
        let node = Children::new(path, &opts);
        let (kind, thread) = ("ChildrenWatch", "zk-children-watch");
        Watcher::start(kind, thread, path, &opts.spawner, |control, deliver| {
            rearm_loop(client.clone(), control, node, deliver)
        })
    }

    /// kazoo's form: calls `f` with each listing (same rules as the stream,
    /// without coalescing). Returning `false` stops it; a panic in `f` is logged
    /// and stops this watch only.
    #[must_use = "dropping the handle stops the watch; call detach() to keep it running"]
    pub fn callback(
        client: &Client,
        path: &str,
        opts: ChildrenWatchOptions,
        f: impl FnMut(ChildrenUpdate) -> bool + Send + 'static,
    ) -> Result<WatchHandle> {
        let node = Children::new(path, &opts);
        let spawner = &opts.spawner;
        Watcher::start_callback("zk-children-watch", path, spawner, f, |control, deliver| {
            rearm_loop(client.clone(), control, node, deliver)
        })
    }
}

/// A ChildrenWatch's part of the watcher loop: lists the children (sorted),
/// reports every event-triggered listing and the first one, and a re-listing
/// after a reconnection only if it differs; ends on a new session unless
/// `allow_session_lost`.
struct Children {
    path: String,
    wait_for_creation: bool,
    allow_session_lost: bool,
    /// The children of the last report (`Some(None)`: reported as missing).
    last: Option<Option<Vec<String>>>,
    /// The session the watch follows, and the one current at this read.
    session: Option<i64>,
    now: Option<i64>,
}

impl Children {
    fn new(path: &str, opts: &ChildrenWatchOptions) -> Children {
        Children {
            path: path.to_owned(),
            wait_for_creation: opts.wait_for_creation,
            allow_session_lost: opts.allow_session_lost,
            last: None,
            session: None,
            now: None,
        }
    }
}

impl Rearm for Children {
    type Read = (Option<Vec<String>>, Option<Stat>);
    type Update = ChildrenUpdate;

    fn check(&mut self, client: &Client) -> Result<()> {
        self.now = client.session().map(|s| s.id);
        if !self.allow_session_lost && self.session.is_some() && self.now != self.session {
            return Err(Error::SessionExpired);
        }
        Ok(())
    }

    async fn read(&self, client: &Client) -> Result<(Self::Read, OneshotWatch)> {
        // The children sorted; none when the node is missing (then the watch is
        // an exists watch).
        let list = || async {
            let (mut children, stat, watch) = client.get_children_watch(&self.path).await?;
            children.sort();
            Ok((children, stat, watch))
        };
        let (children, stat, watch) =
            read_or_exists(client, &self.path, self.wait_for_creation, list).await?;
        Ok(((children, stat), watch))
    }

    fn report(
        &mut self,
        (children, stat): Self::Read,
        event: Option<WatchedEvent>,
    ) -> Option<ChildrenUpdate> {
        if self.session.is_none() || self.allow_session_lost {
            self.session = self.now;
        }
        // An event-triggered listing is always reported; the first one too; a
        // re-listing after a reconnection only if it differs.
        if event.is_none() && self.last.as_ref() == Some(&children) {
            return None;
        }
        self.last = Some(children.clone());
        Some(ChildrenUpdate {
            children,
            stat,
            event,
        })
    }
}
