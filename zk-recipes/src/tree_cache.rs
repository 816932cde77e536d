//! [`TreeCache`]: an in-memory mirror of a subtree (Curator's `CuratorCache`,
//! kazoo's `TreeCache`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use zk_client::{
    AddWatchMode, Client, Data, Error, ErrorCode, EventType, OneshotWatch, Result, Stat,
    WatchStream, WatchedEvent,
};

use crate::common::{join, parent_of};
use crate::mailbox::{lock, Bound, Mailbox};
use crate::runtime::{
    classify, connected, launch, or_stop, state_change, After, Control, Reconnects, Spawner,
};
use crate::tree::{Applied, Change, Full, Tree};
use crate::watch_set::WatchSet;

/// What a [`TreeCache`] reports, in the order it applied the changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeEvent {
    /// A node appeared in the mirror.
    NodeAdded {
        /// Its full path.
        path: String,
        /// Its data.
        data: Data,
        /// Its Stat.
        stat: Stat,
    },
    /// A node's data changed (its `mzxid` moved, or it was re-created).
    NodeUpdated {
        /// Its full path.
        path: String,
        /// The new data.
        data: Data,
        /// The new Stat.
        stat: Stat,
    },
    /// A node left the mirror (children are reported before their parent).
    NodeRemoved {
        /// Its full path.
        path: String,
        /// The data it had.
        data: Data,
        /// The Stat it had.
        stat: Stat,
    },
    /// The first full read of the subtree is done: the mirror equals the
    /// server's tree as of the last reply (no read outstanding, none lost).
    Initialized,
    /// A full re-read after a reconnection or a new session is done; the
    /// differences it found were reported before this, and the mirror equals
    /// the server's tree as of the last reply.
    Resynced,
    /// The event queue was full and `dropped` events were left out here. The
    /// mirror itself is complete: query it rather than rely on the events.
    Overflow {
        /// How many events were dropped.
        dropped: u64,
    },
}

/// Why a [`TreeCache`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeCacheError {
    /// The subtree has more nodes than [`TreeCacheOptions::max_nodes`]. The
    /// cache stops and empties itself rather than mirror part of the tree.
    TooManyNodes {
        /// The configured limit.
        limit: usize,
    },
    /// The session can never come back (closed, auth failed, expired under the
    /// `Terminal` policy), or the server refused the watch. The mirror keeps the
    /// last state it knew and is no longer updated.
    Client(Error),
    /// [`TreeCache::wait_initialized`] timed out.
    Timeout,
}

impl fmt::Display for TreeCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeCacheError::TooManyNodes { limit } => {
                write!(
                    f,
                    "the subtree has more than {limit} nodes (TreeCacheOptions::max_nodes)"
                )
            }
            TreeCacheError::Client(e) => write!(f, "tree cache stopped: {e}"),
            TreeCacheError::Timeout => f.write_str("the tree cache did not initialize in time"),
        }
    }
}

impl std::error::Error for TreeCacheError {}

/// Options of a [`TreeCache`].
#[derive(Debug, Clone)]
pub struct TreeCacheOptions {
    /// Most nodes the mirror may hold (default 1,000,000). Past it the cache stops
    /// with [`TreeCacheError::TooManyNodes`].
    pub max_nodes: usize,
    /// Events the queue holds for the application (default 10,000); past that
    /// it drops new ones and reports [`TreeEvent::Overflow`] where it did. `0`
    /// queues no events at all (for a cache that is only queried).
    pub event_capacity: usize,
    /// Reads in flight at once while (re)reading the tree (default 1,000).
    pub max_in_flight: usize,
    /// Use one persistent recursive watch (`addWatch`, ZooKeeper 3.6+) when the
    /// server has it (default `true`). `false`, or a server that answers
    /// `Unsupported`, uses one-shot data and child watches on every node.
    pub persistent_watch: bool,
    /// Where the loop runs (default: a thread of its own).
    pub spawner: Spawner,
}

impl Default for TreeCacheOptions {
    fn default() -> Self {
        TreeCacheOptions {
            max_nodes: 1_000_000,
            event_capacity: 10_000,
            max_in_flight: 1_000,
            persistent_watch: true,
            spawner: Spawner::thread(),
        }
    }
}

struct CacheState {
    tree: Tree,
    initialized: bool,
    error: Option<TreeCacheError>,
    finished: bool,
    persistent: Option<bool>,
}

struct CacheShared {
    state: Mutex<CacheState>,
    cond: Condvar,
}

/// A mirror of the subtree at a path: every node's data and Stat, kept up to
/// date by watches, and the changes as [`TreeEvent`]s.
///
/// # How it stays right
///
/// * It sets **one persistent recursive watch** on the root (`addWatch`,
///   ZooKeeper 3.6+), then reads the whole subtree; every event makes it read
///   that node again (and its parent, whose Stat's child counters moved). On a
///   server without `addWatch` it falls back to a one-shot data and child
///   watch on every node.
/// * Replies are applied **in the order the reads were sent**. ZooKeeper
///   answers a session's requests in order, so each node only moves forward in
///   time; after the last change, the last read leaves every node exact. (This
///   is what kazoo's bug #645, an update then a delete reported as REMOVED then
///   ADDED with stale data, comes from not doing.)
/// * After a **reconnection** (changes meanwhile are not replayed for
///   persistent watches) and after a **new session**, it reads the whole
///   subtree again and reports only the differences (added, updated, removed),
///   then [`TreeEvent::Resynced`]: no node that is gone stays in the mirror.
/// * **A lost connection removes nothing.** A read that fails because the
///   connection dropped is not counted as done: the full read it belonged to
///   can no longer finish, nothing is swept and no `Initialized` / `Resynced`
///   is reported until the full read after the reconnection is done. Until
///   then the mirror keeps what it had (kazoo's TreeCache, too, removes a node
///   only on NoNode, a delete event or close). A full read is done when none
///   of its reads and no other read (after a change notification) is
///   outstanding, as kazoo counts its outstanding operations; so
///   [`TreeEvent::Initialized`] and [`TreeEvent::Resynced`] mean the mirror
///   equals the server's tree as of the last reply.
/// * A node's Stat is as of its last read: exact once changes stop.
/// * The root need not exist: the mirror is empty until it is created.
///
/// # ZooKeeper 3.6 to 3.8: one watch mode per path and connection
///
/// Before 3.9 a server keeps **one** watch mode per path for each connection
/// (ZOOKEEPER-4466): a one-shot watch that the *same client* sets on the cache's
/// **root path itself** (a [`DataWatch`](crate::DataWatch) or
/// [`ChildrenWatch`](crate::ChildrenWatch) of the root, a `get_data_watch` of
/// it) silently replaces the persistent recursive watch, and the first time it
/// fires the server drops it: changes below the root are then no longer
/// reported, until the next reconnection re-reads the tree. Watches on other
/// paths (descendants included) do not interfere. On such a server either watch
/// the root from another client, or set
/// [`persistent_watch: false`](TreeCacheOptions::persistent_watch) (one-shot
/// watches on every node, which mix with other one-shot watches freely).
///
/// # Limits and backpressure
///
/// * [`max_nodes`](TreeCacheOptions::max_nodes) bounds the mirror; past it the
///   cache empties itself and stops with [`TreeCacheError::TooManyNodes`].
/// * Events go through a **bounded queue**
///   ([`event_capacity`](TreeCacheOptions::event_capacity)). When the
///   application falls behind, new events are dropped and a single
///   [`TreeEvent::Overflow`] marks the place; the mirror is always complete, so
///   a reader that sees it re-reads what it needs from the cache.
///
/// # Dropping
///
/// Dropping the cache stops its loop, which drops its watches: the persistent
/// watch is removed on the server (`removeWatches`), and so are the one-shot
/// ones in the fallback mode. The loop holds a clone of the [`Client`].
///
/// # Example
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use zk_recipes::{TreeCache, TreeEvent};
/// let mut cache = TreeCache::new(&zk, "/app/services")?;
/// cache.wait_initialized(Some(Duration::from_secs(10)))?;
/// // Queries are local: no round trip.
/// for (path, (data, _stat)) in cache.snapshot() {
///     println!("{path} = {:?}", data.to_str());
/// }
/// // Then the changes, in the order they were applied:
/// while let Some(event) = cache.next_event().await {
///     match event {
///         TreeEvent::NodeAdded { path, .. } => println!("+ {path}"),
///         TreeEvent::NodeRemoved { path, .. } => println!("- {path}"),
///         TreeEvent::Overflow { .. } => println!("fell behind: query the cache instead"),
///         other => println!("{other:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "dropping a TreeCache stops it and removes its server watches"]
pub struct TreeCache {
    root: String,
    shared: Arc<CacheShared>,
    events: Mailbox<TreeEvent>,
    control: Arc<Control>,
}

impl fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeCache")
            .field("root", &self.root)
            .field("len", &self.len())
            .field("initialized", &self.is_initialized())
            .finish()
    }
}

impl TreeCache {
    /// Starts mirroring the subtree at `root` with the default options.
    #[must_use = "dropping a TreeCache stops it and removes its server watches"]
    pub fn new(client: &Client, root: &str) -> Result<TreeCache> {
        TreeCache::with_options(client, root, TreeCacheOptions::default())
    }

    /// Starts mirroring the subtree at `root`.
    #[must_use = "dropping a TreeCache stops it and removes its server watches"]
    pub fn with_options(client: &Client, root: &str, opts: TreeCacheOptions) -> Result<TreeCache> {
        zk_proto::path::validate_path(root, false)?;
        if opts.max_in_flight == 0 {
            return Err(Error::InvalidArgument(
                "max_in_flight must be at least 1".into(),
            ));
        }
        let shared = Arc::new(CacheShared {
            state: Mutex::new(CacheState {
                tree: Tree::new(root, opts.max_nodes),
                initialized: false,
                error: None,
                finished: false,
                persistent: None,
            }),
            cond: Condvar::new(),
        });
        let events = Mailbox::new(Bound::Queue {
            cap: opts.event_capacity.max(1),
            overflow: |dropped| TreeEvent::Overflow { dropped },
        });
        let control = Control::new();
        let looper = Looper {
            client: client.clone(),
            root: root.to_owned(),
            max_in_flight: opts.max_in_flight,
            persistent: opts.persistent_watch,
            shared: shared.clone(),
            events: (opts.event_capacity > 0).then(|| events.clone()),
            control: control.clone(),
            reconnects: Reconnects::new(client),
            prw: None,
            watches: WatchSet::new(),
            seq: 0,
            queue: VecDeque::new(),
            queued: HashMap::new(),
            inflight: VecDeque::new(),
            walk: None,
            ever_initialized: false,
        };
        let (s2, e2) = (shared.clone(), events.clone());
        launch(
            &opts.spawner,
            "zk-tree-cache",
            control.clone(),
            move |reason| {
                let mut st = lock(&s2.state);
                st.finished = true;
                if st.error.is_none() {
                    st.error = reason.map(TreeCacheError::Client);
                }
                drop(st);
                s2.cond.notify_all();
                e2.close();
            },
            looper.run(),
        );
        Ok(TreeCache {
            root: root.to_owned(),
            shared,
            events,
            control,
        })
    }

    /// The mirrored root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A node's data and Stat, if it is in the mirror (full path).
    pub fn get(&self, path: &str) -> Option<(Data, Stat)> {
        lock(&self.shared.state).tree.get(path)
    }

    /// A node's children's names, sorted, if the node is in the mirror.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        lock(&self.shared.state).tree.children(path)
    }

    /// Nodes in the mirror (the root included, when it exists).
    pub fn len(&self) -> usize {
        lock(&self.shared.state).tree.len()
    }

    /// Whether the mirror is empty (the root does not exist, or not read yet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every node's data and Stat, by path.
    pub fn snapshot(&self) -> BTreeMap<String, (Data, Stat)> {
        lock(&self.shared.state).tree.snapshot()
    }

    /// Whether the first full read is done.
    pub fn is_initialized(&self) -> bool {
        lock(&self.shared.state).initialized
    }

    /// Whether the cache uses a persistent recursive watch (`Some(false)`: the
    /// one-shot fallback; `None`: not decided yet).
    pub fn uses_persistent_watch(&self) -> Option<bool> {
        lock(&self.shared.state).persistent
    }

    /// Why the cache stopped, if it did.
    pub fn error(&self) -> Option<TreeCacheError> {
        lock(&self.shared.state).error.clone()
    }

    /// Blocks until the first full read is done (no runtime needed). `Err` if
    /// the cache stopped first, or with [`TreeCacheError::Timeout`].
    #[allow(clippy::disallowed_methods)]
    pub fn wait_initialized(
        &self,
        timeout: Option<Duration>,
    ) -> std::result::Result<(), TreeCacheError> {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let mut st = lock(&self.shared.state);
        loop {
            if let Some(e) = &st.error {
                return Err(e.clone());
            }
            if st.initialized {
                return Ok(());
            }
            if st.finished {
                return Err(TreeCacheError::Client(Error::SessionClosed));
            }
            st = match deadline {
                None => self.shared.cond.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return Err(TreeCacheError::Timeout);
                    }
                    self.shared
                        .cond
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// The next event; `None` once the cache has stopped and its queue is empty.
    pub async fn next_event(&mut self) -> Option<TreeEvent> {
        std::future::poll_fn(|cx| self.events.poll_recv(cx)).await
    }

    /// Blocks for the next event: `Ok(None)` once stopped, `Err(Timeout)` if
    /// none came within `timeout`.
    pub fn recv_event_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<TreeEvent>> {
        self.events
            .recv_timeout(timeout)
            .map_err(|_| Error::Timeout)
    }

    /// An event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<TreeEvent> {
        self.events.try_recv().flatten()
    }

    /// Stops the cache (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.control.stop();
    }
}

// ---------------------------------------------------------------------------- the loop

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Data(String),
    Children(String),
}

impl Key {
    fn path(&self) -> &str {
        match self {
            Key::Data(p) | Key::Children(p) => p,
        }
    }
}

/// A queued read: part of the current full walk (`counted`), and for a listing,
/// whether every child it names is read too (`walk`) or only new ones.
#[derive(Debug, Clone, Copy)]
struct Queued {
    counted: bool,
    walk: bool,
}

type Found = Option<(Data, Stat)>;

enum Output {
    Data(Result<(Found, Option<OneshotWatch>)>),
    Children(Result<(Option<Vec<String>>, Option<OneshotWatch>)>),
}

struct InFlight {
    seq: u64,
    key: Key,
    q: Queued,
    fut: Pin<Box<dyn Future<Output = Output> + Send>>,
}

/// A full read of the subtree under way.
struct Walk {
    /// Sequence number of its first read: nodes not confirmed by a read from
    /// here on are gone once it is done.
    since: u64,
    /// Reads of the walk itself not answered yet.
    outstanding: usize,
    /// A read was lost with the connection and not sent again: the walk cannot
    /// finish, and nothing is swept, until the walk after the reconnection.
    broken: bool,
}

enum Step {
    Stopped,
    Reconnected,
    PrwEnded,
    Prw(WatchedEvent),
    Reply(InFlight, Output),
    Fired(Key, Result<WatchedEvent>),
}

struct Looper {
    client: Client,
    root: String,
    max_in_flight: usize,
    persistent: bool,
    shared: Arc<CacheShared>,
    events: Option<Mailbox<TreeEvent>>,
    control: Arc<Control>,
    reconnects: Reconnects,
    prw: Option<WatchStream>,
    watches: WatchSet<Key>,
    seq: u64,
    queue: VecDeque<Key>,
    queued: HashMap<Key, Queued>,
    inflight: VecDeque<InFlight>,
    walk: Option<Walk>,
    ever_initialized: bool,
}

fn no_node<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Server(ErrorCode::NoNode)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Looper {
    async fn run(mut self) -> Option<Error> {
        loop {
            match connected(&self.client, &self.control).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(e),
            }
            self.reconnects.reset();
            if self.persistent && self.prw.is_none() {
                let add = self
                    .client
                    .add_watch(&self.root, AddWatchMode::PersistentRecursive);
                match or_stop(&self.control, add).await? {
                    Ok(s) => self.prw = Some(s),
                    Err(Error::Unsupported(what)) => {
                        tracing::info!(root = %self.root, what, "no persistent watches: one-shot watches on every node");
                        self.persistent = false;
                    }
                    Err(e) => match classify(&e) {
                        After::Retry => continue,
                        After::RetryAfterStateChange => {
                            state_change(&self.client, &self.control).await;
                            continue;
                        }
                        After::End => return Some(e),
                    },
                }
            }
            lock(&self.shared.state).persistent = Some(self.persistent);
            self.start_walk();
            loop {
                self.issue();
                let step = std::future::poll_fn(|cx| self.poll_step(cx)).await;
                match step {
                    Step::Stopped => return None,
                    Step::Reconnected => break,
                    Step::PrwEnded => {
                        self.prw = None;
                        break;
                    }
                    Step::Prw(ev) => self.on_event(ev),
                    Step::Fired(key, r) => self.on_fired(key, r),
                    Step::Reply(f, out) => {
                        if let Err(Full) = self.on_reply(f, out) {
                            let limit = {
                                let mut st = lock(&self.shared.state);
                                st.tree.clear();
                                let limit = st.tree_limit();
                                st.error = Some(TreeCacheError::TooManyNodes { limit });
                                limit
                            };
                            self.shared.cond.notify_all();
                            tracing::warn!(root = %self.root, limit, "tree cache stopped: too many nodes");
                            return None;
                        }
                    }
                }
            }
        }
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if self.control.is_stopped() {
            return Poll::Ready(Step::Stopped);
        }
        if self.control.poll_stopped(cx).is_ready() {
            return Poll::Ready(Step::Stopped);
        }
        // Events before replies: a change is notified before any reply that
        // reflects it, so taking the events first means a walk never looks
        // finished while a change it has been told of is still unread.
        if let Some(s) = self.prw.as_mut() {
            let next = pin!(s.next());
            match next.poll(cx) {
                Poll::Ready(Some(ev)) => return Poll::Ready(Step::Prw(ev)),
                Poll::Ready(None) => return Poll::Ready(Step::PrwEnded),
                Poll::Pending => {}
            }
        }
        if let Poll::Ready((k, r)) = self.watches.poll_fired(cx) {
            return Poll::Ready(Step::Fired(k, r));
        }
        if let Some(front) = self.inflight.front_mut() {
            if let Poll::Ready(out) = front.fut.as_mut().poll(cx) {
                let f = self.inflight.pop_front().expect("front");
                return Poll::Ready(Step::Reply(f, out));
            }
        }
        if self.reconnects.poll_reconnected(cx).is_ready() {
            return Poll::Ready(Step::Reconnected);
        }
        Poll::Pending
    }

    /// A full read of the subtree, from scratch: every earlier read is forgotten.
    fn start_walk(&mut self) {
        self.inflight.clear();
        self.queue.clear();
        self.queued.clear();
        self.walk = Some(Walk {
            since: self.seq,
            outstanding: 0,
            broken: false,
        });
        let root = self.root.clone();
        self.enqueue(Key::Data(root.clone()), true, false);
        self.enqueue(Key::Children(root), true, true);
    }

    fn enqueue(&mut self, key: Key, counted: bool, walk: bool) {
        let counted = counted && self.walk.is_some();
        let mut add_count = counted;
        match self.queued.get_mut(&key) {
            Some(q) => {
                add_count = counted && !q.counted;
                q.counted |= counted;
                q.walk |= walk;
            }
            None => {
                self.queued.insert(key.clone(), Queued { counted, walk });
                self.queue.push_back(key);
            }
        }
        if add_count {
            if let Some(w) = self.walk.as_mut() {
                w.outstanding += 1;
            }
        }
    }

    fn enqueue_walk(&mut self, path: String, counted: bool) {
        self.enqueue(Key::Data(path.clone()), counted, false);
        self.enqueue(Key::Children(path), counted, true);
    }

    /// Sends queued reads, up to the in-flight bound.
    fn issue(&mut self) {
        while self.inflight.len() < self.max_in_flight {
            let Some(key) = self.queue.pop_front() else {
                break;
            };
            let q = self.queued.remove(&key).unwrap_or(Queued {
                counted: false,
                walk: false,
            });
            let fut = self.send(&key);
            self.inflight.push_back(InFlight {
                seq: self.seq,
                key,
                q,
                fut,
            });
            self.seq += 1;
        }
    }

    fn send(&self, key: &Key) -> Pin<Box<dyn Future<Output = Output> + Send>> {
        let c = &self.client;
        match (key, self.persistent) {
            (Key::Data(p), true) => {
                let f = c.get_data(p);
                Box::pin(async move { Output::Data(no_node(f.await).map(|v| (v, None))) })
            }
            (Key::Children(p), true) => {
                let f = c.get_children(p);
                Box::pin(async move { Output::Children(no_node(f.await).map(|v| (v, None))) })
            }
            (Key::Data(p), false) if *p == self.root => {
                // The root may be missing: then an exists watch waits for it.
                let (c, p) = (c.clone(), p.clone());
                Box::pin(async move {
                    let r = async {
                        loop {
                            if let Some((d, s, w)) = no_node(c.get_data_watch(&p).await)? {
                                return Ok((Some((d, s)), Some(w)));
                            }
                            match c.exists_watch(&p).await? {
                                (None, w) => return Ok((None, Some(w))),
                                // Created in between: read its data.
                                (Some(_), _w) => continue,
                            }
                        }
                    };
                    Output::Data(r.await)
                })
            }
            (Key::Data(p), false) => {
                let f = c.get_data_watch(p);
                Box::pin(async move {
                    Output::Data(
                        no_node(f.await)
                            .map(|v| v.map_or((None, None), |(d, s, w)| (Some((d, s)), Some(w)))),
                    )
                })
            }
            (Key::Children(p), false) => {
                let f = c.get_children_watch(p);
                Box::pin(async move {
                    Output::Children(
                        no_node(f.await)
                            .map(|v| v.map_or((None, None), |(c, _, w)| (Some(c), Some(w)))),
                    )
                })
            }
        }
    }

    fn on_event(&mut self, ev: WatchedEvent) {
        let p = ev.path;
        match ev.event_type {
            EventType::NodeCreated | EventType::NodeDeleted => {
                if p != self.root {
                    if let Some(parent) = parent_of(&p) {
                        self.enqueue(Key::Data(parent.to_owned()), false, false);
                    }
                }
                self.enqueue(Key::Data(p), false, false);
            }
            EventType::NodeDataChanged => self.enqueue(Key::Data(p), false, false),
            EventType::NodeChildrenChanged => self.enqueue(Key::Children(p), false, false),
            _ => {}
        }
    }

    fn on_fired(&mut self, key: Key, r: Result<WatchedEvent>) {
        let Ok(ev) = r else {
            // Removed, or the session ended: the re-read after the reconnection
            // arms it again.
            return;
        };
        match ev.event_type {
            // A deleted node may be back before the read: a new node under the
            // same name, whose children the old listing's watch knows nothing
            // of. Read it whole, as if created.
            EventType::NodeCreated | EventType::NodeDeleted => {
                let p = key.path().to_owned();
                self.enqueue_walk(p, false);
            }
            EventType::NodeDataChanged => {
                self.enqueue(Key::Data(key.path().to_owned()), false, false)
            }
            EventType::NodeChildrenChanged => {
                self.enqueue(Key::Children(key.path().to_owned()), false, false)
            }
            _ => {}
        }
    }

    fn on_reply(&mut self, f: InFlight, out: Output) -> std::result::Result<(), Full> {
        let mut changes = Vec::new();
        let mut follow: Vec<(String, bool)> = Vec::new();
        let mut failed = None;
        let mut orphan = None;
        {
            let mut st = lock(&self.shared.state);
            match out {
                Output::Data(Ok((found, watch))) => {
                    let gone = found.is_none();
                    match st
                        .tree
                        .apply_data(f.key.path(), f.seq, found, &mut changes)?
                    {
                        Applied::Done => {}
                        Applied::Orphan(parent) => orphan = Some(parent),
                    }
                    drop(st);
                    self.forget_removed(&changes);
                    if let Some(w) = watch {
                        if !gone || f.key.path() == self.root {
                            self.watches.insert(f.key.clone(), w);
                        }
                    }
                }
                Output::Children(Ok((listed, watch))) => {
                    let exists = st.tree.contains(f.key.path());
                    let new = st.tree.apply_children(
                        f.key.path(),
                        f.seq,
                        listed.as_deref(),
                        &mut changes,
                    );
                    drop(st);
                    self.forget_removed(&changes);
                    if let (Some(w), true) = (watch, exists && listed.is_some()) {
                        self.watches.insert(f.key.clone(), w);
                    }
                    if exists {
                        let names = if f.q.walk {
                            listed.unwrap_or_default()
                        } else {
                            new
                        };
                        for c in names {
                            follow.push((join(f.key.path(), &c), f.q.counted));
                        }
                    }
                }
                Output::Data(Err(e)) | Output::Children(Err(e)) => {
                    drop(st);
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            match classify(&e) {
                // Read again if the connection is up; if not, the full read
                // after the reconnection covers it.
                After::Retry | After::RetryAfterStateChange
                    if self.client.state().is_connected() =>
                {
                    self.enqueue(f.key.clone(), f.q.counted, f.q.walk);
                }
                // Not sent again: the mirror misses this read until the walk
                // after the reconnection, so the walk under way can claim
                // nothing (kazoo removes a node only on NoNode or a delete
                // event, never because the connection dropped).
                After::Retry | After::RetryAfterStateChange => {
                    if let Some(w) = self.walk.as_mut() {
                        w.broken = true;
                    }
                }
                After::End => {
                    tracing::warn!(path = f.key.path(), error = %e, "tree cache cannot read a node; left out");
                }
            }
        }
        if let Some(parent) = orphan {
            if self.covers(&parent) {
                self.enqueue_walk(parent, false);
            }
        }
        for (child, counted) in follow {
            self.enqueue_walk(child, counted);
        }
        self.publish(changes);
        if f.q.counted {
            if let Some(w) = self.walk.as_mut() {
                w.outstanding = w.outstanding.saturating_sub(1);
            }
        }
        self.maybe_walk_done();
        Ok(())
    }

    fn covers(&self, path: &str) -> bool {
        lock(&self.shared.state).tree.covers(path)
    }

    fn forget_removed(&mut self, changes: &[Change]) {
        if self.persistent {
            return;
        }
        for c in changes {
            if let Change::Removed(p, ..) = c {
                self.watches.remove(&Key::Data(p.clone()));
                self.watches.remove(&Key::Children(p.clone()));
            }
        }
    }

    /// Ends the walk if it is done: every read of it answered, and (as kazoo's
    /// TreeCache counts every outstanding read) no other read queued or in
    /// flight, so the mirror is the server's tree as of the last reply. A
    /// broken walk never ends: the walk after the reconnection replaces it.
    fn maybe_walk_done(&mut self) {
        let Some(w) = self.walk.as_ref() else {
            return;
        };
        if w.broken || w.outstanding > 0 || !self.queue.is_empty() || !self.inflight.is_empty() {
            return;
        }
        let since = w.since;
        self.walk = None;
        let mut changes = Vec::new();
        {
            let mut st = lock(&self.shared.state);
            st.tree.sweep(since, &mut changes);
        }
        self.forget_removed(&changes);
        self.publish(changes);
        let first = !self.ever_initialized;
        self.ever_initialized = true;
        lock(&self.shared.state).initialized = true;
        self.shared.cond.notify_all();
        if let Some(m) = &self.events {
            m.push(if first {
                TreeEvent::Initialized
            } else {
                TreeEvent::Resynced
            });
        }
        tracing::debug!(root = %self.root, nodes = self.shared_len(), watches = self.watches.len(), "tree cache in sync");
    }

    fn shared_len(&self) -> usize {
        lock(&self.shared.state).tree.len()
    }

    fn publish(&self, changes: Vec<Change>) {
        let Some(m) = &self.events else { return };
        for c in changes {
            m.push(match c {
                Change::Added(path, data, stat) => TreeEvent::NodeAdded { path, data, stat },
                Change::Updated(path, data, stat) => TreeEvent::NodeUpdated { path, data, stat },
                Change::Removed(path, data, stat) => TreeEvent::NodeRemoved { path, data, stat },
            });
        }
    }
}

impl CacheState {
    fn tree_limit(&self) -> usize {
        self.tree.max_nodes()
    }
}
