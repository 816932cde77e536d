//! The clients: on every adapter at once, sessions doing register operations on many
//! independent keys, and sessions using the recipes (Lock, Election, Semaphore, Counter). Each
//! operation is recorded with its invocation, completion and outcome. Sabotaged variants (for
//! `--selftest`) break one promise each, to prove the checks see it.

use crate::history::*;
use crate::rng::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zk_client::{
    ClientBuilder, CreateMode, CreateOptions, Data, Error, ErrorCode, Op, OpResult, Result,
    SessionState, Stat,
};
use zk_recipes::{
    Counter, Election, Holding, Leadership, Lock, LockGuard, Semaphore, SemaphoreLease,
};

/// Register sessions per adapter; register workers with the same index on different
/// adapters share keys.
pub const REG_SESSIONS: usize = 2;
/// Operations a worker does on one key before it moves to the next: keeps each key's history
/// small enough for an exhaustive linearizability search.
pub const OPS_PER_KEY: u64 = 12;
/// Leases of the semaphore.
pub const MAX_LEASES: usize = 2;
/// Session timeout asked for.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Which promise a sabotaged client breaks (all false in a campaign).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sabotage {
    /// Some blind writes and counter adds are acknowledged but never sent.
    pub lost_write: bool,
    /// Reads are served from a per-key cache of the first value read.
    pub stale_read: bool,
    /// Locks and leaderships are granted without waiting for the predecessor.
    pub lock_no_wait: bool,
    /// The semaphore counts a held lease as free (one lease granted twice).
    pub lease_twice: bool,
    /// A holder's status check ignores the session's expiry.
    pub ignore_expiry: bool,
}

/// Every sabotage by name, with the checks (by the start of their names) that must catch it.
pub const SABOTAGES: [(&str, &[&str]); 5] = [
    ("lost-write", &["registers:", "counter:"]),
    ("stale-read", &["registers:", "plain reads:", "sessions:"]),
    (
        "lock-no-wait",
        &["lock: never", "lock: fencing", "election:"],
    ),
    ("lease-twice", &["semaphore:"]),
    ("ignore-expiry", &["holders:"]),
];

impl Sabotage {
    /// Every sabotage at once.
    pub fn all() -> Sabotage {
        Sabotage {
            lost_write: true,
            stale_read: true,
            lock_no_wait: true,
            lease_twice: true,
            ignore_expiry: true,
        }
    }

    /// `all`, or names from [`SABOTAGES`] separated by commas.
    pub fn parse(list: &str) -> std::result::Result<Sabotage, String> {
        if list == "all" {
            return Ok(Sabotage::all());
        }
        let mut s = Sabotage::default();
        for name in list.split(',') {
            match name {
                "lost-write" => s.lost_write = true,
                "stale-read" => s.stale_read = true,
                "lock-no-wait" => s.lock_no_wait = true,
                "lease-twice" => s.lease_twice = true,
                "ignore-expiry" => s.ignore_expiry = true,
                other => {
                    let names: Vec<&str> = SABOTAGES.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown sabotage {other:?}: all, or some of {}",
                        names.join(",")
                    ));
                }
            }
        }
        Ok(s)
    }

    /// The names of the sabotages on (empty: none).
    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.lost_write,
            self.stale_read,
            self.lock_no_wait,
            self.lease_twice,
            self.ignore_expiry,
        ];
        SABOTAGES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|((n, _), _)| *n)
            .collect()
    }

    /// The checks (by the start of their names) that must catch the sabotages on.
    pub fn expected_catches(&self) -> Vec<&'static str> {
        let names = self.names();
        let mut v: Vec<&'static str> = SABOTAGES
            .iter()
            .filter(|(n, _)| names.contains(n))
            .flat_map(|(_, checks)| checks.iter().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// What every worker shares.
pub struct Ctx {
    /// The campaign clock.
    pub clock: Clock,
    /// The history.
    pub rec: Arc<Recorder>,
    /// Set at the end of the quiet period.
    pub stop: AtomicBool,
    /// The campaign's root znode.
    pub root: String,
    /// Sabotage (self-test).
    pub sab: Sabotage,
    /// The seed.
    pub seed: u64,
    /// Next acquisition id.
    pub next_acq: AtomicU64,
    /// Workers still running.
    pub running: AtomicUsize,
    /// The workers that are running, by id (those still there after the stop are hung).
    pub live: Mutex<std::collections::BTreeSet<usize>>,
    /// Withdraw waiting elections (called repeatedly at the end).
    pub cancels: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Recipe calls that failed, by call and error, with a count (for the summary: a recipe
    /// that never works would otherwise pass its checks vacuously).
    pub errors: Mutex<std::collections::BTreeMap<(&'static str, String), usize>>,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The path of register `key`.
    pub fn key_path(&self, key: u32) -> String {
        key_path(&self.root, key)
    }

    fn error(&self, what: &'static str, e: &Error) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((what, e.to_string()))
            .or_default() += 1;
    }

    /// Calls every registered cancel.
    pub fn cancel_all(&self) {
        for c in self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            c();
        }
    }
}

/// Counts a worker as running, and names it among the live ones, until dropped.
struct Running<'a>(&'a Ctx, usize);

impl<'a> Running<'a> {
    /// What every worker does first: counts itself as running and records its session's
    /// state changes.
    fn start(conn: &Conn, ctx: &'a Arc<Ctx>, worker: usize) -> Running<'a> {
        ctx.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(worker);
        listen(conn, ctx, worker);
        Running(ctx, worker)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A session on one adapter, with the calls the workers make.
#[derive(Clone)]
pub enum Conn {
    /// zk-tokio (futures polled on a tokio runtime).
    Tokio(zk_client::Client),
    /// zk-smol (futures polled on smol).
    Smol(zk_client::Client),
    /// zk-blocking (blocking calls on the worker's thread).
    Blocking(zk_blocking::Client),
}

impl Conn {
    /// The async client (recipes take it).
    pub fn client(&self) -> zk_client::Client {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.clone(),
            Conn::Blocking(b) => b.as_async().clone(),
        }
    }

    fn session_id(&self) -> i64 {
        self.client().session().map_or(0, |s| s.id)
    }

    async fn sleep(&self, d: Duration) {
        match self {
            Conn::Tokio(_) => tokio::time::sleep(d).await,
            Conn::Smol(_) => {
                async_io::Timer::after(d).await;
            }
            Conn::Blocking(_) => std::thread::sleep(d),
        }
    }

    /// The pause before a holder tries again after a failed acquire: long enough not to
    /// spin against a cluster that is down.
    async fn back_off(&self) {
        self.sleep(Duration::from_millis(200)).await
    }

    async fn get_data(&self, path: &str) -> Result<(Data, Stat)> {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.get_data(path).await,
            Conn::Blocking(b) => b.get_data(path),
        }
    }

    async fn sync(&self, path: &str) -> Result<String> {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.sync(path).await,
            Conn::Blocking(b) => b.sync(path),
        }
    }

    async fn set_data(&self, path: &str, data: String, version: Option<i32>) -> Result<Stat> {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.set_data(path, data, version).await,
            Conn::Blocking(b) => b.set_data(path, data, version),
        }
    }

    async fn create(&self, path: &str, data: String, mode: CreateMode) -> Result<(String, Stat)> {
        let opts = CreateOptions::mode(mode);
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.create_with(path, data, &opts).await,
            Conn::Blocking(b) => b.create_with(path, data, &opts),
        }
    }

    async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.delete(path, version).await,
            Conn::Blocking(b) => b.delete(path, version),
        }
    }

    async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.get_children(path).await,
            Conn::Blocking(b) => b.get_children(path),
        }
    }

    async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        match self {
            Conn::Tokio(c) | Conn::Smol(c) => c.multi(ops).await,
            Conn::Blocking(b) => b.multi(ops),
        }
    }

    async fn lock_acquire(&self, lock: &Lock, t: Duration) -> Result<Option<LockGuard>> {
        match self {
            Conn::Tokio(_) | Conn::Smol(_) => lock.acquire_timeout(t).await,
            Conn::Blocking(_) => lock.acquire_blocking(Some(t)),
        }
    }

    async fn lock_release(&self, guard: LockGuard) -> Result<()> {
        match self {
            Conn::Tokio(_) | Conn::Smol(_) => guard.release().await,
            Conn::Blocking(_) => guard.release_blocking(),
        }
    }

    async fn sem_acquire(&self, sem: &Semaphore, t: Duration) -> Result<Option<SemaphoreLease>> {
        match self {
            Conn::Tokio(_) | Conn::Smol(_) => sem.acquire_timeout(t).await,
            Conn::Blocking(_) => sem.acquire_blocking(Some(t)),
        }
    }

    async fn sem_release(&self, lease: SemaphoreLease) -> Result<()> {
        match self {
            Conn::Tokio(_) | Conn::Smol(_) => lease.release().await,
            Conn::Blocking(_) => lease.release_blocking(),
        }
    }

    async fn counter_add(&self, counter: &Counter<i64>, delta: i64) -> Result<i64> {
        match self {
            Conn::Tokio(_) | Conn::Smol(_) => counter.add(delta).await.map(|c| c.post),
            Conn::Blocking(_) => counter.add_blocking(delta).map(|c| c.post),
        }
    }
}

/// The path of register `key` under the campaign's `root`.
pub fn key_path(root: &str, key: u32) -> String {
    format!("{root}/r/{key}")
}

/// Connects `make` until it works (the ensemble may be electing); `None` after a minute.
pub fn connect_retry<T>(mut make: impl FnMut() -> zk_client::Result<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match make() {
            Ok(c) => return Some(c),
            Err(e) if Instant::now() > deadline => {
                eprintln!("jepsen: cannot connect: {e}");
                return None;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The builder every worker connects with.
pub fn builder(connect: &str) -> ClientBuilder {
    ClientBuilder::new(connect)
        .session_timeout(SESSION_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
}

/// Whether an error leaves the outcome of a write unknown. An expiry counts: a request sent
/// before it may have been applied.
fn unknown(e: &Error) -> bool {
    e.outcome_unknown() || matches!(e, Error::SessionExpired | Error::SessionClosed)
}

fn classify<R>(e: &Error) -> Outcome<R> {
    if unknown(e) {
        Outcome::Unknown(e.to_string())
    } else {
        Outcome::NotApplied(e.to_string())
    }
}

fn parse(data: &Data) -> u64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Records the session's state changes.
fn listen(conn: &Conn, ctx: &Arc<Ctx>, worker: usize) {
    let (rec, clock) = (ctx.rec.clone(), ctx.clock);
    conn.client().add_listener(move |state: SessionState| {
        rec.lock().events.push(SessionEvent {
            worker,
            t: clock.now(),
            state: format!("{state:?}"),
        });
    });
}

/// Per worker: the first value read from each key (sabotage `stale_read`).
type Cache = HashMap<u32, (u64, i32, i64)>;

async fn perform(
    conn: &Conn,
    ctx: &Ctx,
    key: u32,
    op: &RegOp,
    cache: &mut Cache,
    rng: &mut Rng,
) -> (Outcome<RegRet>, Option<i64>) {
    let path = ctx.key_path(key);
    let read = |r: Result<(Data, Stat)>, cache: &mut Cache| match r {
        Ok((data, stat)) => {
            let v = parse(&data);
            cache.entry(key).or_insert((v, stat.version, stat.mzxid));
            (
                Outcome::Ok(RegRet::Value(Some((v, stat.version)))),
                Some(stat.mzxid),
            )
        }
        Err(e) if e.code() == ErrorCode::NoNode => (Outcome::Ok(RegRet::Value(None)), None),
        Err(e) => (classify(&e), None),
    };
    let write = |r: Result<Stat>| match r {
        Ok(stat) => (Outcome::Ok(RegRet::SetOk(stat.version)), Some(stat.mzxid)),
        Err(e) if e.code() == ErrorCode::NoNode => (Outcome::Ok(RegRet::NoNode), None),
        Err(e) if e.code() == ErrorCode::BadVersion => (Outcome::Ok(RegRet::BadVersion), None),
        Err(e) => (classify(&e), None),
    };
    if ctx.sab.stale_read && matches!(op, RegOp::Read | RegOp::SyncRead) && rng.chance(60) {
        if let Some(&(v, version, zxid)) = cache.get(&key) {
            return (Outcome::Ok(RegRet::Value(Some((v, version)))), Some(zxid));
        }
    }
    match op {
        RegOp::Read => read(conn.get_data(&path).await, cache),
        RegOp::SyncRead => {
            // The parent always exists; sync orders the whole server, not one path.
            match conn.sync(&format!("{}/r", ctx.root)).await {
                Ok(_) => read(conn.get_data(&path).await, cache),
                Err(e) => (classify(&e), None),
            }
        }
        RegOp::Create(v) => match conn
            .create(&path, v.to_string(), CreateMode::Persistent)
            .await
        {
            Ok((_, stat)) => (Outcome::Ok(RegRet::CreateOk), Some(stat.mzxid)),
            Err(e) if e.code() == ErrorCode::NodeExists => (Outcome::Ok(RegRet::Exists), None),
            Err(e) => (classify(&e), None),
        },
        RegOp::Set(v) => write(conn.set_data(&path, v.to_string(), None).await),
        RegOp::Cas(v, version) => write(conn.set_data(&path, v.to_string(), Some(*version)).await),
        RegOp::Delete(version) => match conn.delete(&path, *version).await {
            Ok(()) => (Outcome::Ok(RegRet::DeleteOk), None),
            Err(e) if e.code() == ErrorCode::NoNode => (Outcome::Ok(RegRet::NoNode), None),
            Err(e) if e.code() == ErrorCode::BadVersion => (Outcome::Ok(RegRet::BadVersion), None),
            Err(e) => (classify(&e), None),
        },
    }
}

/// Register operations on keys shared with the same-index workers of the other adapters.
pub async fn register_worker(conn: Conn, ctx: Arc<Ctx>, worker: usize, group: usize) {
    let _running = Running::start(&conn, &ctx, worker);
    let mut rng = Rng::new(ctx.seed.wrapping_mul(1_000_003).wrapping_add(worker as u64));
    let (mut incarnation, mut n, mut seq) = (0u64, 0u64, 0u64);
    let mut versions: HashMap<u32, i32> = HashMap::new();
    let mut cache = Cache::new();
    while !ctx.stopped() {
        let key = (n / OPS_PER_KEY) as u32 * REG_SESSIONS as u32 + group as u32;
        seq += 1;
        let value = ((worker as u64 + 1) << 40) | seq;
        let known = versions.get(&key).copied();
        let op = match rng.range(0, 99) {
            0..=24 => RegOp::Read,
            25..=44 => RegOp::SyncRead,
            45..=59 => RegOp::Set(value),
            60..=79 => RegOp::Cas(value, known.unwrap_or(rng.range(0, 2) as i32)),
            80..=89 => RegOp::Create(value),
            _ => RegOp::Delete(if rng.chance(50) { known } else { None }),
        };
        let session = conn.session_id();
        let invoke = ctx.clock.now();
        let (outcome, zxid) = match (&op, known) {
            (RegOp::Set(_), Some(v)) if ctx.sab.lost_write && rng.chance(40) => {
                (Outcome::Ok(RegRet::SetOk(v + 1)), None)
            }
            _ => perform(&conn, &ctx, key, &op, &mut cache, &mut rng).await,
        };
        let complete = ctx.clock.now();
        match &outcome {
            Outcome::Ok(RegRet::Value(Some((_, v)))) | Outcome::Ok(RegRet::SetOk(v)) => {
                versions.insert(key, *v);
            }
            Outcome::Ok(RegRet::CreateOk) => {
                versions.insert(key, 0);
            }
            Outcome::Ok(RegRet::DeleteOk | RegRet::NoNode | RegRet::Value(None)) => {
                versions.remove(&key);
            }
            _ => {}
        }
        let failed = !matches!(outcome, Outcome::Ok(_));
        let was_unknown = matches!(outcome, Outcome::Unknown(_));
        ctx.rec.lock().regs.push(RegRecord {
            key,
            process: ((worker as u64) << 24) | incarnation,
            worker,
            session,
            op,
            invoke,
            complete,
            outcome,
            zxid,
        });
        if was_unknown {
            incarnation += 1;
        }
        n += 1;
        let pause = if failed {
            rng.range(50, 200)
        } else {
            rng.range(1, 8)
        };
        conn.sleep(Duration::from_millis(pause)).await;
    }
}

/// A grant from a sabotaged lock or semaphore: a node of this session, and nothing else.
struct Fake {
    node: String,
    token: i64,
    session: i64,
}

impl Fake {
    fn grant(&self) -> Grant<'_> {
        Grant {
            node: &self.node,
            session: self.session,
            token: self.token,
        }
    }

    fn status(&self, conn: &Conn) -> Holding {
        let client = conn.client();
        if client.session().map(|s| s.id) != Some(self.session)
            || matches!(client.state(), SessionState::Expired | SessionState::Closed)
        {
            Holding::Lost
        } else if client.state() == SessionState::Connected {
            Holding::Held
        } else {
            Holding::Suspended
        }
    }
}

/// Sabotage `lock_no_wait`: a contender node in kazoo's layout, granted at once.
async fn fake_lock(conn: &Conn, path: &str, worker: usize) -> Result<Fake> {
    let session = conn.session_id();
    let (node, stat) = conn
        .create(
            &format!("{path}/w{worker}__lock__"),
            String::new(),
            CreateMode::EphemeralSequential,
        )
        .await?;
    Ok(Fake {
        node,
        token: stat.czxid,
        session,
    })
}

/// Sabotage `lease_twice`: a lease node, granted while at most `MAX_LEASES + 1` exist.
async fn fake_lease(conn: &Conn, path: &str, worker: usize) -> Result<Option<Fake>> {
    let session = conn.session_id();
    let (node, stat) = conn
        .create(
            &format!("{path}/w{worker}-lease-"),
            String::new(),
            CreateMode::EphemeralSequential,
        )
        .await?;
    for _ in 0..20 {
        if conn.get_children(path).await?.len() <= MAX_LEASES + 1 {
            return Ok(Some(Fake {
                node,
                token: stat.czxid,
                session,
            }));
        }
        conn.sleep(Duration::from_millis(100)).await;
    }
    let _ = conn.delete(&node, None).await;
    Ok(None)
}

/// A worker in a holder's role, the same for every grant it gets: where it records, which
/// recipe it exercises, and the resource its protected actions write (`None`: it only
/// claims, as a semaphore's lease holders do).
#[derive(Clone, Copy)]
struct Holder<'a> {
    conn: &'a Conn,
    ctx: &'a Ctx,
    recipe: Recipe,
    worker: usize,
    resource: Option<&'a str>,
}

/// One grant as the checks see it: the holder's node, its session, and its fencing token.
struct Grant<'a> {
    node: &'a str,
    session: i64,
    token: i64,
}

impl<'a> Holder<'a> {
    fn new(
        conn: &'a Conn,
        ctx: &'a Ctx,
        recipe: Recipe,
        worker: usize,
        resource: Option<&'a str>,
    ) -> Holder<'a> {
        Holder {
            conn,
            ctx,
            recipe,
            worker,
            resource,
        }
    }

    /// What a holder does with its grant: records it, then three protected actions (eight for a
    /// holder sabotaged to ignore expiry), each after a
    /// look at its status: only if held does it act (and the action is itself fenced on the
    /// server by a check of the holder's node in the same multi). While suspended it waits for
    /// the connection, as an application would; once lost it stops. So a holder whose session
    /// expires during a client pause looks again after the pause, and must then see it lost.
    async fn hold(&self, grant: Grant<'_>, status: impl Fn() -> Holding) {
        let Holder {
            conn,
            ctx,
            recipe,
            worker,
            resource,
        } = *self;
        let Grant {
            node,
            session,
            token,
        } = grant;
        let id = ctx.next_acq.fetch_add(1, Ordering::SeqCst);
        let mut rng = Rng::new(ctx.seed ^ (id << 16) ^ worker as u64);
        let start = ctx.clock.now();
        ctx.rec.lock().acqs.push(Acquisition {
            recipe,
            id,
            worker,
            session,
            token,
            acquired: start,
        });
        let mut actions = 0;
        // A sabotaged holder that ignores expiry gets more chances to show it.
        let wanted = if ctx.sab.ignore_expiry { 8 } else { 3 };
        // Long enough to outlast a client pause (the session timeout and then some).
        while actions < wanted && ctx.clock.now() < start + 30_000_000 {
            conn.sleep(Duration::from_millis(rng.range(50, 300))).await;
            let t = ctx.clock.now();
            let now = status();
            let held = ctx.sab.ignore_expiry || now == Holding::Held;
            ctx.rec.lock().claims.push(Claim { acq: id, t, held });
            if !held {
                if now == Holding::Lost || ctx.stopped() {
                    break;
                }
                continue;
            }
            actions += 1;
            let Some(resource) = resource else { continue };
            let invoke = ctx.clock.now();
            let ops = vec![
                Op::check(node, -1),
                Op::set_data(resource, token.to_string(), None),
            ];
            let outcome = match conn.multi(ops).await {
                Ok(results) => match results.get(1) {
                    Some(OpResult::SetData(stat)) => Outcome::Ok(stat.mzxid),
                    other => Outcome::NotApplied(format!("unexpected multi result {other:?}")),
                },
                Err(Error::MultiFailed { code, .. }) => {
                    Outcome::NotApplied(format!("fenced: {code}"))
                }
                Err(e) => classify(&e),
            };
            ctx.rec.lock().protected.push(Protected {
                acq: id,
                token,
                invoke,
                outcome,
            });
        }
    }

    /// A call for a grant failed: counted for the summary, then a pause before the next try.
    async fn failed(&self, call: &'static str, e: &Error) {
        self.ctx.error(call, e);
        self.conn.back_off().await
    }

    /// Sabotage `lock_no_wait`: takes the lock at `path` without waiting (see [`fake_lock`])
    /// and holds it.
    async fn hold_fake_lock(&self, path: &str) {
        match fake_lock(self.conn, path, self.worker).await {
            Ok(f) => self.hold_fake(f).await,
            Err(_) => self.conn.back_off().await,
        }
    }

    /// Holds a sabotaged grant as a real one is held, then gives it up by deleting its node
    /// (there is no recipe to release it through).
    async fn hold_fake(&self, fake: Fake) {
        let conn = self.conn;
        self.hold(fake.grant(), || fake.status(conn)).await;
        let _ = conn.delete(&fake.node, None).await;
    }
}

/// Holds a leader's grant as `holder` (the blocking and the async run hand over the same).
async fn lead(holder: &Holder<'_>, l: &Leadership) {
    let node = l.node_path();
    let grant = Grant {
        node: &node,
        session: l.session_id(),
        token: l.fencing_token(),
    };
    holder.hold(grant, || l.status()).await;
}

/// Contends for the lock at `{root}/lock`, holds it, releases it, again.
pub async fn lock_worker(conn: Conn, ctx: Arc<Ctx>, worker: usize) {
    let _running = Running::start(&conn, &ctx, worker);
    let path = format!("{}/lock", ctx.root);
    let resource = format!("{}/lock-resource", ctx.root);
    let lock = match Lock::new(&conn.client(), &path, &format!("worker-{worker}")) {
        Ok(l) => l,
        Err(e) => return eprintln!("jepsen: worker {worker}: Lock::new: {e}"),
    };
    let holder = Holder::new(&conn, &ctx, Recipe::Lock, worker, Some(&resource));
    while !ctx.stopped() {
        if ctx.sab.lock_no_wait {
            holder.hold_fake_lock(&path).await;
            continue;
        }
        match conn.lock_acquire(&lock, Duration::from_secs(3)).await {
            Ok(Some(g)) => {
                let node = g.node_path();
                let grant = Grant {
                    node: &node,
                    session: g.session_id(),
                    token: g.fencing_token(),
                };
                holder.hold(grant, || g.status()).await;
                let _ = conn.lock_release(g).await;
            }
            Ok(None) => {}
            Err(e) => holder.failed("Lock::acquire", &e).await,
        }
    }
}

/// Runs for leader at `{root}/election`; as leader, acts like a lock holder, then resigns.
pub async fn election_worker(conn: Conn, ctx: Arc<Ctx>, worker: usize) {
    let _running = Running::start(&conn, &ctx, worker);
    let path = format!("{}/election", ctx.root);
    let resource = format!("{}/election-resource", ctx.root);
    let election = match Election::new(&conn.client(), &path, &format!("worker-{worker}")) {
        Ok(e) => Arc::new(e),
        Err(e) => return eprintln!("jepsen: worker {worker}: Election::new: {e}"),
    };
    let e2 = election.clone();
    ctx.cancels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Box::new(move || e2.cancel()));
    let holder = Holder::new(&conn, &ctx, Recipe::Election, worker, Some(&resource));
    while !ctx.stopped() {
        if ctx.sab.lock_no_wait {
            holder.hold_fake_lock(&path).await;
            continue;
        }
        let r = match &conn {
            Conn::Blocking(_) => {
                election.run_blocking(|l| futures_lite::future::block_on(lead(&holder, l)))
            }
            _ => {
                let (c2, ctx2, res2) = (conn.clone(), ctx.clone(), resource.clone());
                election
                    .run(move |l| async move {
                        let holder = Holder::new(&c2, &ctx2, Recipe::Election, worker, Some(&res2));
                        lead(&holder, &l).await;
                    })
                    .await
            }
        };
        if let Err(e) = r {
            holder.failed("Election::run", &e).await;
        }
    }
}

/// Takes a lease of the semaphore at `{root}/sem`, holds it, gives it back, again.
pub async fn semaphore_worker(conn: Conn, ctx: Arc<Ctx>, worker: usize) {
    let _running = Running::start(&conn, &ctx, worker);
    let path = format!("{}/sem", ctx.root);
    let sem = match Semaphore::new(
        &conn.client(),
        &path,
        &format!("worker-{worker}"),
        MAX_LEASES as u32,
    ) {
        Ok(s) => s,
        Err(e) => return eprintln!("jepsen: worker {worker}: Semaphore::new: {e}"),
    };
    let fake_path = format!("{}/sem-fake", ctx.root);
    let holder = Holder::new(&conn, &ctx, Recipe::Semaphore, worker, None);
    while !ctx.stopped() {
        if ctx.sab.lease_twice {
            match fake_lease(&conn, &fake_path, worker).await {
                Ok(Some(f)) => holder.hold_fake(f).await,
                Ok(None) => {}
                Err(_) => conn.back_off().await,
            }
            continue;
        }
        match conn.sem_acquire(&sem, Duration::from_secs(3)).await {
            Ok(Some(lease)) => {
                let node = lease.node_path();
                // A lease has no fencing token.
                let grant = Grant {
                    node: &node,
                    session: conn.session_id(),
                    token: 0,
                };
                holder.hold(grant, || lease.status()).await;
                let _ = conn.sem_release(lease).await;
            }
            Ok(None) => {}
            Err(e) => holder.failed("Semaphore::acquire", &e).await,
        }
    }
}

/// Adds small positive amounts to the counter at `{root}/counter`.
pub async fn counter_worker(conn: Conn, ctx: Arc<Ctx>, worker: usize) {
    let _running = Running::start(&conn, &ctx, worker);
    let counter = match Counter::<i64>::new(&conn.client(), &format!("{}/counter", ctx.root)) {
        Ok(c) => c,
        Err(e) => return eprintln!("jepsen: worker {worker}: Counter::new: {e}"),
    };
    let mut rng = Rng::new(ctx.seed ^ 0xc0_ffee ^ worker as u64);
    while !ctx.stopped() {
        let delta = rng.range(1, 5) as i64;
        let invoke = ctx.clock.now();
        let outcome = if ctx.sab.lost_write && rng.chance(25) {
            Outcome::Ok(-1)
        } else {
            match conn.counter_add(&counter, delta).await {
                Ok(v) => Outcome::Ok(v),
                Err(e) => {
                    ctx.error("Counter::add", &e);
                    classify(&e)
                }
            }
        };
        let failed = !matches!(outcome, Outcome::Ok(_));
        ctx.rec.lock().adds.push(CounterAdd {
            worker,
            delta,
            invoke,
            outcome,
        });
        let pause = if failed {
            rng.range(100, 300)
        } else {
            rng.range(20, 80)
        };
        conn.sleep(Duration::from_millis(pause)).await;
    }
}

/// The kinds of worker, one session each.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// Registers; the group shares keys across adapters.
    Register(usize),
    /// Lock.
    Lock,
    /// Election.
    Election,
    /// Semaphore.
    Semaphore,
    /// Counter.
    Counter,
}

/// Every adapter runs these roles.
pub fn roles() -> Vec<Role> {
    let mut r: Vec<Role> = (0..REG_SESSIONS).map(Role::Register).collect();
    r.extend([Role::Lock, Role::Election, Role::Semaphore, Role::Counter]);
    r
}

/// Runs `role` as `worker` on `conn` until the stop flag.
pub async fn run_role(conn: Conn, ctx: Arc<Ctx>, worker: usize, role: Role) {
    match role {
        Role::Register(g) => register_worker(conn, ctx, worker, g).await,
        Role::Lock => lock_worker(conn, ctx, worker).await,
        Role::Election => election_worker(conn, ctx, worker).await,
        Role::Semaphore => semaphore_worker(conn, ctx, worker).await,
        Role::Counter => counter_worker(conn, ctx, worker).await,
    }
}
