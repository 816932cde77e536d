//! [`ChildrenWatch`]: one node's sorted children, now and after every change
//! (kazoo's `ChildrenWatch`).

use std::sync::Arc;
use std::time::Duration;

use zk_client::{Client, Error, ErrorCode, OneshotWatch, Result, Stat, WatchedEvent};

use crate::mailbox::{Bound, Mailbox};
use crate::runtime::{
    classify, connected, launch, or_stop, state_change, wait_for, After, Control, Reconnects,
    Spawner, Wake,
};
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
#[must_use = "dropping a ChildrenWatch stops it and removes its server watch"]
pub struct ChildrenWatch {
    path: String,
    mailbox: Mailbox<ChildrenUpdate>,
    control: Arc<Control>,
}

impl std::fmt::Debug for ChildrenWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildrenWatch")
            .field("path", &self.path)
            .field("finished", &self.control.is_finished())
            .finish()
    }
}

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
        zk_proto::path::validate_path(path, false)?;
        let mailbox = Mailbox::new(Bound::Latest);
        let control = Control::new();
        let (m1, m2) = (mailbox.clone(), mailbox.clone());
        let body = children_loop(
            client.clone(),
            path.to_owned(),
            opts.clone(),
            control.clone(),
            move |u| {
                m1.push(u);
                true
            },
        );
        launch(
            &opts.spawner,
            "zk-children-watch",
            control.clone(),
            move |_| m2.close(),
            body,
        );
        Ok(ChildrenWatch {
            path: path.to_owned(),
            mailbox,
            control,
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
        mut f: impl FnMut(ChildrenUpdate) -> bool + Send + 'static,
    ) -> Result<WatchHandle> {
        zk_proto::path::validate_path(path, false)?;
        let control = Control::new();
        let c = control.clone();
        let p = path.to_owned();
        let body = children_loop(
            client.clone(),
            path.to_owned(),
            opts.clone(),
            control.clone(),
            move |u| crate::call_guarded(&c, &p, || f(u)),
        );
        launch(
            &opts.spawner,
            "zk-children-watch",
            control.clone(),
            |_| {},
            body,
        );
        Ok(WatchHandle::new(control))
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next listing; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<ChildrenUpdate> {
        std::future::poll_fn(|cx| self.mailbox.poll_recv(cx)).await
    }

    /// Blocks for the next listing: `Ok(None)` once ended, `Err(Timeout)` if
    /// nothing came within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<ChildrenUpdate>> {
        self.mailbox
            .recv_timeout(timeout)
            .map_err(|_| Error::Timeout)
    }

    /// A listing if one is waiting.
    pub fn try_next(&mut self) -> Option<ChildrenUpdate> {
        self.mailbox.try_recv().flatten()
    }

    /// Why the watch ended on its own: `Server(NoNode)` when the node is
    /// missing or was deleted, a session error when the session is over.
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

impl Drop for ChildrenWatch {
    fn drop(&mut self) {
        self.control.stop();
    }
}

/// A listing with the next watch armed; `None` children when the node is
/// missing (then the watch is an exists watch).
async fn list_armed(
    client: &Client,
    path: &str,
    wait_for_creation: bool,
) -> Result<(Option<Vec<String>>, Option<Stat>, OneshotWatch)> {
    loop {
        match client.get_children_watch(path).await {
            Ok((mut c, s, w)) => {
                c.sort();
                return Ok((Some(c), Some(s), w));
            }
            Err(Error::Server(ErrorCode::NoNode)) if wait_for_creation => {}
            Err(e) => return Err(e),
        }
        match client.exists_watch(path).await? {
            (None, w) => return Ok((None, None, w)),
            (Some(_), _w) => continue,
        }
    }
}

pub(crate) async fn children_loop(
    client: Client,
    path: String,
    opts: ChildrenWatchOptions,
    control: Arc<Control>,
    mut deliver: impl FnMut(ChildrenUpdate) -> bool + Send + 'static,
) -> Option<Error> {
    let mut reconnects = Reconnects::new(&client);
    let mut last: Option<Option<Vec<String>>> = None;
    let mut armed: Option<OneshotWatch> = None;
    let mut event: Option<WatchedEvent> = None;
    let mut session: Option<i64> = None;
    loop {
        match connected(&client, &control).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(e),
        }
        let now = client.session().map(|s| s.id);
        if !opts.allow_session_lost && session.is_some() && now != session {
            return Some(Error::SessionExpired);
        }
        reconnects.reset();
        let read = list_armed(&client, &path, opts.wait_for_creation);
        let (children, stat, watch) = match or_stop(&control, read).await? {
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
        if session.is_none() || opts.allow_session_lost {
            session = now;
        }
        drop(armed.replace(watch));
        // An event-triggered listing is always reported; the first one too; a
        // re-listing after a reconnection only if it differs.
        let report = event.is_some() || last.as_ref() != Some(&children);
        if report {
            last = Some(children.clone());
            let update = ChildrenUpdate {
                children,
                stat,
                event: event.take(),
            };
            if control.is_stopped() || !deliver(update) {
                return None;
            }
        }
        let Some(w) = armed.as_mut() else { continue };
        match wait_for(&control, Some(&mut reconnects), w).await {
            Wake::Stopped => return None,
            Wake::Ready(Ok(ev)) => {
                drop(armed.take());
                event = Some(ev);
            }
            Wake::Ready(Err(_)) => drop(armed.take()),
            Wake::Reconnected => {}
        }
    }
}
