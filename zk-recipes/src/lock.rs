//! [`Lock`]: kazoo's exclusive lock, node for node, with fencing tokens,
//! explicit loss and cancellation-safe acquisition.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use zk_client::{
    Client, CreateMode, CreateOptions, Error, ErrorCode, EventType, Result, SessionState, Stat,
};

use crate::common::{
    contender_seq, join, retryable, settle, uuid_hex, wait_connected, Cancel, Delay,
};
use crate::mailbox::lock;
use crate::runtime::Spawner;

/// The infix of an exclusive (or write) lock's contender nodes.
pub(crate) const LOCK_NAME: &str = "__lock__";
/// The infix of a read lock's contender nodes.
pub(crate) const RLOCK_NAME: &str = "__rlock__";

/// Options of a [`Lock`] (and of the locks built on it).
#[derive(Clone, Debug, Default)]
pub struct LockOptions {
    /// Written, UTF-8, as the contender node's data; `contenders()` lists it.
    /// `None` writes empty data (kazoo's `identifier=None`).
    pub identifier: Option<String>,
    /// More name patterns that mark a child as a contender (kazoo's
    /// `extra_lock_patterns`): a child counts when its name ends in one of the
    /// patterns followed by a 10-digit sequence number. `"-lock-"` makes
    /// Curator's and go-zookeeper's lock nodes (`_c_<uuid>-lock-<seq>`) count,
    /// so this lock waits for them. (A Curator mutex does not wait for kazoo's
    /// names in turn: see the [module docs](crate::Lock#curator).)
    pub extra_lock_patterns: Vec<String>,
    /// Where the removal of an abandoned contender node runs when it cannot be
    /// done at once (an acquisition dropped while disconnected, a guard dropped
    /// without [`release`](LockGuard::release)). Default: a thread of its own.
    pub spawner: Spawner,
}

/// Whose rules a lock core follows: kazoo's (names, numeric order, waits for
/// matching names only) or Curator's `LockInternals` (every child sorted by the
/// text after the last lock name, held by the first `max_leases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Kazoo,
    /// Curator's `StandardLockInternalsDriver`: the first `max_leases` in
    /// order hold; a waiter watches the one `max_leases` places ahead.
    Curator {
        max_leases: usize,
    },
    /// Curator's read lock (`readLockPredicate`): held while no writer comes
    /// before; a waiter watches the first writer.
    CuratorRead,
}

/// What kind of contender a lock object creates and which ones it waits for.
pub(crate) struct LockCore {
    flavor: Flavor,
    /// Curator: the names whose suffix is the sort key
    /// (`standardFixForSorting`, applied in turn).
    pub(crate) sort_names: &'static [&'static str],
    pub(crate) client: Client,
    pub(crate) path: String,
    data: Vec<u8>,
    /// `__lock__` or `__rlock__`.
    node_name: &'static str,
    /// The contender patterns this lock waits for.
    waits_for: Vec<String>,
    /// The patterns `contenders()` lists (`waits_for` plus its own kind).
    listed: Vec<String>,
    spawner: Spawner,
    cancel: Cancel,
    /// The path is known to exist (kazoo's `assured_path`): later acquisitions
    /// skip `ensure_path` until a create answers NoNode.
    assured: AtomicBool,
}

impl LockCore {
    pub(crate) fn new(
        client: &Client,
        path: &str,
        opts: LockOptions,
        node_name: &'static str,
        waits_for: &[&str],
    ) -> Result<Arc<LockCore>> {
        zk_proto::path::validate_path(path, false)?;
        if path == "/" {
            return Err(Error::InvalidArgument(
                "a lock needs a path below the root".into(),
            ));
        }
        let mut w: Vec<String> = waits_for.iter().map(|s| s.to_string()).collect();
        for p in opts.extra_lock_patterns {
            if !w.contains(&p) {
                w.push(p);
            }
        }
        let mut listed = w.clone();
        if !listed.iter().any(|p| p == node_name) {
            listed.push(node_name.to_string());
        }
        Ok(Arc::new(LockCore {
            flavor: Flavor::Kazoo,
            sort_names: &[],
            client: client.clone(),
            path: path.to_owned(),
            data: opts.identifier.unwrap_or_default().into_bytes(),
            node_name,
            waits_for: w,
            listed,
            spawner: opts.spawner,
            cancel: Cancel::default(),
            assured: AtomicBool::new(false),
        }))
    }

    /// A core with Curator's rules: contenders `_c_<uuid>-<node_name><seq>`
    /// (protected) with `data`, sorted by the text after the last of
    /// `sort_names`, parents made as containers.
    pub(crate) fn curator(
        client: &Client,
        path: &str,
        data: Vec<u8>,
        node_name: &'static str,
        sort_names: &'static [&'static str],
        flavor: Flavor,
        spawner: Spawner,
    ) -> Result<Arc<LockCore>> {
        zk_proto::path::validate_path(path, false)?;
        if path == "/" {
            return Err(Error::InvalidArgument(
                "a lock needs a path below the root".into(),
            ));
        }
        Ok(Arc::new(LockCore {
            flavor,
            sort_names,
            client: client.clone(),
            path: path.to_owned(),
            data,
            node_name,
            waits_for: Vec::new(),
            listed: Vec::new(),
            spawner,
            cancel: Cancel::default(),
            assured: AtomicBool::new(false),
        }))
    }

    pub(crate) fn spawner(&self) -> &Spawner {
        &self.spawner
    }

    pub(crate) fn cancel(&self) {
        self.cancel.cancel()
    }

    /// The children in this core's contender order, with their sequence
    /// numbers (0 when a name has none).
    fn ordered(&self, kids: Vec<String>) -> Vec<(i64, String)> {
        if self.flavor == Flavor::Kazoo {
            return sorted_contenders(kids, &self.listed);
        }
        curator_sorted(kids, self.sort_names)
            .into_iter()
            .map(|k| (curator_seq(&k), k))
            .collect()
    }

    pub(crate) fn acquire(
        self: &Arc<Self>,
        wait: Wait,
    ) -> impl Future<Output = Result<Option<LockGuard>>> + Send + 'static {
        let prefix = match self.flavor {
            Flavor::Kazoo => format!("{}{}", uuid_hex(), self.node_name),
            _ => format!("{}{}", crate::curator::protected_prefix(), self.node_name),
        };
        let attempt = Arc::new(Attempt {
            core: self.clone(),
            prefix,
            st: Mutex::new(AttemptState::default()),
        });
        let since = self.cancel.generation();
        async move {
            let guard = AttemptGuard(Some(attempt.clone()));
            let deadline = match wait {
                Wait::For(d) => Delay::new(d),
                _ => Delay::new_opt(None),
            };
            let mut cancel = attempt.core.cancel.wait(since);
            let result = {
                let mut body = pin!(attempt.run(wait));
                let mut deadline = pin!(deadline);
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = body.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                    if cancel.poll_cancelled(cx).is_ready() {
                        return Poll::Ready(Err(Error::Interrupted));
                    }
                    deadline.as_mut().poll(cx).map(|()| Ok(None))
                })
                .await
            };
            match result {
                Ok(Some(held)) => Ok(Some(guard.into_lock_guard(held))),
                // Not acquired: remove our node before answering, if that can be
                // done at once (otherwise it goes on in the background).
                other => {
                    guard.cleanup_now().await;
                    other.map(|_| None)
                }
            }
        }
    }

    /// The contenders' identifiers, holder first.
    pub(crate) fn contenders(
        self: &Arc<Self>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let core = self.clone();
        async move {
            loop {
                match core.try_contenders().await {
                    Err(e) if retryable(&e) => settle(&core.client, &e).await?,
                    r => return r,
                }
            }
        }
    }

    async fn try_contenders(&self) -> Result<Vec<String>> {
        let c = &self.client;
        let kids = match c.get_children(&self.path).await {
            Err(Error::Server(ErrorCode::NoNode)) => Vec::new(),
            r => r?,
        };
        let nodes = self.ordered(kids);
        // Pipelined: every read goes out at once.
        let reads: Vec<_> = nodes
            .iter()
            .map(|(_, n)| c.get_data(&join(&self.path, n)))
            .collect();
        let mut out = Vec::new();
        for r in reads {
            match r.await {
                Ok((d, _)) if !d.is_null() => out.push(String::from_utf8_lossy(&d).into_owned()),
                Ok(_) | Err(Error::Server(ErrorCode::NoNode)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// The contender children (matching `patterns`), sorted by sequence number as
/// a signed integer (ties, which ZooKeeper never makes, by name).
pub(crate) fn sorted_contenders(kids: Vec<String>, patterns: &[String]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = kids
        .into_iter()
        .filter_map(|k| contender_seq(&k, patterns).map(|s| (s, k)))
        .collect();
    v.sort();
    v
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Until acquired.
    Forever,
    /// Not at all: give up if someone is ahead.
    No,
    /// At most this long.
    For(Duration),
}

type CreateFuture = Pin<Box<dyn Future<Output = Result<(String, Stat)>> + Send>>;

#[derive(Default)]
struct AttemptState {
    /// Our contender node's name (not path), once known, and its czxid.
    node: Option<(String, Option<Made>)>,
    /// A create was sent whose outcome is not known: the node may exist.
    create_tried: bool,
    /// The create in flight, so that a cleanup can wait for its answer.
    pending: Option<CreateFuture>,
}

/// One acquisition: its own uuid prefix, the node once created, and the create
/// in flight. Shared with whatever cleans up after it.
struct Attempt {
    core: Arc<LockCore>,
    prefix: String,
    st: Mutex<AttemptState>,
}

/// Who made our node: its creation zxid (the fencing token) and the session
/// that owns it (its `ephemeralOwner`).
#[derive(Clone, Copy)]
struct Made {
    czxid: i64,
    owner: i64,
}

/// What was leased when the lock was acquired.
struct Held {
    node: String,
    seq: i64,
    czxid: i64,
    session: i64,
}

/// Whether the step went through, or needs the loop to start over.
enum Step<T> {
    Done(T),
    Again,
}

impl Attempt {
    fn set_node(&self, node: Option<(String, Option<Made>)>) {
        let mut s = lock(&self.st);
        s.create_tried = false;
        s.node = node;
    }

    /// Sends the create now and waits for it, keeping the future where a cleanup
    /// can take it over if this acquisition is dropped meanwhile.
    async fn create(&self) -> Result<(String, Stat)> {
        let core = &self.core;
        let f = core.client.create_with(
            &join(&core.path, &self.prefix),
            core.data.as_slice(),
            &CreateOptions::mode(CreateMode::EphemeralSequential),
        );
        {
            let mut s = lock(&self.st);
            s.create_tried = true;
            s.pending = Some(Box::pin(f));
        }
        let r = std::future::poll_fn(|cx| {
            let mut s = lock(&self.st);
            match s.pending.as_mut() {
                Some(f) => f.as_mut().poll(cx),
                None => Poll::Ready(Err(Error::ConnectionLoss)),
            }
        })
        .await;
        lock(&self.st).pending = None;
        r
    }

    /// Our node: the known one, one found by our prefix after a create whose
    /// outcome was unknown, or a new one.
    async fn own_node(&self, ensured: &mut bool) -> Result<Step<(String, Option<Made>)>> {
        let core = &self.core;
        let (known, tried) = {
            let s = lock(&self.st);
            (s.node.clone(), s.create_tried)
        };
        if let Some(n) = known {
            return Ok(Step::Done(n));
        }
        if tried {
            // kazoo's _find_node (Curator's protection): the create may have
            // been applied though its answer was lost.
            match core.client.get_children(&core.path).await {
                Ok(kids) => {
                    if let Some(k) = kids.into_iter().find(|k| k.starts_with(&self.prefix)) {
                        let n = (k, None);
                        self.set_node(Some(n.clone()));
                        return Ok(Step::Done(n));
                    }
                    lock(&self.st).create_tried = false;
                }
                Err(Error::Server(ErrorCode::NoNode)) => {
                    *ensured = false;
                    lock(&self.st).create_tried = false;
                }
                Err(e) => return Err(e),
            }
        }
        if !*ensured && !core.assured.load(Ordering::SeqCst) {
            if core.flavor == Flavor::Kazoo {
                core.client.ensure_path(&core.path).await?;
            } else {
                crate::curator::ensure_containers(&core.client, &core.path).await?;
            }
            core.assured.store(true, Ordering::SeqCst);
            *ensured = true;
        }
        match self.create().await {
            Ok((path, stat)) => {
                let name = path.rsplit('/').next().unwrap_or_default().to_string();
                let n = (
                    name,
                    Some(Made {
                        czxid: stat.czxid,
                        owner: stat.ephemeral_owner,
                    }),
                );
                self.set_node(Some(n.clone()));
                Ok(Step::Done(n))
            }
            // The parent went (a container, or deleted): make it again.
            Err(Error::Server(ErrorCode::NoNode)) => {
                *ensured = false;
                core.assured.store(false, Ordering::SeqCst);
                lock(&self.st).create_tried = false;
                Ok(Step::Again)
            }
            Err(e) => Err(e),
        }
    }

    async fn run(&self, wait: Wait) -> Result<Option<Held>> {
        let mut ensured = false;
        loop {
            match self.step(wait, &mut ensured).await {
                Ok(Step::Done(r)) => return Ok(r),
                Ok(Step::Again) => {}
                Err(e) if retryable(&e) => settle(&self.core.client, &e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// One pass of kazoo's `_inner_acquire`: our node, the children, and either
    /// the lock, a refusal (not waiting), or a wait on the predecessor.
    async fn step(&self, wait: Wait, ensured: &mut bool) -> Result<Step<Option<Held>>> {
        let core = &self.core;
        let c = &core.client;
        wait_connected(c).await?;
        let (node, made) = match self.own_node(ensured).await? {
            Step::Done(n) => n,
            Step::Again => return Ok(Step::Again),
        };
        // Subscribed before the reads, so no state change after them is missed.
        let mut states = c.state_stream();
        let _ = states.next().await; // the current state
        let kids = match c.get_children(&core.path).await {
            Err(Error::Server(ErrorCode::NoNode)) => Vec::new(),
            r => r?,
        };
        if !kids.contains(&node) {
            // Our node is gone (the session that made it ended): queue again.
            self.set_node(None);
            *ensured = false;
            return Ok(Step::Again);
        }
        let (own_seq, pred) = match core.flavor {
            Flavor::Kazoo => {
                let own_seq = own_seq(&node, &self.prefix)?;
                let pred = sorted_contenders(kids, &core.waits_for)
                    .into_iter()
                    .rfind(|(s, _)| *s < own_seq)
                    .map(|p| p.1);
                (own_seq, pred)
            }
            flavor => {
                let sorted = curator_sorted(kids, core.sort_names);
                let Some(ours) = sorted.iter().position(|k| *k == node) else {
                    return Ok(Step::Again);
                };
                let pred = match flavor {
                    Flavor::Curator { max_leases } => {
                        ours.checked_sub(max_leases).map(|i| sorted[i].clone())
                    }
                    _ => sorted[..ours]
                        .iter()
                        .find(|k| k.contains(crate::curator::WRITE_LOCK_NAME))
                        .cloned(),
                };
                (curator_seq(&node), pred)
            }
        };
        let Some(pred) = pred else {
            let made = match made {
                Some(m) => m,
                None => match c.exists(&join(&core.path, &node)).await? {
                    Some(s) => Made {
                        czxid: s.czxid,
                        owner: s.ephemeral_owner,
                    },
                    None => {
                        self.set_node(None);
                        return Ok(Step::Again);
                    }
                },
            };
            // The node's owner, not the client's session now: if the session
            // changed since the node was made, the lock is not held by this
            // one, and the guard must say so.
            return Ok(Step::Done(Some(Held {
                node,
                seq: own_seq,
                czxid: made.czxid,
                session: made.owner,
            })));
        };
        if wait == Wait::No {
            return Ok(Step::Done(None));
        }
        // Watch only the immediate predecessor, with a data watch (nothing is
        // left behind if it is already gone), and wake on any state change.
        let watch = match c.get_data_watch(&join(&core.path, &pred)).await {
            Err(Error::Server(ErrorCode::NoNode)) => return Ok(Step::Again),
            r => r?.2,
        };
        let mut watch = pin!(watch);
        let mut change = pin!(states.next());
        std::future::poll_fn(|cx| {
            if watch.as_mut().poll(cx).is_ready() || change.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        Ok(Step::Again)
    }
}

/// Curator's `LockInternals.getSortedChildren`: every child, ordered by the
/// text after the last occurrence of each of `names` in turn
/// (`standardFixForSorting`), compared as Java compares strings (UTF-16 code
/// units; the suffixes are ASCII digits, so bytes compare the same).
pub(crate) fn curator_sorted(kids: Vec<String>, names: &[&str]) -> Vec<String> {
    let mut v: Vec<(String, String)> = kids
        .into_iter()
        .map(|k| {
            let mut key = k.as_str();
            for n in names {
                key = fix_for_sorting(key, n);
            }
            (key.to_string(), k)
        })
        .collect();
    // A stable sort, as Java's `Collections.sort`, on the key alone.
    v.sort_by(|a, b| java_cmp(&a.0, &b.0));
    v.into_iter().map(|(_, k)| k).collect()
}

/// `StandardLockInternalsDriver.standardFixForSorting`.
pub(crate) fn fix_for_sorting<'a>(name: &'a str, lock_name: &str) -> &'a str {
    match name.rfind(lock_name) {
        Some(i) => &name[i + lock_name.len()..],
        None => name,
    }
}

/// Java's `String.compareTo` (UTF-16 code unit order).
pub(crate) fn java_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The sequence number a Curator node ends with (its last 10 digits; 0 if
/// none).
pub(crate) fn curator_seq(name: &str) -> i64 {
    name.len()
        .checked_sub(10)
        .and_then(|i| name.get(i..))
        .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// The sequence number of our own node (the text after our prefix).
fn own_seq(node: &str, prefix: &str) -> Result<i64> {
    node.strip_prefix(prefix)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Malformed(format!("lock node {node:?} has no sequence number")))
}

/// What a cleanup needs: the node if known, the create in flight, and whether
/// a create of unknown outcome means the node must be looked for by prefix.
pub(crate) struct Leftover {
    client: Client,
    path: String,
    prefix: String,
    node: Option<String>,
    pending: Option<CreateFuture>,
    search: bool,
}

impl Leftover {
    /// Removes the node. `persist`: through connection losses, until done;
    /// otherwise gives back what is left at the first retryable error.
    async fn run(mut self, persist: bool) -> Option<Leftover> {
        if let Some(f) = self.pending.take() {
            match f.await {
                Ok((p, _)) => self.node = p.rsplit('/').next().map(str::to_string),
                Err(e) if e.outcome_unknown() || retryable(&e) => self.search = true,
                Err(_) => {}
            }
        }
        loop {
            let r = self.once().await;
            match r {
                Ok(()) => return None,
                Err(e) if retryable(&e) => {
                    if !persist {
                        return Some(self);
                    }
                    if settle(&self.client, &e).await.is_err() {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %self.path, error = %e, "could not remove a lock contender node");
                    return None;
                }
            }
        }
    }

    async fn once(&mut self) -> Result<()> {
        if self.node.is_none() {
            if !self.search {
                return Ok(());
            }
            wait_connected(&self.client).await?;
            match self.client.get_children(&self.path).await {
                Ok(kids) => self.node = kids.into_iter().find(|k| k.starts_with(&self.prefix)),
                Err(Error::Server(ErrorCode::NoNode)) => {}
                Err(e) => return Err(e),
            }
            self.search = false;
        }
        let Some(node) = self.node.clone() else {
            return Ok(());
        };
        match self.client.delete(&join(&self.path, &node), None).await {
            Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => {
                self.node = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A known node `parent/name` to remove.
    pub(crate) fn node(client: &Client, parent: &str, name: &str) -> Leftover {
        Leftover {
            client: client.clone(),
            path: parent.to_owned(),
            prefix: String::new(),
            node: Some(name.to_owned()),
            pending: None,
            search: false,
        }
    }

    pub(crate) fn spawn(self, spawner: &Spawner) {
        spawner.spawn(
            "zk-lock-cleanup",
            Box::pin(async move {
                let _ = self.run(true).await;
            }),
        );
    }
}

/// Owns an acquisition until it becomes a [`LockGuard`]: dropped before that
/// (the acquire future dropped, a timeout, a refusal), it removes the node.
struct AttemptGuard(Option<Arc<Attempt>>);

impl AttemptGuard {
    fn leftover(&mut self) -> Option<(Leftover, Spawner)> {
        let a = self.0.take()?;
        let mut s = lock(&a.st);
        let l = Leftover {
            client: a.core.client.clone(),
            path: a.core.path.clone(),
            prefix: a.prefix.clone(),
            node: s.node.take().map(|n| n.0),
            pending: s.pending.take(),
            search: s.create_tried,
        };
        Some((l, a.core.spawner.clone()))
    }

    async fn cleanup_now(mut self) {
        if let Some((l, spawner)) = self.leftover() {
            if let Some(rest) = l.run(false).await {
                rest.spawn(&spawner);
            }
        }
    }

    fn into_lock_guard(mut self, held: Held) -> LockGuard {
        let a = self.0.take().expect("an attempt owns its guard until here");
        LockGuard {
            core: a.core.clone(),
            node: held.node,
            seq: held.seq,
            czxid: held.czxid,
            session: held.session,
            lost: Arc::new(AtomicBool::new(false)),
            released: AtomicBool::new(false),
        }
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some((l, spawner)) = self.leftover() {
            if l.node.is_some() || l.pending.is_some() || l.search {
                l.spawn(&spawner);
            }
        }
    }
}

/// A distributed exclusive lock, in kazoo's node layout: kazoo's `Lock` and this
/// one exclude each other on the same path.
///
/// # Layout (kazoo 2.11)
///
/// Each acquisition creates an EPHEMERAL_SEQUENTIAL child
/// `<path>/<32 hex>__lock__<10-digit seq>` whose data is the identifier in
/// UTF-8 (empty if none). Missing parents are created persistent and empty
/// (kazoo's `ensure_path`), and made again if they vanish. A child counts as a
/// contender if its name ends in `__lock__` (or an
/// [extra pattern](LockOptions::extra_lock_patterns)) and a 10-digit sequence
/// number; other children (e.g. a lease's `lease_holder`) are ignored. The
/// contender with the smallest sequence number holds the lock; each waiter
/// watches only its immediate predecessor (a data watch), so a release wakes one
/// waiter, and any connection state change wakes it too.
///
/// # Differences from kazoo
///
/// * **Sequence order.** Sequence numbers are parsed as ZooKeeper's signed
///   32-bit counter and ordered as numbers; kazoo orders the suffix text (its
///   issue 730). The two agree until the parent's counter passes 2^31 - 1
///   (about 2^31 acquisitions under one path). After that the suffixes are
///   negative (`-2147483648`, `-2147483647`, ...): numerically they sort in
///   creation order among themselves, as text in reverse (kazoo's perpetual
///   re-election). Across the wrap itself no suffix order is right: the first
///   negative node sorts before the positive ones still there, for kazoo and
///   for us (and Curator). [Fencing tokens](LockGuard::fencing_token) let a
///   resource reject the older holder in that window.
/// * **One uuid per acquisition.** kazoo makes one uuid prefix per `Lock`
///   object; here each acquisition has its own, so the cleanup of an abandoned
///   acquisition can never remove the node of a later one. The names are alike.
/// * **Loss is explicit** ([`LockGuard::status`], [`LockGuard::lost`]); kazoo
///   keeps `is_acquired` true after a session loss.
/// * **Cancel-safe.** Dropping an [`acquire`](Lock::acquire) future, a timeout,
///   a refusal and [`cancel`](Lock::cancel) all remove the contender node; if
///   the connection is down then, the node (found by its prefix if the create's
///   answer was lost) is removed once it is back (kazoo's issue 732 leaks it).
/// * **Concurrency.** A `Lock` is a cheap, cloneable handle; concurrent
///   acquisitions through it (or its clones) are separate contenders queued in
///   ZooKeeper's order. It is not re-entrant: acquiring again while holding
///   waits behind yourself.
///
/// # Curator
///
/// Curator's `InterProcessMutex` (and go-zookeeper) name contenders
/// `_c_<uuid>-lock-<seq>`. With `extra_lock_patterns: vec!["-lock-".into()]`
/// this lock (like kazoo's) waits for them; but Curator sorts kazoo-style names
/// by their whole text, so a Curator mutex does not wait for this lock. Mixing
/// the two on one path is not safe.
///
/// # Example
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// use zk_recipes::{Lock, LockOptions};
///
/// let lock = Lock::with_options(&zk, "/app/lock", LockOptions {
///     identifier: Some("worker-1".into()),
///     ..LockOptions::default()
/// })?;
/// let guard = lock.acquire().await?;
/// // Hand the token to the protected resource with every write; it rejects
/// // tokens lower than the highest it has seen.
/// println!("holding with token {}", guard.fencing_token());
/// println!("contenders: {:?}", lock.contenders().await?);
/// guard.release().await?;
///
/// if let Some(g) = lock.acquire_timeout(Duration::from_secs(5)).await? {
///     g.release().await?;
/// }
/// # Ok(()) }
/// ```
///
/// From a thread, with `zk-blocking` (no runtime):
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// let lock = zk_recipes::Lock::new(zk, "/app/lock", "worker-2")?;
/// if let Some(guard) = lock.acquire_blocking(Some(Duration::from_secs(10)))? {
///     // ... critical section ...
///     guard.release_blocking()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a Lock does nothing until acquired"]
pub struct Lock {
    core: Arc<LockCore>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("path", &self.core.path)
            .finish()
    }
}

impl Lock {
    /// A lock on `path` whose contender nodes carry `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<Lock> {
        Lock::with_options(
            client,
            path,
            LockOptions {
                identifier: Some(identifier.to_owned()),
                ..LockOptions::default()
            },
        )
    }

    /// A lock on `path` with these options.
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<Lock> {
        Lock::of_kind(client, path, opts, LOCK_NAME, &[LOCK_NAME])
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.core.path
    }

    pub(crate) fn of_kind(
        client: &Client,
        path: &str,
        opts: LockOptions,
        node_name: &'static str,
        waits_for: &[&str],
    ) -> Result<Lock> {
        Ok(Lock {
            core: LockCore::new(client, path, opts, node_name, waits_for)?,
        })
    }

    /// Waits until the lock is held. Connection losses and session expiries on
    /// the way are ridden through (the node is recovered by its prefix, or made
    /// again at the back of the queue if the session ended). Errors only when
    /// the client can never reconnect (closed, auth failed), on an error no
    /// retry can fix (e.g. `NoAuth` on the path), or with
    /// [`Error::Interrupted`] after [`cancel`](Lock::cancel).
    ///
    /// The contender node is created when the future is first polled. Dropping
    /// the future before it resolves removes it (see the type's docs).
    pub fn acquire(&self) -> impl Future<Output = Result<LockGuard>> + Send + 'static {
        let f = self.core.acquire(Wait::Forever);
        async move {
            f.await?
                .ok_or_else(|| Error::Malformed("acquire ended without the lock".into()))
        }
    }

    /// Takes the lock only if nobody holds it or waits ahead (kazoo's
    /// `acquire(blocking=False)`); otherwise removes its node and returns `None`.
    pub fn try_acquire(&self) -> impl Future<Output = Result<Option<LockGuard>>> + Send + 'static {
        self.core.acquire(Wait::No)
    }

    /// Waits at most `timeout` (on the system clock); `None` when it passed,
    /// after the contender node was removed (kazoo's `acquire(timeout=...)`).
    /// On an async runtime, wrapping [`acquire`](Lock::acquire) in the runtime's
    /// own timeout is equivalent: dropping it removes the node too, in the
    /// background.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<LockGuard>>> + Send + 'static {
        self.core.acquire(Wait::For(timeout))
    }

    /// [`acquire`](Lock::acquire) from a thread, without a runtime (the
    /// `zk-blocking` way): waits at most `timeout` (`None`: for ever).
    pub fn acquire_blocking(&self, timeout: Option<Duration>) -> Result<Option<LockGuard>> {
        let f = match timeout {
            Some(t) => self.core.acquire(Wait::For(t)),
            None => self.core.acquire(Wait::Forever),
        };
        zk_client::blocking::block_on(f, None).unwrap_or(Ok(None))
    }

    /// [`try_acquire`](Lock::try_acquire) from a thread.
    pub fn try_acquire_blocking(&self) -> Result<Option<LockGuard>> {
        zk_client::blocking::block_on(self.try_acquire(), None).unwrap_or(Ok(None))
    }

    /// Stops every acquisition of this lock (and its clones) in progress: they
    /// remove their nodes and return [`Error::Interrupted`] (kazoo's
    /// `cancel()`). Later acquisitions are not affected.
    pub fn cancel(&self) {
        self.core.cancel.cancel()
    }

    /// The identifiers of the contenders, in the order they will hold the lock
    /// (the holder first), as kazoo's `contenders()`: nodes with null data are
    /// left out, data is decoded as UTF-8 (lossily).
    pub fn contenders(&self) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        self.core.contenders()
    }

    /// [`contenders`](Lock::contenders) from a thread.
    pub fn contenders_blocking(&self) -> Result<Vec<String>> {
        zk_client::blocking::block_on(self.contenders(), None).unwrap_or(Ok(Vec::new()))
    }
}

/// Where a held lock stands; see [`LockGuard::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holding {
    /// Connected, same session, node not seen deleted: held.
    Held,
    /// The connection is down but the session may still be alive: **the lock
    /// may have been lost**. Nothing that relies on exclusion should be done
    /// until it is `Held` again; if the session expires meanwhile, another
    /// contender may already hold it.
    Suspended,
    /// The session that held it ended, or the node was deleted: **lost**.
    /// Another contender may hold it now. Final.
    Lost,
}

/// A held lock (the contender node that is first). Release with
/// [`release`](LockGuard::release); dropping it releases in the background.
///
/// ```no_run
/// # async fn demo(lock: zk_recipes::Lock) -> zk_client::Result<()> {
/// let guard = lock.acquire().await?;
/// let token = guard.fencing_token();
/// // Work until done, or until the lock may be gone.
/// let work = async { /* ... writes carrying `token` ... */ };
/// let lost = guard.lost();
/// # drop((work, lost, token));
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    core: Arc<LockCore>,
    node: String,
    seq: i64,
    czxid: i64,
    session: i64,
    lost: Arc<AtomicBool>,
    released: AtomicBool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("node", &self.node_path())
            .field("fencing_token", &self.czxid)
            .finish()
    }
}

impl LockGuard {
    /// A guard for a node that `core`'s path holds for this session (a
    /// semaphore's lease): released, watched and cleaned up like a lock's.
    pub(crate) fn adopt(core: Arc<LockCore>, node: String, czxid: i64, session: i64) -> LockGuard {
        LockGuard {
            core,
            node,
            seq: 0,
            czxid,
            session,
            lost: Arc::new(AtomicBool::new(false)),
            released: AtomicBool::new(false),
        }
    }

    /// The fencing token of this tenure: the czxid (creation zxid) of the
    /// holder's node. zxids grow with every write across the whole ensemble
    /// (also across leader changes), and a later holder's node was created after
    /// the earlier holder's, so each new holder's token is larger than every
    /// earlier one's, whoever held it (also a kazoo or another client in between
    /// the two). A resource that remembers the highest token it has accepted and
    /// rejects lower ones cannot be written by a holder that lost the lock
    /// without knowing. (The node's sequence number, [`sequence`](LockGuard::sequence),
    /// also grows, but only until the parent's counter wraps.)
    pub fn fencing_token(&self) -> i64 {
        self.czxid
    }

    /// The sequence number of the holder's node.
    pub fn sequence(&self) -> i64 {
        self.seq
    }

    /// The id of the session that holds the lock (its node is that session's
    /// ephemeral).
    pub fn session_id(&self) -> i64 {
        self.session
    }

    /// The holder's node.
    pub fn node_path(&self) -> String {
        join(&self.core.path, &self.node)
    }

    /// Where the lock stands now (no request is sent): [`Holding::Lost`] once
    /// the session changed or ended, or [`lost`](LockGuard::lost) saw the node
    /// deleted; [`Holding::Suspended`] while disconnected.
    pub fn status(&self) -> Holding {
        status_of(&self.core.client, self.session, &self.lost)
    }

    /// Resolves once the lock is lost: the session that holds it ended (or the
    /// client closed), or its node was deleted (by someone else). Cancel-safe;
    /// it sets an exists watch on the node while it waits.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.until(|h| h == Holding::Lost)
    }

    /// [`lost`](LockGuard::lost) from a thread: `true` once the lock is lost,
    /// `false` if `timeout` passed first.
    pub fn lost_blocking(&self, timeout: Option<Duration>) -> bool {
        zk_client::blocking::block_on(self.lost(), timeout).is_some()
    }

    /// [`not_held`](LockGuard::not_held) from a thread: `None` if `timeout`
    /// passed while still held.
    pub fn not_held_blocking(&self, timeout: Option<Duration>) -> Option<Holding> {
        zk_client::blocking::block_on(self.not_held(), timeout)
    }

    /// Resolves with the new status once the lock is no longer surely held:
    /// [`Holding::Suspended`] (connection down) or [`Holding::Lost`].
    pub fn not_held(&self) -> impl Future<Output = Holding> + Send + 'static {
        let f = self.until(|h| h != Holding::Held);
        let (c, session, lost) = (self.core.client.clone(), self.session, self.lost.clone());
        async move {
            f.await;
            status_of(&c, session, &lost)
        }
    }

    fn until(&self, done: fn(Holding) -> bool) -> impl Future<Output = ()> + Send + 'static {
        let (c, session, lost) = (self.core.client.clone(), self.session, self.lost.clone());
        let path = self.node_path();
        async move {
            loop {
                let mut states = c.state_stream();
                let _ = states.next().await;
                if done(status_of(&c, session, &lost)) {
                    return;
                }
                let watch = if c.state().is_connected() {
                    match c.exists_watch(&path).await {
                        Ok((None, _)) => {
                            lost.store(true, Ordering::SeqCst);
                            continue;
                        }
                        Ok((Some(s), w)) if s.ephemeral_owner == session => Some(w),
                        Ok((Some(_), _)) => {
                            lost.store(true, Ordering::SeqCst);
                            continue;
                        }
                        Err(_) => None,
                    }
                } else {
                    None
                };
                let mut change = pin!(states.next());
                match watch {
                    Some(w) => {
                        let mut w = pin!(w);
                        let fired = std::future::poll_fn(|cx| {
                            if let Poll::Ready(r) = w.as_mut().poll(cx) {
                                return Poll::Ready(r.ok());
                            }
                            change.as_mut().poll(cx).map(|_| None)
                        })
                        .await;
                        if fired.is_some_and(|e| e.event_type == EventType::NodeDeleted) {
                            lost.store(true, Ordering::SeqCst);
                        }
                    }
                    None => {
                        if change.await.is_none() {
                            lost.store(true, Ordering::SeqCst);
                        }
                    }
                }
            }
        }
    }

    /// Releases the lock: deletes the node, through connection losses (a
    /// node already gone, e.g. with an expired session, is fine). Errors only if
    /// the client can never reconnect before the delete went through.
    pub fn release(self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.release_shared()
    }

    /// [`release`](LockGuard::release) through a shared reference (for the
    /// recipes that hand the guard out by reference, like an election's
    /// leadership). Releasing twice is harmless.
    pub(crate) fn release_shared(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.released.store(true, Ordering::SeqCst);
        let (c, path) = (self.core.client.clone(), self.node_path());
        let session = self.session;
        async move {
            loop {
                match c.delete(&path, None).await {
                    Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => return Ok(()),
                    Err(e) if retryable(&e) => {
                        if let Err(e2) = settle(&c, &e).await {
                            // A later session means the holder's ended, and
                            // its ephemeral node with it.
                            let gone = c.session().map(|s| s.id) != Some(session);
                            return if gone { Ok(()) } else { Err(e2) };
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// [`release`](LockGuard::release) from a thread.
    pub fn release_blocking(self) -> Result<()> {
        zk_client::blocking::block_on(self.release(), None).unwrap_or(Ok(()))
    }
}

fn status_of(c: &Client, session: i64, lost: &AtomicBool) -> Holding {
    if lost.load(Ordering::SeqCst) {
        return Holding::Lost;
    }
    let st = c.state();
    if st.is_terminal() || c.session().map(|s| s.id) != Some(session) {
        return Holding::Lost;
    }
    if st == SessionState::Connected {
        Holding::Held
    } else {
        Holding::Suspended
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let l = Leftover {
            client: self.core.client.clone(),
            path: self.core.path.clone(),
            prefix: String::new(),
            node: Some(self.node.clone()),
            pending: None,
            search: false,
        };
        l.spawn(&self.core.spawner);
    }
}

/// The read side of kazoo's shared lock (`ReadLock`, 2.9+ rules): readers hold
/// together; a reader waits only for the nearest **writer** queued before it.
///
/// Its contender nodes are `<path>/<32 hex>__rlock__<seq>` (EPHEMERAL_SEQUENTIAL,
/// identifier as data), next to the writers' `__lock__` nodes; a [`WriteLock`]
/// waits for every reader and writer before it, so writers are served in queue
/// order and a reader that comes after a waiting writer waits for it. A plain
/// [`Lock`] ignores readers (its only pattern is `__lock__`), exactly as
/// kazoo's does: use [`WriteLock`] on a path shared with readers.
///
/// Everything else is [`Lock`]'s (it derefs to one): acquire forms, cancel,
/// fencing tokens, loss, `contenders()` (readers and writers, in queue order).
/// kazoo before 2.9 (e.g. Debian's 2.8) let a reader wait for a writer queued
/// *after* it, which can deadlock (kazoo #649); this is the fixed rule.
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use zk_recipes::{ReadLock, WriteLock};
/// let r = ReadLock::new(&zk, "/app/rw", "reader-1")?;
/// let g = r.acquire().await?; // shared with other readers
/// g.release().await?;
/// let w = WriteLock::new(&zk, "/app/rw", "writer-1")?;
/// let g = w.acquire().await?; // alone
/// g.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a ReadLock does nothing until acquired"]
pub struct ReadLock(Lock);

/// The write side of kazoo's shared lock (`WriteLock`): its nodes are named as
/// a [`Lock`]'s (`__lock__`), and it waits for every reader (`__rlock__`) and
/// writer before it. See [`ReadLock`]. Derefs to a [`Lock`].
///
/// ```no_run
/// # fn demo(zk: &zk_client::Client) -> zk_client::Result<()> {
/// let w = zk_recipes::WriteLock::new(zk, "/app/rw", "writer")?;
/// if let Some(g) = w.try_acquire_blocking()? {
///     g.release_blocking()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a WriteLock does nothing until acquired"]
pub struct WriteLock(Lock);

impl ReadLock {
    /// A read lock on `path` whose nodes carry `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<ReadLock> {
        ReadLock::with_options(
            client,
            path,
            LockOptions {
                identifier: Some(identifier.to_owned()),
                ..LockOptions::default()
            },
        )
    }

    /// A read lock with options (`extra_lock_patterns` add writer patterns).
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<ReadLock> {
        Lock::of_kind(client, path, opts, RLOCK_NAME, &[LOCK_NAME]).map(ReadLock)
    }
}

impl WriteLock {
    /// A write lock on `path` whose nodes carry `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Result<WriteLock> {
        WriteLock::with_options(
            client,
            path,
            LockOptions {
                identifier: Some(identifier.to_owned()),
                ..LockOptions::default()
            },
        )
    }

    /// A write lock with options.
    pub fn with_options(client: &Client, path: &str, opts: LockOptions) -> Result<WriteLock> {
        Lock::of_kind(client, path, opts, LOCK_NAME, &[LOCK_NAME, RLOCK_NAME]).map(WriteLock)
    }
}

impl std::ops::Deref for ReadLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}

impl std::ops::Deref for WriteLock {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        &self.0
    }
}
