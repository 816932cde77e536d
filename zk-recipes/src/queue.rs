//! [`Queue`] and [`LockingQueue`]: kazoo's distributed queues, node for node.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_client::{Bytes, Client, CreateMode, Error, ErrorCode, Op, Result};

use crate::common::{either, join, retryable, retrying, settle, uuid_hex, wait_connected, Delay};
use crate::lock::Leftover;
use crate::mailbox::lock;
use crate::runtime::Spawner;

/// kazoo's default priority.
pub const DEFAULT_PRIORITY: u16 = 100;

fn check_priority(p: u16) -> Result<()> {
    if p > 999 {
        return Err(Error::InvalidArgument(format!(
            "priority must be between 0 and 999, not {p}"
        )));
    }
    Ok(())
}

/// What [`Queue`] and [`LockingQueue`] share: a directory of
/// `entry-<PPP>-<seq10>` items on one client, made on first use. Their put and
/// count paths are written once here.
#[derive(Debug)]
struct Entries {
    client: Client,
    /// The directory the items are in.
    dir: String,
    /// A node made before the directory (a LockingQueue's `taken`), if any.
    before: Option<String>,
    ensured: AtomicBool,
}

impl Entries {
    fn new(client: &Client, dir: String, before: Option<String>) -> Entries {
        Entries {
            client: client.clone(),
            dir,
            before,
            ensured: AtomicBool::new(false),
        }
    }

    /// Makes the queue's nodes (once).
    async fn ensure(&self) -> Result<()> {
        if !self.ensured.load(Ordering::SeqCst) {
            if let Some(before) = &self.before {
                self.client.ensure_path(before).await?;
            }
            self.client.ensure_path(&self.dir).await?;
            self.ensured.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The checked priority's node name prefix in the directory, the queue's
    /// nodes made.
    async fn prefix(&self, priority: u16) -> Result<String> {
        check_priority(priority)?;
        self.ensure().await?;
        Ok(format!("{}/entry-{priority:03}-", self.dir))
    }

    /// Adds one item; returns its node. Not retried after a lost answer: it may
    /// have been created.
    async fn put(&self, value: &[u8], priority: u16) -> Result<String> {
        let p = self.prefix(priority).await?;
        let mode = CreateMode::PersistentSequential;
        self.client.create(&p, value, mode).await
    }

    /// [`put`](Self::put) as a future that owns what it needs (both queues'
    /// `put`).
    fn put_owned(
        self: &Arc<Self>,
        value: &[u8],
        priority: u16,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        let (this, value) = (self.clone(), value.to_vec());
        async move { this.put(&value, priority).await }
    }

    /// [`count`](Self::count) as a future that owns what it needs (both
    /// queues' `len`).
    fn count_owned(self: &Arc<Self>) -> impl Future<Output = Result<usize>> + Send + 'static {
        let this = self.clone();
        async move { this.count().await }
    }

    /// The number of items (the directory's child count).
    async fn count(&self) -> Result<usize> {
        retrying(&self.client, || async {
            self.ensure().await?;
            Ok(self.client.get_data(&self.dir).await?.1.num_children as usize)
        })
        .await
    }
}

/// kazoo's `Queue`: items are `<path>/entry-<PPP>-<seq10>`,
/// PERSISTENT_SEQUENTIAL, the data the item's bytes; `PPP` is the priority,
/// 0 to 999, lower first (default 100).
///
/// [`get`](Queue::get) takes the first item of a locally cached, sorted list
/// of the children (priority, then sequence), refreshing the list only once it
/// has been used up (kazoo's behaviour: items put meanwhile wait for the next
/// batch), reads it and deletes it; `None` if the queue is empty. Another
/// consumer taking an item first is skipped over.
///
/// **Delivery is at most once**, as kazoo's: an item is removed before it is
/// processed, and a delete whose answer is lost is not repeated (the item may
/// be gone). Use [`LockingQueue`] to consume only after processing. All
/// children count as items (foreign ones too).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// let q = zk_recipes::Queue::new(&zk, "/app/jobs")?;
/// q.put(b"urgent", 1).await?;
/// q.put(b"later", zk_recipes::DEFAULT_PRIORITY).await?;
/// while let Some(item) = q.get().await? {
///     println!("{item:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Queue does nothing until used"]
pub struct Queue {
    inner: Arc<QueueInner>,
}

#[derive(Debug)]
struct QueueInner {
    items: Arc<Entries>,
    cache: Mutex<VecDeque<String>>,
}

/// The pause after a lost race for an item: kazoo's retry policy (0.1 s,
/// doubling, with jitter), capped at 1.6 s so a consumer that lost a few races
/// still comes back soon; it starts again at each `get`.
#[derive(Default)]
struct RaceBackoff {
    lost: u32,
}

impl RaceBackoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_millis(1600);

    async fn wait(&mut self) {
        let base = Self::FIRST
            .saturating_mul(1 << self.lost.min(8))
            .min(Self::MOST);
        self.lost += 1;
        // Jitter of up to +-40 % (kazoo's max_jitter), so consumers that lost
        // the same race do not come back together.
        let jitter = u64::from_str_radix(&uuid_hex()[..4], 16).unwrap_or(0) as f64 / 65535.0;
        Delay::new(base.mul_f64(0.6 + 0.8 * jitter)).await;
    }
}

impl QueueInner {
    async fn get_once(&self) -> Result<Option<Bytes>> {
        self.items.ensure().await?;
        let mut backoff = RaceBackoff::default();
        loop {
            if lock(&self.cache).is_empty() {
                let mut kids = self.items.client.get_children(&self.items.dir).await?;
                kids.sort();
                *lock(&self.cache) = kids.into();
            }
            let Some(name) = lock(&self.cache).front().cloned() else {
                return Ok(None);
            };
            let p = join(&self.items.dir, &name);
            let read = self.items.client.get_data(&p);
            let del = self.items.client.delete(&p, None); // pipelined behind the read
            match (read.await, del.await) {
                (Ok((d, _)), Ok(())) => {
                    lock(&self.cache).pop_front();
                    return Ok(Some(d.into_bytes()));
                }
                // Someone else took it: start again from a fresh list, after a
                // pause, as kazoo does (its retry sleeps 0.1 s, doubling): a
                // consumer that retried at once would win every later race and
                // starve the kazoo consumers sharing the queue.
                (_, Err(Error::Server(ErrorCode::NoNode)))
                | (Err(Error::Server(ErrorCode::NoNode)), _) => {
                    lock(&self.cache).clear();
                    backoff.wait().await;
                }
                (Err(e), _) | (_, Err(e)) => {
                    lock(&self.cache).clear();
                    return Err(e);
                }
            }
        }
    }
}

impl Queue {
    /// A queue at `path`.
    pub fn new(client: &Client, path: &str) -> Result<Queue> {
        zk_proto::path::validate_path(path, false)?;
        Ok(Queue {
            inner: Arc::new(QueueInner {
                items: Arc::new(Entries::new(client, path.to_owned(), None)),
                cache: Mutex::new(VecDeque::new()),
            }),
        })
    }

    /// Adds an item with `priority` (0..=999, lower first); returns its node.
    pub fn put(
        &self,
        value: impl AsRef<[u8]>,
        priority: u16,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        self.inner.items.put_owned(value.as_ref(), priority)
    }

    /// Takes the next item, `None` if the queue is empty.
    pub fn get(&self) -> impl Future<Output = Result<Option<Bytes>>> + Send + 'static {
        let inner = self.inner.clone();
        // A delete whose answer was lost is not repeated (at most once): a
        // retry takes the next item.
        async move { retrying(&inner.items.client, || inner.get_once()).await }
    }

    /// The number of items (the node's child count).
    pub fn len(&self) -> impl Future<Output = Result<usize>> + Send + 'static {
        self.inner.items.count_owned()
    }

    /// [`put`](Queue::put) from a thread.
    pub fn put_blocking(&self, value: impl AsRef<[u8]>, priority: u16) -> Result<String> {
        zk_client::blocking::block_on(self.put(value, priority), None)
            .unwrap_or(Err(Error::Timeout))
    }

    /// [`get`](Queue::get) from a thread.
    pub fn get_blocking(&self) -> Result<Option<Bytes>> {
        zk_client::blocking::block_on(self.get(), None).unwrap_or(Ok(None))
    }

    /// [`len`](Queue::len) from a thread.
    pub fn len_blocking(&self) -> Result<usize> {
        zk_client::blocking::block_on(self.len(), None).unwrap_or(Err(Error::Timeout))
    }
}

/// kazoo's `LockingQueue`: an item is claimed while processed and removed only
/// when [consumed](LockingQueue::consume), so a consumer that dies before that
/// gives it back.
///
/// # Layout (kazoo 2.11)
///
/// * `<path>/entries/entry-<PPP>-<seq10>`: PERSISTENT_SEQUENTIAL, the item's
///   bytes (same names as [`Queue`]).
/// * `<path>/taken/<entry name>`: EPHEMERAL, data = the consumer object's id
///   (32 hex, ASCII): the claim.
///
/// [`get`](LockingQueue::get) claims the first unclaimed entry (sorted by
/// name), waiting with child watches on both directories until one comes or
/// the timeout passes; it returns the claimed item again until it is
/// [consumed](LockingQueue::consume) (entry and claim deleted in one
/// transaction) or [released](LockingQueue::release) (claim deleted).
/// [`put_all`](LockingQueue::put_all) creates its items in one transaction.
/// After a session loss the claim is gone: [`holds_lock`](LockingQueue::holds_lock)
/// says so (and `consume` refuses).
///
/// ```no_run
/// # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
/// use std::time::Duration;
/// let q = zk_recipes::LockingQueue::new(&zk, "/app/tasks")?;
/// q.put_all(vec![b"a".to_vec(), b"b".to_vec()], 100).await?;
/// if let Some(item) = q.get(Some(Duration::from_secs(5))).await? {
///     // ... process item ...
///     # let _ = item;
///     q.consume().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a LockingQueue does nothing until used"]
pub struct LockingQueue {
    inner: Arc<LockingInner>,
}

#[derive(Debug)]
struct LockingInner {
    /// `<path>/entries`, made after `<path>/taken`.
    items: Arc<Entries>,
    path: String,
    taken: String,
    id: String,
    processing: Mutex<Option<(String, Bytes)>>,
}

/// Deletes a claim whose `get` was dropped before it recorded it.
struct Claim {
    client: Client,
    taken: String,
    name: String,
    armed: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.armed {
            Leftover::node(&self.client, &self.taken, &self.name).spawn(&Spawner::thread());
        }
    }
}

impl LockingInner {
    /// One look: claims the first free entry, or returns the watches to wait on.
    async fn try_take(
        &self,
    ) -> Result<std::result::Result<(String, Bytes), [zk_client::OneshotWatch; 2]>> {
        let c = &self.items.client;
        self.items.ensure().await?;
        let e = c.get_children_watch(&self.items.dir);
        let t = c.get_children_watch(&self.taken);
        let (mut entries, _, we) = e.await?;
        let (taken, _, wt) = t.await?;
        entries.sort();
        for name in entries.into_iter().filter(|n| !taken.contains(n)) {
            let mut claim = Claim {
                client: c.clone(),
                taken: self.taken.clone(),
                name: name.clone(),
                armed: true,
            };
            match c
                .create(
                    &join(&self.taken, &name),
                    self.id.as_bytes(),
                    CreateMode::Ephemeral,
                )
                .await
            {
                Ok(_) => {}
                Err(Error::Server(ErrorCode::NodeExists)) => {
                    claim.armed = false;
                    continue;
                }
                Err(e) => return Err(e),
            }
            match c.get_data(&join(&self.items.dir, &name)).await {
                Ok((d, _)) => {
                    let item = (name, d.into_bytes());
                    *lock(&self.processing) = Some(item.clone());
                    claim.armed = false;
                    return Ok(Ok(item));
                }
                // Consumed meanwhile: let go of the claim.
                Err(Error::Server(ErrorCode::NoNode)) => {
                    match c.delete(&join(&self.taken, &name), None).await {
                        Ok(()) | Err(Error::Server(ErrorCode::NoNode)) => claim.armed = false,
                        Err(_) => {} // the guard removes it once connected
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Err([we, wt]))
    }

    async fn get(&self) -> Result<Bytes> {
        let c = &self.items.client;
        loop {
            if let Some((_, v)) = lock(&self.processing).clone() {
                return Ok(v);
            }
            wait_connected(c).await?;
            let mut states = c.state_stream();
            let _ = states.next().await;
            let [we, wt] = match self.try_take().await {
                Ok(Ok((_, v))) => return Ok(v),
                Ok(Err(w)) => w,
                Err(e) if retryable(&e) => {
                    settle(c, &e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            either(we, either(wt, states.next())).await;
        }
    }

    async fn holds_lock(&self) -> Result<bool> {
        let Some((name, _)) = lock(&self.processing).clone() else {
            return Ok(false);
        };
        let p = join(&self.taken, &name);
        retrying(&self.items.client, || async {
            self.items.client.sync(&p).await?;
            match self.items.client.get_data(&p).await {
                Ok((d, _)) => Ok(&d[..] == self.id.as_bytes()),
                Err(Error::Server(ErrorCode::NoNode)) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn finish(&self, consume: bool) -> Result<bool> {
        if !self.holds_lock().await? {
            return Ok(false);
        }
        let Some((name, _)) = lock(&self.processing).clone() else {
            return Ok(false);
        };
        let mut ops = Vec::new();
        if consume {
            ops.push(Op::delete(&join(&self.items.dir, &name), None));
        }
        ops.push(Op::delete(&join(&self.taken, &name), None));
        retrying(&self.items.client, || self.items.client.multi(ops.clone())).await?;
        *lock(&self.processing) = None;
        Ok(true)
    }
}

impl LockingQueue {
    /// A locking queue at `path` (`<path>/entries`, `<path>/taken`), with a
    /// consumer id of its own.
    pub fn new(client: &Client, path: &str) -> Result<LockingQueue> {
        zk_proto::path::validate_path(path, false)?;
        Ok(LockingQueue {
            inner: Arc::new(LockingInner {
                items: Arc::new(Entries::new(
                    client,
                    join(path, "entries"),
                    Some(join(path, "taken")),
                )),
                path: path.to_owned(),
                taken: join(path, "taken"),
                id: uuid_hex(),
                processing: Mutex::new(None),
            }),
        })
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// This consumer's id (its claims' data).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Adds an item (priority 0..=999, lower first); returns its node.
    pub fn put(
        &self,
        value: impl AsRef<[u8]>,
        priority: u16,
    ) -> impl Future<Output = Result<String>> + Send + 'static {
        self.inner.items.put_owned(value.as_ref(), priority)
    }

    /// Adds all items at once (one transaction: all or none).
    pub fn put_all(
        &self,
        values: Vec<Vec<u8>>,
        priority: u16,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let p = inner.items.prefix(priority).await?;
            let ops: Vec<Op> = values
                .iter()
                .map(|v| Op::create(&p, v.as_slice(), CreateMode::PersistentSequential))
                .collect();
            inner.items.client.multi(ops).await.map(|_| ())
        }
    }

    /// Claims the next free item and returns it (the one already claimed, if
    /// any), waiting at most `timeout` (`None`: for ever); `None` if none came.
    pub fn get(
        &self,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Option<Bytes>>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            match Delay::new_opt(timeout).or(inner.get()).await {
                Some(r) => r.map(Some),
                None => Ok(None),
            }
        }
    }

    /// Whether this consumer still holds the claim on its item (`sync`, then
    /// reads the claim).
    pub fn holds_lock(&self) -> impl Future<Output = Result<bool>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.holds_lock().await }
    }

    /// Removes the claimed item for good (entry and claim in one transaction);
    /// `false` if there is none or the claim was lost.
    pub fn consume(&self) -> impl Future<Output = Result<bool>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.finish(true).await }
    }

    /// Gives the claimed item back; `false` if there is none or the claim was lost.
    pub fn release(&self) -> impl Future<Output = Result<bool>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.finish(false).await }
    }

    /// The number of entries.
    pub fn len(&self) -> impl Future<Output = Result<usize>> + Send + 'static {
        self.inner.items.count_owned()
    }

    /// [`get`](LockingQueue::get) from a thread.
    pub fn get_blocking(&self, timeout: Option<Duration>) -> Result<Option<Bytes>> {
        zk_client::blocking::block_on(self.get(timeout), None).unwrap_or(Ok(None))
    }

    /// [`put`](LockingQueue::put) from a thread.
    pub fn put_blocking(&self, value: impl AsRef<[u8]>, priority: u16) -> Result<String> {
        zk_client::blocking::block_on(self.put(value, priority), None)
            .unwrap_or(Err(Error::Timeout))
    }

    /// [`put_all`](LockingQueue::put_all) from a thread.
    pub fn put_all_blocking(&self, values: Vec<Vec<u8>>, priority: u16) -> Result<()> {
        zk_client::blocking::block_on(self.put_all(values, priority), None)
            .unwrap_or(Err(Error::Timeout))
    }

    /// [`holds_lock`](LockingQueue::holds_lock) from a thread.
    pub fn holds_lock_blocking(&self) -> Result<bool> {
        zk_client::blocking::block_on(self.holds_lock(), None).unwrap_or(Ok(false))
    }

    /// [`len`](LockingQueue::len) from a thread.
    pub fn len_blocking(&self) -> Result<usize> {
        zk_client::blocking::block_on(self.len(), None).unwrap_or(Err(Error::Timeout))
    }

    /// [`consume`](LockingQueue::consume) from a thread.
    pub fn consume_blocking(&self) -> Result<bool> {
        zk_client::blocking::block_on(self.consume(), None).unwrap_or(Ok(false))
    }

    /// [`release`](LockingQueue::release) from a thread.
    pub fn release_blocking(&self) -> Result<bool> {
        zk_client::blocking::block_on(self.release(), None).unwrap_or(Ok(false))
    }
}
